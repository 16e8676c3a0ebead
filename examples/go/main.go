// A Go client of mp-gateway, run against a sandbox gateway (`cargo run -- --sandbox`):
// lists products, creates an order, decodes the google.rpc details of two failing
// calls, and follows the order's usage alarms across a reconnect with resume_after.
//
// Build and run it with ./run.sh [HOST:PORT], which generates the stubs first.
// Every check that fails exits 1 with the reason on stderr.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"sort"
	"strconv"
	"strings"
	"time"

	mpv1 "github.com/linksfield/mp-gateway/gen/go/linksfield/mp/v1"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
)

type client struct {
	products mpv1.ProductServiceClient
	orders   mpv1.OrderServiceClient
	alarms   mpv1.AlarmServiceClient
	token    string
	timeout  time.Duration
}

func main() {
	target := flag.String("target", envOr("MP_GATEWAY_ADDR", "localhost:50051"), "gateway gRPC address (plaintext)")
	token := flag.String("token", os.Getenv("MP_GATEWAY_TOKEN"), "bearer token, sent as 'authorization: Bearer TOKEN'")
	alarmTimeout := flag.Duration("alarm-timeout", 60*time.Second, "how long to wait for each alarm")
	flag.Parse()
	if flag.NArg() > 0 {
		*target = flag.Arg(0)
	}

	dialCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := grpc.DialContext(dialCtx, *target, grpc.WithInsecure(), grpc.WithBlock())
	if err != nil {
		fail("cannot connect to %s: %v", *target, err)
	}
	defer conn.Close()

	c := &client{
		products: mpv1.NewProductServiceClient(conn),
		orders:   mpv1.NewOrderServiceClient(conn),
		alarms:   mpv1.NewAlarmServiceClient(conn),
		token:    *token,
		timeout:  10 * time.Second,
	}
	if err := c.run(*alarmTimeout); err != nil {
		fail("%v", err)
	}
	fmt.Println("done")
}

func (c *client) run(alarmTimeout time.Duration) error {
	// 1. Unary calls: the catalogue, then an order.
	ctx, cancel := c.unary()
	listed, err := c.products.ListProducts(ctx, &mpv1.ListProductsRequest{})
	cancel()
	if err != nil {
		return fmt.Errorf("ListProducts: %s", describe(err))
	}
	fmt.Printf("ListProducts: %d products\n", len(listed.Products))
	var product5 *mpv1.Product
	for _, p := range listed.Products {
		fmt.Printf("  product %d: %s (%s)\n", p.ProductId, p.ProductName, p.CoverCountryName)
		if p.ProductId == 5 {
			product5 = p
		}
	}
	if product5 == nil {
		return errors.New("ListProducts: product 5 is not in the catalogue")
	}

	runID := strconv.FormatInt(time.Now().UnixNano(), 36)
	first, err := c.createOrder(product5.ProductId, "go-example-"+runID+"-a")
	if err != nil {
		return err
	}

	// 2. Failing calls and their google.rpc details.
	ctx, cancel = c.unary()
	_, err = c.orders.CreateOrder(ctx, &mpv1.CreateOrderRequest{ProductId: 5, Iccid: proto.String("123")})
	cancel()
	if err := expectError("CreateOrder with ICCID 123", err, codes.InvalidArgument, func(detail interface{}) bool {
		bad, ok := detail.(*errdetails.BadRequest)
		if !ok {
			return false
		}
		for _, v := range bad.FieldViolations {
			if v.Field == "iccid" {
				return true
			}
		}
		return false
	}, "a BadRequest violation of field iccid"); err != nil {
		return err
	}

	ctx, cancel = c.unary()
	_, err = c.orders.CreateOrder(ctx, &mpv1.CreateOrderRequest{ProductId: 99})
	cancel()
	if err := expectError("CreateOrder of product 99", err, codes.NotFound, func(detail interface{}) bool {
		info, ok := detail.(*errdetails.ErrorInfo)
		return ok && info.Domain == "mp.linksfield.net" && info.Reason == "UPSTREAM_NOT_FOUND"
	}, "ErrorInfo{domain: mp.linksfield.net, reason: UPSTREAM_NOT_FOUND}"); err != nil {
		return err
	}

	// 3. Alarms, resumed after a reconnect. A second order started right after
	// the first crosses 53 % at about the same time, so there is always an
	// alarm after the first one to resume to.
	ctx, cancel = c.unary()
	registered, err := c.alarms.RegisterCallback(ctx, &mpv1.RegisterCallbackRequest{ResellerCode: "SANDBOX0001"})
	cancel()
	if err != nil {
		return fmt.Errorf("RegisterCallback: %s", describe(err))
	}
	fmt.Printf("RegisterCallback: MP posts alarms to %s\n", registered.HttpUrl)
	second, err := c.createOrder(product5.ProductId, "go-example-"+runID+"-b")
	if err != nil {
		return err
	}
	orderCodes := []string{first.OrderCode, second.OrderCode}

	fmt.Printf("SubscribeAlarms: waiting up to %s for an alarm of %s\n", alarmTimeout, strings.Join(orderCodes, " or "))
	alarm, err := c.nextAlarm(&mpv1.SubscribeAlarmsRequest{OrderCodes: orderCodes}, alarmTimeout)
	if err != nil {
		return err
	}
	fmt.Printf("  alarm %s: order %s at %d%% (MP said %q), received %s\n", alarm.Id, alarm.OrderCode,
		alarm.UsedPercent, alarm.UsedRate, alarm.ReceivedAt.AsTime().Format(time.RFC3339Nano))
	if alarm.OrderCode != first.OrderCode && alarm.OrderCode != second.OrderCode {
		return fmt.Errorf("SubscribeAlarms: alarm of order %s, which the filter excludes", alarm.OrderCode)
	}
	if alarm.UsedPercent < 53 {
		return fmt.Errorf("SubscribeAlarms: alarm at %d%%, below MP's first threshold (53%%)", alarm.UsedPercent)
	}

	// The stream was closed above (as if the connection broke); resume after the last alarm seen.
	fmt.Printf("SubscribeAlarms: reconnecting with resume_after %s\n", alarm.Id)
	resumed, err := c.nextAlarm(&mpv1.SubscribeAlarmsRequest{OrderCodes: orderCodes, ResumeAfter: alarm.Id}, alarmTimeout)
	if err != nil {
		return err
	}
	fmt.Printf("  alarm %s: order %s at %d%% (MP said %q), received %s\n", resumed.Id, resumed.OrderCode,
		resumed.UsedPercent, resumed.UsedRate, resumed.ReceivedAt.AsTime().Format(time.RFC3339Nano))
	if !idAfter(resumed.Id, alarm.Id) {
		return fmt.Errorf("SubscribeAlarms: resumed after %s but got alarm %s, not a later one", alarm.Id, resumed.Id)
	}
	if resumed.OrderCode == alarm.OrderCode && resumed.UsedPercent == alarm.UsedPercent {
		return fmt.Errorf("SubscribeAlarms: the resumed stream repeated the alarm of order %s at %d%%",
			alarm.OrderCode, alarm.UsedPercent)
	}
	fmt.Println("SubscribeAlarms: the stream continued after the alarm it was resumed from")
	return nil
}

func (c *client) createOrder(productID uint64, requestID string) (*mpv1.CreateOrderResponse, error) {
	ctx, cancel := c.unary()
	defer cancel()
	order, err := c.orders.CreateOrder(ctx, &mpv1.CreateOrderRequest{
		RequestId: requestID, // a retry must reuse it: the gateway then returns the same order
		ProductId: productID,
		Activate:  proto.Bool(true),
	})
	if err != nil {
		return nil, fmt.Errorf("CreateOrder: %s", describe(err))
	}
	fmt.Printf("CreateOrder: order %s, ICCID %s (request_id %s)\n", order.OrderCode, order.Iccid, requestID)
	fmt.Printf("  activation code %s\n", order.ActivationCode)
	if order.OrderCode == "" || !strings.HasPrefix(order.ActivationCode, "LPA:1$") {
		return nil, fmt.Errorf("CreateOrder: want an order code and an LPA:1$ activation code, got %q and %q",
			order.OrderCode, order.ActivationCode)
	}
	return order, nil
}

// nextAlarm opens a SubscribeAlarms stream, returns its first alarm and closes it.
func (c *client) nextAlarm(req *mpv1.SubscribeAlarmsRequest, timeout time.Duration) (*mpv1.Alarm, error) {
	ctx, cancel := context.WithTimeout(c.withToken(context.Background()), timeout)
	defer cancel() // cancelling the context closes the stream
	stream, err := c.alarms.SubscribeAlarms(ctx, req)
	if err != nil {
		return nil, fmt.Errorf("SubscribeAlarms: %s", describe(err))
	}
	response, err := stream.Recv()
	switch {
	case err == io.EOF:
		return nil, errors.New("SubscribeAlarms: the stream ended without an alarm")
	case status.Code(err) == codes.DeadlineExceeded:
		return nil, fmt.Errorf("SubscribeAlarms: no alarm within %s", timeout)
	case err != nil:
		return nil, fmt.Errorf("SubscribeAlarms: %s", describe(err))
	case response.Alarm == nil:
		return nil, errors.New("SubscribeAlarms: a response without an alarm")
	}
	return response.Alarm, nil
}

func (c *client) unary() (context.Context, context.CancelFunc) {
	return context.WithTimeout(c.withToken(context.Background()), c.timeout)
}

func (c *client) withToken(ctx context.Context) context.Context {
	if c.token == "" {
		return ctx
	}
	return metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+c.token)
}

// expectError checks that a call failed with the wanted code and carries a
// detail that `matches`, printing the decoded status on the way.
func expectError(call string, err error, want codes.Code, matches func(interface{}) bool, what string) error {
	if err == nil {
		return fmt.Errorf("%s succeeded; want %s", call, want)
	}
	fmt.Printf("%s failed as expected: %s\n", call, describe(err))
	if got := status.Code(err); got != want {
		return fmt.Errorf("%s: status %s, want %s", call, got, want)
	}
	for _, detail := range status.Convert(err).Details() {
		if matches(detail) {
			return nil
		}
	}
	return fmt.Errorf("%s: no %s in the status details", call, what)
}

// describe renders a failed call's status code, message and google.rpc details
// (from the grpc-status-details-bin trailer).
func describe(err error) string {
	st := status.Convert(err)
	lines := []string{fmt.Sprintf("%s: %s", st.Code(), st.Message())}
	for _, detail := range st.Details() {
		switch d := detail.(type) {
		case *errdetails.BadRequest:
			for _, v := range d.FieldViolations {
				lines = append(lines, fmt.Sprintf("  bad field %s: %s", v.Field, v.Description))
			}
		case *errdetails.ErrorInfo:
			meta := make([]string, 0, len(d.Metadata))
			for k, v := range d.Metadata {
				meta = append(meta, k+"="+v)
			}
			sort.Strings(meta)
			lines = append(lines, fmt.Sprintf("  reason %s (%s) %s", d.Reason, d.Domain, strings.Join(meta, ", ")))
		case *errdetails.RetryInfo:
			lines = append(lines, fmt.Sprintf("  retry after %s", d.RetryDelay.AsDuration()))
		case error:
			lines = append(lines, fmt.Sprintf("  undecodable detail: %v", d))
		default:
			lines = append(lines, fmt.Sprintf("  detail %T", d))
		}
	}
	return strings.Join(lines, "\n")
}

// idAfter compares alarm ids ("<milliseconds>-<sequence>", like Redis stream ids).
func idAfter(a, b string) bool {
	parse := func(id string) (uint64, uint64, bool) {
		parts := strings.SplitN(id, "-", 2)
		if len(parts) != 2 {
			return 0, 0, false
		}
		ms, err1 := strconv.ParseUint(parts[0], 10, 64)
		seq, err2 := strconv.ParseUint(parts[1], 10, 64)
		return ms, seq, err1 == nil && err2 == nil
	}
	am, as, okA := parse(a)
	bm, bs, okB := parse(b)
	return okA && okB && (am > bm || (am == bm && as > bs))
}

func envOr(name, fallback string) string {
	if value := os.Getenv(name); value != "" {
		return value
	}
	return fallback
}

func fail(format string, args ...interface{}) {
	fmt.Fprintf(os.Stderr, "error: "+format+"\n", args...)
	os.Exit(1)
}
