"""The Publisher: a window of messages in flight on one Publish stream at a
time. Unacknowledged messages outlive the stream: after a reconnect they are
sent again in order; gorpd answers DUPLICATE for what it had committed,
which counts as success. A refused message fails only its own future
(Rejected); a bad token fails every waiting message and stops the publisher."""

from __future__ import annotations

import asyncio
import collections
import logging

import grpc

from gorp.v1 import bus_pb2
from ._types import Closed, GorpError, Message, Published, Rejected

log = logging.getLogger("gorp_client")

FATAL = {grpc.StatusCode.UNAUTHENTICATED, grpc.StatusCode.PERMISSION_DENIED, grpc.StatusCode.INVALID_ARGUMENT,
         grpc.StatusCode.OUT_OF_RANGE, grpc.StatusCode.UNIMPLEMENTED}


class Publisher:
    """Publishes messages; `await publish(m)` waits for the ack, `await send(m)` returns a future."""

    def __init__(self, client, *, window: int, max_backoff: float) -> None:
        self._client = client
        self._window = window
        self._max_backoff = max_backoff
        self._queue: collections.deque[tuple[bus_pb2.PublishRequest, asyncio.Future]] = collections.deque()
        self._wake = asyncio.Event()
        self._closing = False
        self._error: GorpError | None = None
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def send(self, message: Message) -> asyncio.Future:
        """Queues `message`; the returned future resolves to Published or raises Rejected."""
        if self._closing or self._error:
            raise self._error or Closed("the publisher is closed")
        future = asyncio.get_running_loop().create_future()
        self._queue.append((message.to_pb(), future))
        self._wake.set()
        return future

    async def publish(self, message: Message) -> Published:
        return await (await self.send(message))

    async def close(self) -> None:
        """Waits until every queued message is acknowledged; raises the error that stopped it early."""
        self._closing = True
        self._wake.set()
        await self._task
        if self._error:
            raise self._error

    async def _run(self) -> None:
        delay = 0.1
        while True:
            while not self._queue:
                if self._closing:
                    return
                self._wake.clear()
                await self._wake.wait()
            try:
                await self._stream()
                delay = 0.1
            except grpc.aio.AioRpcError as error:
                if error.code() in FATAL:
                    self._fail(GorpError.from_rpc(error))
                    return
                log.warning("publish stream lost (%s); %d unacknowledged, retrying in %.1fs",
                            error.details(), len(self._queue), delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, self._max_backoff)

    def _fail(self, error: GorpError) -> None:
        self._error = error
        while self._queue:
            _, future = self._queue.popleft()
            if not future.done():
                future.set_exception(error)

    async def _stream(self) -> None:
        call = self._client.bus.Publish(metadata=self._client.metadata)
        sent = 0

        async def write() -> None:
            nonlocal sent
            while True:
                while sent < len(self._queue) and sent < self._window:
                    await call.write(self._queue[sent][0])
                    sent += 1
                self._wake.clear()
                await self._wake.wait()

        writer = asyncio.get_running_loop().create_task(write())
        try:
            while self._queue or not self._closing:
                if not self._queue:
                    # Nothing in flight: wait for new messages or close.
                    self._wake.clear()
                    await self._wake.wait()
                    continue
                ack = await call.read()
                if writer.done() and writer.exception():
                    raise writer.exception()
                if ack is grpc.aio.EOF:
                    await call.wait_for_connection()
                    raise grpc.aio.AioRpcError(grpc.StatusCode.UNAVAILABLE, None, None,
                                               "gorpd ended the publish stream")
                sent = max(sent - 1, 0)
                self._settle(ack)
                self._wake.set()
        finally:
            writer.cancel()
            call.cancel()

    def _settle(self, ack: bus_pb2.PublishAck) -> None:
        for at, (request, future) in enumerate(self._queue):
            if request.message_id == ack.message_id:
                del self._queue[at]
                break
        else:
            log.warning("ack for a message that is not waiting: %s", ack.message_id)
            return
        if future.done():
            return
        if ack.status == bus_pb2.PUBLISH_STATUS_ACCEPTED:
            future.set_result(Published.ACCEPTED)
        elif ack.status == bus_pb2.PUBLISH_STATUS_DUPLICATE:
            future.set_result(Published.DUPLICATE)
        else:
            code = next((c for c in grpc.StatusCode if c.value[0] == ack.error_code), grpc.StatusCode.UNKNOWN)
            log.warning("gorpd refused message %s: %s", ack.message_id, ack.error)
            future.set_exception(Rejected(ack.message_id, code, ack.error))
