#!/usr/bin/env python3
"""A gorp client in Python, on the gorp_client package (clients/python).

Creates a session, binds a channel to it, subscribes to the platform's
deliveries (replay until caught up), publishes a message, prints the reply's
chunks as they stream in and acknowledges the final response.

    pip install ./clients/python
    python3 hello.py --server http://127.0.0.1:7730   # the local admin token is found by itself

Exit code 0 when the final answer arrived and matched the streamed chunks.
"""

import argparse
import asyncio
import sys
import uuid

from gorp_client import CaughtUp, Channel, Chunk, Client, Message, Response


async def run(args: argparse.Namespace) -> int:
    async with Client(args.server, args.token) as client:
        session = await client.create_session(args.session)
        print(f"created session {session.name} (backend {session.backend}, workspace {session.workspace_dir})")
        room = Channel(args.platform, args.channel)
        await client.bind(room, args.session)
        print(f"bound {room} to {args.session}")

        replies = await client.subscribe(args.platform, gateway_id="python-client")
        async for event in replies:  # replay whatever is pending, until live
            if isinstance(event, CaughtUp):
                break
            if isinstance(event, Response):
                event.ack()

        publisher = client.publisher()
        message_id = str(uuid.uuid4())
        published = await publisher.publish(Message(room, message_id, args.text, sender_name="python"))
        print(f"publish {message_id}: {published.value}")
        await publisher.close()

        streamed = []
        async for event in replies:
            if isinstance(event, Chunk):
                streamed.append(event.text)
                print(f"chunk: {event.text!r}")
            elif isinstance(event, Response) and event.in_reply_to == message_id:
                event.ack()
                print(f"final #{event.seq} from {event.session}: {event.text}")
                await replies.close()  # sends the ack before the stream ends
                if "".join(streamed) != event.text:
                    return f"hello.py: chunks {streamed!r} do not add up to the final answer"
                return 0
    return "hello.py: the delivery stream ended before the answer"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--server", default="http://127.0.0.1:7730", help="gorpd's gRPC URL")
    parser.add_argument("--token", help="token [default: GORP_TOKEN, else the local admin token]")
    parser.add_argument("--session", default="python-demo", help="session to create")
    parser.add_argument("--platform", default="pyclient", help="platform id this client acts as")
    parser.add_argument("--channel", default="room-1", help="channel id to bind")
    parser.add_argument("--text", default="hello from python", help="message to send")
    return asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    sys.exit(main())
