#!/usr/bin/env python3
"""mp-gateway from Python: list products, order one (idempotently), read its
status, and wait for its first usage alarm.

Generate the stubs first (./generate.sh), then against a sandbox gateway
(`cargo run -- --sandbox`):

    python3 quickstart.py                       # localhost:50051, waits for the 53 % alarm
    python3 quickstart.py --no-wait-for-alarm   # stops after RegisterCallback

Any failed call prints its gRPC status code, message and google.rpc details
on stderr and exits 1 (2 for a usage or setup problem).
"""

from __future__ import annotations

import argparse
import os
import sys
import uuid

HERE = os.path.dirname(os.path.abspath(__file__))

try:
    import grpc
    from google.rpc import error_details_pb2
    from grpc_status import rpc_status
except ImportError as missing:
    sys.exit(
        f"quickstart: {missing}; install the pinned packages: "
        "pip install -r requirements-dev.txt (or scripts/install-dev-tools)"
    )


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--target", default="localhost:50051", help="gateway gRPC address (plaintext)")
    parser.add_argument("--token", help="bearer token, sent as 'authorization: Bearer TOKEN'")
    parser.add_argument("--product-id", type=int, default=5, help="product to order (default 5)")
    parser.add_argument(
        "--request-id",
        default=f"quickstart-{uuid.uuid4()}",
        help="CreateOrder's idempotency key (default: a new one per run)",
    )
    parser.add_argument(
        "--reseller-code", default="SANDBOX0001", help="reseller code for RegisterCallback (the sandbox's)"
    )
    parser.add_argument(
        "--callback-url",
        default="",
        help="URL MP should POST alarms to; empty: the gateway's default "
        "(in sandbox mode, its own callback endpoint)",
    )
    parser.add_argument(
        "--wait-for-alarm",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="subscribe to the new order's alarms and wait for the first one (default: yes)",
    )
    parser.add_argument(
        "--alarm-timeout", type=float, default=60.0, help="seconds to wait for the alarm (default 60)"
    )
    parser.add_argument("--call-timeout", type=float, default=10.0, help="deadline of each unary call, seconds")
    parser.add_argument(
        "--stubs", default=os.path.join(HERE, "gen"), help="folder the stubs were generated into (default gen/)"
    )
    return parser.parse_args()


def import_stubs(folder: str):
    sys.path.insert(0, folder)
    try:
        from linksfield.mp.v1 import (
            alarm_service_pb2,
            alarm_service_pb2_grpc,
            order_service_pb2,
            order_service_pb2_grpc,
            product_service_pb2,
            product_service_pb2_grpc,
        )
    except ImportError as missing:
        sys.exit(f"quickstart: no stubs in {folder} ({missing}); run {os.path.join(HERE, 'generate.sh')} first")
    return (
        product_service_pb2,
        product_service_pb2_grpc,
        order_service_pb2,
        order_service_pb2_grpc,
        alarm_service_pb2,
        alarm_service_pb2_grpc,
    )


def describe_error(error: grpc.RpcError) -> str:
    """The status code, message and any google.rpc details of a failed call."""
    lines = [f"{error.code().name}: {error.details()}"]
    try:
        status = rpc_status.from_call(error)
    except ValueError:  # details that contradict the status line; show the line alone
        status = None
    for detail in status.details if status else []:
        if detail.Is(error_details_pb2.BadRequest.DESCRIPTOR):
            bad = error_details_pb2.BadRequest()
            detail.Unpack(bad)
            for violation in bad.field_violations:
                lines.append(f"  bad field {violation.field}: {violation.description}")
        elif detail.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
            info = error_details_pb2.ErrorInfo()
            detail.Unpack(info)
            metadata = ", ".join(f"{k}={v}" for k, v in sorted(info.metadata.items()))
            lines.append(f"  reason {info.reason} ({info.domain}){' ' + metadata if metadata else ''}")
        elif detail.Is(error_details_pb2.RetryInfo.DESCRIPTOR):
            retry = error_details_pb2.RetryInfo()
            detail.Unpack(retry)
            lines.append(f"  retry after {retry.retry_delay.ToTimedelta().total_seconds():g} s")
        else:
            lines.append(f"  detail {detail.type_url}")
    return "\n".join(lines)


def timestamp(ts, present: bool) -> str:
    return ts.ToJsonString() if present else "-"


def main() -> int:
    args = parse_args()
    (
        product_pb2,
        product_grpc,
        order_pb2,
        order_grpc,
        alarm_pb2,
        alarm_grpc,
    ) = import_stubs(args.stubs)

    metadata = [("authorization", f"Bearer {args.token}")] if args.token else []
    unary = {"timeout": args.call_timeout, "metadata": metadata}
    step = "connect"
    with grpc.insecure_channel(args.target) as channel:
        products = product_grpc.ProductServiceStub(channel)
        orders = order_grpc.OrderServiceStub(channel)
        alarms = alarm_grpc.AlarmServiceStub(channel)
        try:
            step = "ListProducts"
            listed = products.ListProducts(product_pb2.ListProductsRequest(), **unary)
            print(f"ListProducts: {len(listed.products)} products")
            for p in listed.products:
                quantities = ",".join(str(q) for q in p.order_quantities)
                print(
                    f"  product {p.product_id}: {p.product_name} "
                    f"(goods {p.goods_id} {p.goods_name}, {p.cover_country_name}; quantities {quantities})"
                )

            step = "CreateOrder"
            create = order_pb2.CreateOrderRequest(
                request_id=args.request_id, product_id=args.product_id, activate=True
            )
            order = orders.CreateOrder(create, **unary)
            print(f"CreateOrder: order {order.order_code}, ICCID {order.iccid} (request_id {args.request_id})")
            print(f"  activation code {order.activation_code}")
            print(f"  iOS install link {order.ios_install_url}")

            step = "CreateOrder (retry)"
            again = orders.CreateOrder(create, **unary)
            if again.order_code != order.order_code:
                print(
                    f"error: CreateOrder retry with request_id {args.request_id} returned order "
                    f"{again.order_code}, not {order.order_code}: not idempotent",
                    file=sys.stderr,
                )
                return 1
            print(f"CreateOrder retry: same order {again.order_code} (idempotent per request_id)")

            step = "GetOrderStatus"
            status = orders.GetOrderStatus(order_pb2.GetOrderStatusRequest(order_code=order.order_code), **unary)
            for package in status.packages:
                print(
                    f"GetOrderStatus: package {package.package_code} "
                    f"{order_pb2.OrderStatus.Name(package.status)}, started "
                    f"{timestamp(package.actual_start_time, package.HasField('actual_start_time'))}, ends "
                    f"{timestamp(package.planned_end_time, package.HasField('planned_end_time'))}"
                )

            step = "RegisterCallback"
            registered = alarms.RegisterCallback(
                alarm_pb2.RegisterCallbackRequest(reseller_code=args.reseller_code, http_url=args.callback_url),
                **unary,
            )
            print(f"RegisterCallback: MP posts alarms to {registered.http_url}")

            if not args.wait_for_alarm:
                print("done (not waiting for an alarm)")
                return 0

            step = "SubscribeAlarms"
            print(f"SubscribeAlarms: waiting up to {args.alarm_timeout:g} s for an alarm of {order.order_code}")
            sys.stdout.flush()
            stream = alarms.SubscribeAlarms(
                alarm_pb2.SubscribeAlarmsRequest(order_codes=[order.order_code]),
                timeout=args.alarm_timeout,
                metadata=metadata,
            )
            try:
                for response in stream:
                    a = response.alarm
                    print(
                        f"alarm {a.id}: order {a.order_code} package {a.package_code} "
                        f"at {a.used_percent}% (MP said {a.used_rate!r}), received "
                        f"{timestamp(a.received_at, a.HasField('received_at'))}"
                    )
                    break
                else:
                    print("error: SubscribeAlarms: the stream ended without an alarm", file=sys.stderr)
                    return 1
            finally:
                stream.cancel()
            print("done")
            return 0
        except grpc.RpcError as error:
            if error.code() == grpc.StatusCode.DEADLINE_EXCEEDED and step == "SubscribeAlarms":
                print(f"error: no alarm within {args.alarm_timeout:g} s", file=sys.stderr)
            print(f"error: {step} failed: {describe_error(error)}", file=sys.stderr)
            return 1


if __name__ == "__main__":
    sys.exit(main())
