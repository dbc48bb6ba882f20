"""The Subscription: one platform's deliveries as an async iterator of
Response / Chunk / CaughtUp, with acks and automatic reconnects that resume
after the highest acked seq (sent again so gorpd stores it). A response
delivered but not acked when the stream broke arrives again."""

from __future__ import annotations

import asyncio
import logging
from typing import Optional

import grpc

from gorp.v1 import bus_pb2
from ._publisher import FATAL
from ._types import Event, GorpError, event_from_pb

log = logging.getLogger("gorp_client")

# Queued after the last event of a closed subscription.
_END = object()


class Subscription:
    """`async for event in subscription:`; call `event.ack()` on each Response once handled."""

    def __init__(self, client, platform: str, gateway_id: str, cursor: Optional[int], max_backoff: float) -> None:
        self._client = client
        self._platform = platform
        self._gateway_id = gateway_id
        self._cursor = cursor
        self._acked = cursor or 0
        self._max_backoff = max_backoff
        self._events: asyncio.Queue = asyncio.Queue(maxsize=256)
        self._acks: asyncio.Queue = asyncio.Queue()
        self._task: Optional[asyncio.Task] = None
        self._ended = False

    async def _start(self) -> None:
        call = await self._open(self._cursor)
        self._task = asyncio.get_running_loop().create_task(self._run(call))

    async def _open(self, cursor: Optional[int]):
        """Opens a stream and waits for its first delivery, so a refusal raises here."""
        call = self._client.bus.SubscribeResponses(metadata=self._client.metadata)
        hello = bus_pb2.SubscribeHello(gateway_id=self._gateway_id, platform=self._platform, cursor=cursor)
        try:
            await call.write(bus_pb2.SubscribeRequest(hello=hello))
            first = await call.read()
        except grpc.aio.AioRpcError as error:
            call.cancel()
            raise GorpError.from_rpc(error) from None
        if first is grpc.aio.EOF:
            raise GorpError("gorpd ended the delivery stream", grpc.StatusCode.UNAVAILABLE)
        self._forward(first)
        return call

    def _forward(self, delivery: bus_pb2.Delivery) -> None:
        event = event_from_pb(delivery, self.ack)
        if event is not None:
            self._events.put_nowait(event)

    def _end(self, item: object = None) -> None:
        """Marks the end of the events even when nobody reads them (a full queue drops its oldest)."""
        if self._events.full():
            self._events.get_nowait()
        self._events.put_nowait(_END if item is None else item)

    def ack(self, seq: int) -> None:
        """Acknowledges every response up to and including `seq`."""
        self._acks.put_nowait(seq)

    def __aiter__(self) -> "Subscription":
        return self

    async def __anext__(self) -> Event:
        if self._ended:
            raise StopAsyncIteration
        item = await self._events.get()
        if item is _END or isinstance(item, BaseException):
            # Closed, or stopped by a status that retrying cannot fix (raised once).
            self._ended = True
            if item is _END:
                raise StopAsyncIteration
            raise item
        return item

    async def close(self) -> None:
        """Sends the acks given so far, then ends the stream."""
        self._acks.put_nowait(None)
        if self._task:
            await asyncio.wait_for(asyncio.shield(self._task), 5)

    async def _run(self, call) -> None:
        delay = 0.1
        while True:
            try:
                if call is None:
                    resume = self._cursor is not None or self._acked > 0
                    call = await self._open(self._acked if resume else None)
                    if self._acked:
                        await call.write(bus_pb2.SubscribeRequest(ack=bus_pb2.SubscribeAck(seq=self._acked)))
                    log.info("subscription resumed after seq %d", self._acked)
                    delay = 0.1
                if await self._pump(call):
                    return
            except (grpc.aio.AioRpcError, GorpError) as error:
                code = error.code() if isinstance(error, grpc.aio.AioRpcError) else error.code
                if code in FATAL:
                    failure = GorpError.from_rpc(error) if isinstance(error, grpc.aio.AioRpcError) else error
                    self._end(failure)
                    return
                log.warning("subscription lost (%s); retrying in %.1fs", error, delay)
            if call is not None:
                call.cancel()
                call = None
            await asyncio.sleep(delay)
            delay = min(delay * 2, self._max_backoff)

    async def _pump(self, call) -> bool:
        """Forwards deliveries and acks until the stream breaks (raises) or close() (returns True)."""
        reading = asyncio.ensure_future(call.read())
        acking = asyncio.ensure_future(self._acks.get())
        try:
            while True:
                done, _ = await asyncio.wait({reading, acking}, return_when=asyncio.FIRST_COMPLETED)
                if acking in done:
                    seq = acking.result()
                    if seq is None:
                        await call.done_writing()
                        # Give the last acks a moment to reach gorpd before the reset.
                        await asyncio.sleep(0.15)
                        call.cancel()
                        self._end()
                        return True
                    if seq > self._acked:
                        self._acked = seq
                        await call.write(bus_pb2.SubscribeRequest(ack=bus_pb2.SubscribeAck(seq=seq)))
                    acking = asyncio.ensure_future(self._acks.get())
                if reading in done:
                    delivery = reading.result()
                    if delivery is grpc.aio.EOF:
                        raise GorpError("gorpd ended the delivery stream", grpc.StatusCode.UNAVAILABLE)
                    event = event_from_pb(delivery, self.ack)
                    if event is not None:
                        await self._events.put(event)
                    reading = asyncio.ensure_future(call.read())
        finally:
            reading.cancel()
            acking.cancel()
