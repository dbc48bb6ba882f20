"""The client's own types for what crosses the bus, and its one error type."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Optional

import grpc

from gorp.v1 import bus_pb2, common_pb2


class GorpError(Exception):
    """A failed call: gorpd's gRPC status code (None when gorpd was not reached) and reason."""

    def __init__(self, message: str, code: Optional[grpc.StatusCode] = None) -> None:
        super().__init__(message)
        self.code = code

    @classmethod
    def from_rpc(cls, error: grpc.aio.AioRpcError) -> "GorpError":
        return cls(f"gorpd: {error.details()}", error.code())


class Rejected(GorpError):
    """gorpd refused one published message; nothing was stored and the publisher goes on."""

    def __init__(self, message_id: str, code: grpc.StatusCode, reason: str) -> None:
        super().__init__(f"gorpd refused message {message_id!r}: {reason}", code)
        self.message_id = message_id
        self.reason = reason


class Closed(GorpError):
    """The publisher or subscription has stopped."""


@dataclass(frozen=True)
class Channel:
    """A chat channel on one platform."""

    platform: str
    channel_id: str

    def to_pb(self) -> common_pb2.Channel:
        return common_pb2.Channel(platform=self.platform, channel_id=self.channel_id)

    @classmethod
    def from_pb(cls, channel: common_pb2.Channel) -> "Channel":
        return cls(channel.platform, channel.channel_id)

    def __str__(self) -> str:
        return f"{self.platform}:{self.channel_id}"


@dataclass(frozen=True)
class Message:
    """One inbound message; gorpd drops a second one with the same (platform, message_id)."""

    channel: Channel
    message_id: str
    text: str
    sender_id: str = ""
    sender_name: str = ""

    def to_pb(self) -> bus_pb2.PublishRequest:
        return bus_pb2.PublishRequest(channel=self.channel.to_pb(), message_id=self.message_id, text=self.text,
                                      sender_id=self.sender_id, sender_name=self.sender_name)


class Published(enum.Enum):
    """How gorpd took a message (a refusal raises Rejected)."""

    ACCEPTED = "accepted"
    DUPLICATE = "duplicate"


@dataclass
class Response:
    """A durable final response; call ack() once it is handled."""

    seq: int
    response_id: str
    session: str
    dispatch: bool
    kind: str
    text: str
    targets: list[Channel]
    in_reply_to: str
    _ack: object = field(default=None, repr=False, compare=False)

    def ack(self) -> None:
        """Tells gorpd this response (and every earlier one) was handled."""
        if callable(self._ack):
            self._ack(self.seq)


@dataclass(frozen=True)
class Chunk:
    """A piece of an answer in progress (live only, best effort)."""

    response_id: str
    session: str
    text: str
    progress: bool


@dataclass(frozen=True)
class CaughtUp:
    """Replay is done; deliveries are live from here."""


Event = Response | Chunk | CaughtUp

_KINDS = {common_pb2.RESPONSE_KIND_ERROR: "error", common_pb2.RESPONSE_KIND_NOTICE: "notice"}


def event_from_pb(delivery: bus_pb2.Delivery, ack) -> Optional[Event]:
    kind = delivery.WhichOneof("kind")
    if kind == "response":
        r = delivery.response
        return Response(r.seq, r.response_id, r.session, r.dispatch, _KINDS.get(r.kind, "complete"), r.text,
                        [Channel.from_pb(t) for t in r.targets], r.in_reply_to, ack)
    if kind == "chunk":
        c = delivery.chunk
        return Chunk(c.response_id, c.session, c.text, c.kind == bus_pb2.CHUNK_KIND_PROGRESS)
    if kind == "caught_up":
        return CaughtUp()
    return None
