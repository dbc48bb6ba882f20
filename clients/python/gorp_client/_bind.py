"""The bind feed: bind and unbind channels over the Bus.BindChannel stream,
and follow every binding change it carries (first a snapshot of the current
bindings, with initial=True). It does not reconnect: when the stream ends,
waiting calls raise Closed and the iteration of changes ends."""

from __future__ import annotations

import asyncio
import itertools
from dataclasses import dataclass
from typing import Optional

import grpc

from gorp.v1 import bus_pb2
from ._types import Channel, Closed, GorpError

_END = object()


@dataclass(frozen=True)
class BindingChange:
    """A channel's binding changed; session is None when it was unbound."""

    channel: Channel
    session: Optional[str]
    initial: bool


class BindFeed:
    """`await feed.bind(channel, session)`, `await feed.unbind(channel)`, `async for change in feed:`."""

    def __init__(self, client) -> None:
        self._call = client.bus.BindChannel(metadata=client.metadata)
        self._ids = itertools.count(1)
        self._waiting: dict[str, asyncio.Future] = {}
        self._changes: asyncio.Queue = asyncio.Queue(maxsize=256)
        self._task = asyncio.get_running_loop().create_task(self._read())

    async def bind(self, channel: Channel, session: str) -> None:
        await self._request(bus_pb2.BindRequest(bind=bus_pb2.Bind(channel=channel.to_pb(), session=session)))

    async def unbind(self, channel: Channel) -> None:
        await self._request(bus_pb2.BindRequest(unbind=bus_pb2.Unbind(channel=channel.to_pb())))

    async def _request(self, request: bus_pb2.BindRequest) -> None:
        if self._task.done():
            raise Closed("the bind feed is closed")
        request.request_id = str(next(self._ids))
        result = asyncio.get_running_loop().create_future()
        self._waiting[request.request_id] = result
        try:
            await self._call.write(request)
        except grpc.aio.AioRpcError as error:
            raise GorpError.from_rpc(error) from None
        await result

    def __aiter__(self) -> "BindFeed":
        return self

    async def __anext__(self) -> BindingChange:
        item = await self._changes.get()
        if item is _END:
            self._changes.put_nowait(_END)
            raise StopAsyncIteration
        return item

    async def close(self) -> None:
        self._call.cancel()
        await asyncio.gather(self._task, return_exceptions=True)

    async def _read(self) -> None:
        try:
            while (event := await self._call.read()) is not grpc.aio.EOF:
                if event.WhichOneof("kind") == "result":
                    self._settle(event.result)
                elif event.WhichOneof("kind") == "change" and event.change.HasField("channel"):
                    change = BindingChange(Channel.from_pb(event.change.channel), event.change.session or None,
                                           event.change.initial)
                    if not self._changes.full():  # a feed nobody reads must not stop bind results
                        self._changes.put_nowait(change)
        except (grpc.aio.AioRpcError, asyncio.CancelledError):
            pass
        finally:
            for result in self._waiting.values():
                if not result.done():
                    result.set_exception(Closed("the bind feed is closed"))
            if self._changes.full():
                self._changes.get_nowait()
            self._changes.put_nowait(_END)

    def _settle(self, result: bus_pb2.BindResult) -> None:
        waiting = self._waiting.pop(result.request_id, None)
        if waiting is None or waiting.done():
            return
        if result.ok:
            waiting.set_result(None)
        else:
            code = next((c for c in grpc.StatusCode if c.value[0] == result.error_code), grpc.StatusCode.UNKNOWN)
            waiting.set_exception(GorpError(f"gorpd: {result.error}", code))
