#!/usr/bin/env python3
"""A third-party gorp client in Python, built only from gorp's .proto files.

It generates the gRPC stubs from ../../proto with grpcio-tools (into ./gen,
or --gen-dir),
then: authenticates with a bearer token, creates a session, binds a channel
to it over the Bus.BindChannel stream, subscribes to its platform's
deliveries, publishes a message, prints the streamed reply as it arrives and
acknowledges the final response.

    pip install grpcio grpcio-tools
    python3 gorp_client.py --server 127.0.0.1:7730 --token "$(cat ~/.local/share/gorp/admin.token)"

Exit code 0 when the final answer arrived and matched the streamed chunks.
"""

import argparse
import pathlib
import queue
import sys
import time
import uuid

HERE = pathlib.Path(__file__).resolve().parent
PROTO_ROOT = HERE.parent.parent / "proto"


def generate_stubs(out):
    """Compiles proto/gorp/v1/*.proto into `out` with grpcio-tools and makes it importable."""
    from grpc_tools import protoc
    import grpc_tools

    out.mkdir(parents=True, exist_ok=True)
    well_known = pathlib.Path(grpc_tools.__file__).parent / "_proto"
    protos = sorted(str(p.relative_to(PROTO_ROOT)) for p in (PROTO_ROOT / "gorp" / "v1").glob("*.proto"))
    args = ["protoc", f"-I{PROTO_ROOT}", f"-I{well_known}", f"--python_out={out}", f"--grpc_python_out={out}", *protos]
    if protoc.main(args) != 0:
        sys.exit("gorp_client: generating stubs from the .proto files failed")
    sys.path.insert(0, str(out))


def requests_from(q):
    """Turns a queue into a request iterator for a bidirectional stream; None ends it."""
    while True:
        item = q.get()
        if item is None:
            return
        yield item


def wait_until_acknowledged(control, control_pb2, auth, seq):
    """Waits until gorpd has stored this client's ack (its cursor reached `seq`)."""
    for _ in range(100):
        gateways = control.ListGateways(control_pb2.ListGatewaysRequest(), metadata=auth).gateways
        mine = [g for g in gateways if g.gateway_id == "python-client"]
        if mine and mine[0].acked_seq >= seq:
            print(f"acknowledged #{seq}; {mine[0].pending} delivery(ies) pending")
            return
        time.sleep(0.05)
    sys.exit(f"gorp_client: gorpd never recorded the ack of #{seq}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--server", default="127.0.0.1:7730", help="gorpd gRPC address (host:port)")
    parser.add_argument("--token", required=True, help="admin token")
    parser.add_argument("--session", default="python-demo", help="session to create")
    parser.add_argument("--platform", default="pyclient", help="platform id this client acts as")
    parser.add_argument("--channel", default="room-1", help="channel id to bind")
    parser.add_argument("--text", default="hello from python", help="message to send")
    parser.add_argument("--gen-dir", type=pathlib.Path, default=HERE / "gen", help="where to generate the stubs")
    args = parser.parse_args()

    generate_stubs(args.gen_dir)
    import grpc
    from gorp.v1 import bus_pb2, bus_pb2_grpc, common_pb2, control_pb2, control_pb2_grpc

    auth = [("authorization", f"Bearer {args.token}")]
    channel = grpc.insecure_channel(args.server)
    control = control_pb2_grpc.ControlStub(channel)
    bus = bus_pb2_grpc.BusStub(channel)
    where = common_pb2.Channel(platform=args.platform, channel_id=args.channel)

    session = control.CreateSession(control_pb2.CreateSessionRequest(name=args.session), metadata=auth)
    print(f"created session {session.name} (backend {session.backend}, workspace {session.workspace_dir})")

    binds = queue.Queue()
    binds.put(bus_pb2.BindRequest(request_id="b1", bind=bus_pb2.Bind(channel=where, session=args.session)))
    for event in bus.BindChannel(requests_from(binds), metadata=auth):
        if event.WhichOneof("kind") == "result":
            if not event.result.ok:
                sys.exit(f"gorp_client: bind failed: {event.result.error}")
            print(f"bound {args.platform}:{args.channel} to {args.session}")
            binds.put(None)
            break

    subscribe = queue.Queue()
    hello = bus_pb2.SubscribeHello(gateway_id="python-client", platform=args.platform)
    subscribe.put(bus_pb2.SubscribeRequest(hello=hello))
    deliveries = bus.SubscribeResponses(requests_from(subscribe), metadata=auth)
    for delivery in deliveries:  # replay whatever is pending, until live
        if delivery.WhichOneof("kind") == "caught_up":
            break
        if delivery.WhichOneof("kind") == "response":
            subscribe.put(bus_pb2.SubscribeRequest(ack=bus_pb2.SubscribeAck(seq=delivery.response.seq)))

    message_id = str(uuid.uuid4())
    publish = queue.Queue()
    publish.put(bus_pb2.PublishRequest(channel=where, message_id=message_id, sender_name="python", text=args.text))
    publish.put(None)
    for ack in bus.Publish(requests_from(publish), metadata=auth):
        print(f"publish {ack.message_id}: {bus_pb2.PublishStatus.Name(ack.status)}")
        if ack.status != bus_pb2.PUBLISH_STATUS_ACCEPTED:
            sys.exit(f"gorp_client: publish was not accepted: {ack.error}")

    streamed = []
    for delivery in deliveries:
        kind = delivery.WhichOneof("kind")
        if kind == "chunk":
            streamed.append(delivery.chunk.text)
            print(f"chunk: {delivery.chunk.text!r}")
        elif kind == "response" and delivery.response.in_reply_to == message_id:
            final = delivery.response
            subscribe.put(bus_pb2.SubscribeRequest(ack=bus_pb2.SubscribeAck(seq=final.seq)))
            print(f"final #{final.seq} from {final.session}: {final.text}")
            if "".join(streamed) != final.text:
                sys.exit(f"gorp_client: chunks {streamed!r} do not add up to the final answer")
            wait_until_acknowledged(control, control_pb2, auth, final.seq)
            subscribe.put(None)
            deliveries.cancel()
            return 0
    sys.exit("gorp_client: the delivery stream ended before the answer")


if __name__ == "__main__":
    sys.exit(main())
