#!/usr/bin/env python3
"""mp-gateway from Python: consume a shared alarm subscription (ConsumeAlarms).

Run several of these with the same --subscription (against one gateway or
several replicas sharing Redis): each alarm goes to one of them until it is
acked. Each alarm is printed, handled and acked; --count stops after that many.

    python3 consumer.py --subscription billing            # until Ctrl-C
    python3 consumer.py --subscription billing --count 1  # one alarm, then exit

Ending the stream (Ctrl-C, --count reached) hands any unacked alarm to the
other consumers at once. A failed call prints its gRPC status code, message
and google.rpc details on stderr and exits 1.
"""

from __future__ import annotations

import argparse
import os
import queue
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

from quickstart import describe_error, grpc  # noqa: E402  (after the path is set)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--target", default="localhost:50051", help="gateway gRPC address (plaintext)")
    parser.add_argument("--token", help="bearer token, sent as 'authorization: Bearer TOKEN'")
    parser.add_argument("--subscription", default="python-consumer", help="shared subscription name")
    parser.add_argument("--consumer", default="", help="a stable name for this consumer (logs)")
    parser.add_argument("--ack-deadline", type=int, default=30, help="seconds to ack an alarm (1..600)")
    parser.add_argument("--max-outstanding", type=int, default=10, help="unacked alarms in flight at most")
    parser.add_argument("--count", type=int, default=0, help="stop after acking this many (0: never)")
    parser.add_argument(
        "--stubs", default=os.path.join(HERE, "gen"), help="folder the stubs were generated into (default gen/)"
    )
    return parser.parse_args()


def import_stubs(folder: str):
    sys.path.insert(0, folder)
    try:
        from linksfield.mp.v1 import alarm_service_pb2, alarm_service_pb2_grpc
    except ImportError as missing:
        sys.exit(f"consumer: no stubs in {folder} ({missing}); run {os.path.join(HERE, 'generate.sh')} first")
    return alarm_service_pb2, alarm_service_pb2_grpc


_END = object()


def main() -> int:
    args = parse_args()
    alarm_pb2, alarm_grpc = import_stubs(args.stubs)
    metadata = [("authorization", f"Bearer {args.token}")] if args.token else []
    # What we send: the first message, then one ack per alarm; _END half-closes.
    outgoing: queue.Queue = queue.Queue()
    outgoing.put(
        alarm_pb2.ConsumeAlarmsRequest(
            subscription=args.subscription,
            consumer=args.consumer,
            ack_deadline_seconds=args.ack_deadline,
            max_outstanding=args.max_outstanding,
        )
    )

    def requests():
        while (message := outgoing.get()) is not _END:
            yield message

    acked = 0
    done = False
    with grpc.insecure_channel(args.target) as channel:
        alarms = alarm_grpc.AlarmServiceStub(channel)
        try:
            for delivery in alarms.ConsumeAlarms(requests(), metadata=metadata):
                if done:
                    # Not handled, not acked: the others get it once the stream ends.
                    continue
                alarm = delivery.alarm
                print(
                    f"alarm {alarm.id}: order {alarm.order_code} at {alarm.used_percent} % "
                    f"(delivery {delivery.delivery_attempt})",
                    flush=True,
                )
                # Handle it here (idempotently: a redelivery has the same id), then ack.
                outgoing.put(alarm_pb2.ConsumeAlarmsRequest(ack_ids=[alarm.id]))
                acked += 1
                if args.count and acked >= args.count:
                    # Half-close after the last ack; the gateway then ends the stream with OK.
                    done = True
                    outgoing.put(_END)
        except grpc.RpcError as error:
            print(f"ConsumeAlarms failed: {describe_error(error)}", file=sys.stderr)
            return 1
        except KeyboardInterrupt:
            outgoing.put(_END)
    print(f"acked {acked} alarm(s) of subscription {args.subscription}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
