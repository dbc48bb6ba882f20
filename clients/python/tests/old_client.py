"""A client generated from an earlier copy of proto/gorp/v1 (argv[1]), with
the generated stubs alone: creates a session, binds a channel, subscribes,
publishes, and acks the echoed answer. Exit code 0 when that all worked.

    python old_client.py tests/compat/proto-ac81f8e http://127.0.0.1:7730 TOKEN NAME
"""

import pathlib
import queue
import sys
import tempfile

import grpc
import grpc_tools
from grpc_tools import protoc


def requests_from(q):
    while (item := q.get()) is not None:
        yield item


def main() -> int:
    proto_root, url, token, name = pathlib.Path(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
    out = pathlib.Path(tempfile.mkdtemp(prefix="gorp-old-stubs-"))
    well_known = pathlib.Path(grpc_tools.__file__).parent / "_proto"
    protos = sorted(str(p.relative_to(proto_root)) for p in (proto_root / "gorp" / "v1").glob("*.proto"))
    if protoc.main(["protoc", f"-I{proto_root}", f"-I{well_known}", f"--python_out={out}",
                    f"--grpc_python_out={out}", *protos]) != 0:
        return "old_client: protoc failed"
    sys.path.insert(0, str(out))
    from gorp.v1 import bus_pb2, bus_pb2_grpc, common_pb2, control_pb2, control_pb2_grpc

    auth = [("authorization", f"Bearer {token}")]
    channel = grpc.insecure_channel(url.removeprefix("http://"))
    control, bus = control_pb2_grpc.ControlStub(channel), bus_pb2_grpc.BusStub(channel)
    session = name.replace("proto-", "old-")
    control.CreateSession(control_pb2.CreateSessionRequest(name=session), metadata=auth)
    where = common_pb2.Channel(platform="old", channel_id=session)
    control.BindSession(control_pb2.BindSessionRequest(channel=where, session=session), metadata=auth)

    requests = queue.Queue()
    requests.put(bus_pb2.SubscribeRequest(hello=bus_pb2.SubscribeHello(gateway_id=session, platform="old")))
    deliveries = bus.SubscribeResponses(requests_from(requests), metadata=auth, timeout=60)
    for delivery in deliveries:
        if delivery.WhichOneof("kind") == "caught_up":
            break
    publish = queue.Queue()
    publish.put(bus_pb2.PublishRequest(channel=where, message_id=session, text="hello from an old client"))
    publish.put(None)
    for ack in bus.Publish(requests_from(publish), metadata=auth, timeout=60):
        if ack.status != bus_pb2.PUBLISH_STATUS_ACCEPTED:
            return f"old_client: publish not accepted: {ack}"
    for delivery in deliveries:
        if delivery.WhichOneof("kind") == "response":
            print(f"final #{delivery.response.seq}: {delivery.response.text}")
            requests.put(bus_pb2.SubscribeRequest(ack=bus_pb2.SubscribeAck(seq=delivery.response.seq)))
            requests.put(None)
            deliveries.cancel()
            return 0
    return "old_client: no answer"


if __name__ == "__main__":
    sys.exit(main())
