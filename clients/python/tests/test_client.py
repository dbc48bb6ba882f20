"""gorp_client (Python) against the real gorpd binary: the same scenarios as
the Rust crate's tests, plus an old client generated from an earlier proto."""

import asyncio
import collections
import os
import pathlib
import subprocess
import sys
import unittest

import grpc

from gorp_client import BindingChange, CaughtUp, Channel, Client, GorpError, Message, Published, Rejected, Response

sys.path.insert(0, str(pathlib.Path(__file__).parent))
from gorpd_process import REPO, Gorpd  # noqa: E402

MESSAGES = 300


async def within(awaitable, seconds: float = 60):
    return await asyncio.wait_for(awaitable, seconds)


async def next_response(subscription, seen: list) -> Response:
    """The next final response; CaughtUp events passed are appended to `seen`."""
    async def read():
        async for event in subscription:
            if isinstance(event, Response):
                return event
            if isinstance(event, CaughtUp):
                seen.append(event)
    return await within(read())


class ClientTest(unittest.IsolatedAsyncioTestCase):
    def setUp(self) -> None:
        self.gorpd = Gorpd()
        self.addCleanup(self.gorpd.stop)

    async def client(self, **kwargs) -> Client:
        client = Client(self.gorpd.url, kwargs.pop("token", self.gorpd.token), **kwargs)
        self.addAsyncCleanup(client.close)
        return client

    async def test_publishing_through_a_gorpd_crash_and_restart_loses_and_repeats_nothing(self):
        client = await self.client()
        await client.create_session("s")
        room = Channel("app", "room")
        await client.bind(room, "s")
        publisher = client.publisher(max_backoff=0.2)
        futures = [await publisher.send(Message(room, f"m{i}", f"n {i}")) for i in range(MESSAGES // 2)]
        outcomes = [await within(f) for f in futures[: MESSAGES // 3]]
        self.gorpd.kill()
        futures += [await publisher.send(Message(room, f"m{i}", f"n {i}")) for i in range(MESSAGES // 2, MESSAGES)]
        self.gorpd.start()
        outcomes += [await within(f) for f in futures[MESSAGES // 3:]]
        await within(publisher.close())
        self.assertEqual(len(outcomes), MESSAGES)
        self.assertTrue(all(o in (Published.ACCEPTED, Published.DUPLICATE) for o in outcomes))

        async def stored():
            while True:
                counts = collections.Counter(e.text for e in await client.history("s", 1000) if e.role == "user")
                if len(counts) == MESSAGES:
                    return counts
                await asyncio.sleep(0.05)
        counts = await within(stored())
        self.assertEqual([t for t, n in counts.items() if n > 1], [], "stored twice")
        self.assertEqual(set(counts), {f"n {i}" for i in range(MESSAGES)})

    async def test_a_rejected_message_settles_alone_and_the_publisher_goes_on(self):
        client = await self.client()
        room = Channel("app", "lobby")
        publisher = client.publisher(max_backoff=0.2)
        first = await publisher.send(Message(room, "m1", "!help"))
        blank = await publisher.send(Message(room, "m2", "   "))
        last = await publisher.send(Message(room, "m3", "!list"))
        self.assertEqual(await within(first), Published.ACCEPTED)
        with self.assertRaises(Rejected) as refused:
            await within(blank)
        self.assertEqual((refused.exception.message_id, refused.exception.code), ("m2", grpc.StatusCode.INVALID_ARGUMENT))
        self.assertEqual(await within(last), Published.ACCEPTED)
        self.assertEqual(await publisher.publish(Message(room, "m1", "!help")), Published.DUPLICATE)
        await within(publisher.close())

    async def test_a_refused_token_stops_the_publisher(self):
        client = await self.client(token="gorp_not_a_token")
        publisher = client.publisher(max_backoff=0.2)
        with self.assertRaises(GorpError) as failed:
            await within(publisher.publish(Message(Channel("app", "c"), "m1", "hi")))
        self.assertEqual(failed.exception.code, grpc.StatusCode.UNAUTHENTICATED)
        with self.assertRaises(GorpError):
            await within(publisher.close())

    async def test_the_token_is_found_in_the_data_directory(self):
        if os.environ.get("GORP_TOKEN"):
            self.skipTest("GORP_TOKEN is set")
        client = await self.client(token=None, data_dir=self.gorpd.data_dir)
        self.assertEqual((await client.create_session("found")).name, "found")
        with self.assertRaises(GorpError) as missing:
            Client(self.gorpd.url, data_dir=self.gorpd.dir / "nowhere")
        self.assertIn("admin.token", str(missing.exception))

    async def test_a_subscription_survives_a_gorpd_crash_and_resumes_after_its_last_ack(self):
        client = await self.client()
        await client.create_session("s")
        room = Channel("app", "room")
        await client.bind(room, "s")
        subscription = await client.subscribe("app", gateway_id="app-1", max_backoff=0.2)
        publisher = client.publisher(max_backoff=0.2)
        seen = []
        await publisher.publish(Message(room, "m1", "one"))
        one = await next_response(subscription, seen)
        self.assertEqual((one.text, one.session, one.targets), ("echo: one", "s", [room]))
        self.assertEqual(len(seen), 1, "the empty replay ended before the live response")
        one.ack()
        await publisher.publish(Message(room, "m2", "two"))
        two = await next_response(subscription, seen)
        self.assertEqual(two.text, "echo: two")

        self.gorpd.kill()  # two was not acknowledged: it comes again
        self.gorpd.start()
        again = await next_response(subscription, seen)
        self.assertEqual((again.seq, again.text), (two.seq, "echo: two"))
        again.ack()
        await within(publisher.publish(Message(room, "m3", "three")))
        three = await next_response(subscription, seen)
        self.assertEqual(three.text, "echo: three")
        self.assertGreaterEqual(len(seen), 2, "the replay after the reconnect ended with CaughtUp")
        three.ack()
        await within(subscription.close())
        await within(publisher.close())

    async def test_a_refused_subscription_raises_when_opened(self):
        client = await self.client()
        secret = await client.create_gateway_token("tg", "telegram")
        gateway = await self.client(token=secret)
        with self.assertRaises(GorpError) as refused:
            await within(gateway.subscribe("slack"))
        self.assertEqual(refused.exception.code, grpc.StatusCode.PERMISSION_DENIED)
        subscription = await within(gateway.subscribe("telegram"))
        self.assertIsInstance(await within(subscription.__anext__()), CaughtUp)
        await within(subscription.close())
        self.assertEqual([event async for event in subscription], [], "a closed subscription ends its iteration")

    async def test_the_bind_feed_binds_reports_changes_and_keeps_the_status_of_a_failure(self):
        client = await self.client()
        await client.create_session("s")
        feed = await client.bind_feed()
        room = Channel("app", "room")
        await within(feed.bind(room, "s"))
        self.assertEqual(await within(feed.__anext__()), BindingChange(room, "s", False))
        with self.assertRaises(GorpError) as failed:
            await within(feed.bind(room, "missing"))
        self.assertEqual(failed.exception.code, grpc.StatusCode.NOT_FOUND)
        await within(feed.unbind(room))
        self.assertEqual(await within(feed.__anext__()), BindingChange(room, None, False))
        self.assertEqual(list((await client.session("s")).channels), [])
        await within(feed.close())
        self.assertEqual([change async for change in feed], [], "a closed feed ends its iteration")


class CompatibilityTest(unittest.TestCase):
    """A client generated from an earlier gorp.v1 (tests/compat/) against this gorpd."""

    def test_a_client_of_the_previous_proto_still_works(self):
        gorpd = Gorpd()
        self.addCleanup(gorpd.stop)
        for old in sorted((REPO / "clients" / "python" / "tests" / "compat").glob("proto-*")):
            with self.subTest(proto=old.name):
                script = pathlib.Path(__file__).parent / "old_client.py"
                done = subprocess.run([sys.executable, str(script), str(old), gorpd.url, gorpd.token, old.name],
                                      capture_output=True, text=True, timeout=120)
                self.assertEqual(done.returncode, 0, done.stdout + done.stderr)
                self.assertIn("echo: hello from an old client", done.stdout)


if __name__ == "__main__":
    unittest.main()
