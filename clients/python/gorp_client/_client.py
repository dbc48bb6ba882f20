"""Connecting to gorpd (http/https, CA file, token from the caller,
GORP_TOKEN or a local gorpd's admin.token, keepalive) and typed Control calls."""

from __future__ import annotations

import os
import pathlib
from typing import Optional

import grpc

from gorp.v1 import bus_pb2_grpc, control_pb2, control_pb2_grpc
from ._types import Channel, GorpError

TOKEN_ENV = "GORP_TOKEN"

# TCP_NODELAY is gRPC core's default; keepalive notices a dead connection.
_OPTIONS = [
    ("grpc.keepalive_time_ms", 20_000),
    ("grpc.keepalive_timeout_ms", 10_000),
    ("grpc.keepalive_permit_without_calls", 1),
]


def default_data_dir() -> pathlib.Path:
    """gorpd's default data directory: $XDG_DATA_HOME/gorp, else ~/.local/share/gorp, else ./gorp-data."""
    if os.environ.get("XDG_DATA_HOME"):
        return pathlib.Path(os.environ["XDG_DATA_HOME"]) / "gorp"
    if os.environ.get("HOME"):
        return pathlib.Path(os.environ["HOME"]) / ".local/share/gorp"
    return pathlib.Path("gorp-data")


def resolve_token(token: Optional[str], data_dir: Optional[os.PathLike]) -> str:
    """The given token, else GORP_TOKEN, else <data dir>/admin.token."""
    if token is not None:
        if not token.strip():
            raise GorpError("the token is empty")
        return token.strip()
    if os.environ.get(TOKEN_ENV, "").strip():
        return os.environ[TOKEN_ENV].strip()
    path = pathlib.Path(data_dir) if data_dir else default_data_dir()
    path = path / "admin.token"
    try:
        found = path.read_text().strip()
    except OSError as error:
        raise GorpError(f"no token given, {TOKEN_ENV} is not set and cannot read {path}: {error}") from None
    if not found:
        raise GorpError(f"no token: {path} is empty")
    return found


class Client:
    """A connection to gorpd with a token. Use as `async with Client(url) as client:`."""

    def __init__(self, url: str, token: Optional[str] = None, *, data_dir: Optional[os.PathLike] = None,
                 ca_cert: Optional[os.PathLike] = None) -> None:
        self.url = url
        if url.startswith("http://"):
            self._channel = grpc.aio.insecure_channel(url.removeprefix("http://"), options=_OPTIONS)
        elif url.startswith("https://"):
            try:
                roots = pathlib.Path(ca_cert).read_bytes() if ca_cert else None
            except OSError as error:
                raise GorpError(f"cannot read the CA certificate {ca_cert}: {error}") from None
            credentials = grpc.ssl_channel_credentials(root_certificates=roots)
            self._channel = grpc.aio.secure_channel(url.removeprefix("https://"), credentials, options=_OPTIONS)
        else:
            raise GorpError(f"{url!r} must start with http:// or https://")
        self.metadata = (("authorization", f"Bearer {resolve_token(token, data_dir)}"),)
        self.control = control_pb2_grpc.ControlStub(self._channel)
        self.bus = bus_pb2_grpc.BusStub(self._channel)

    async def __aenter__(self) -> "Client":
        return self

    async def __aexit__(self, *_exc) -> None:
        await self.close()

    async def close(self) -> None:
        await self._channel.close()

    async def _call(self, method, request):
        try:
            return await method(request, metadata=self.metadata)
        except grpc.aio.AioRpcError as error:
            raise GorpError.from_rpc(error) from None

    async def create_session(self, name: str, agent: str = "", workspace: str = "") -> control_pb2.Session:
        return await self._call(self.control.CreateSession,
                                control_pb2.CreateSessionRequest(name=name, agent=agent, workspace=workspace))

    async def session(self, name: str) -> control_pb2.Session:
        return await self._call(self.control.GetSession, control_pb2.GetSessionRequest(name=name))

    async def bind(self, channel: Channel, session: str) -> str:
        """Binds `channel` to `session`; returns the session it was bound to before ("" for none)."""
        request = control_pb2.BindSessionRequest(channel=channel.to_pb(), session=session)
        return (await self._call(self.control.BindSession, request)).previous_session

    async def history(self, session: str, count: int = 0) -> list[control_pb2.HistoryEntry]:
        request = control_pb2.ReadHistoryRequest(session=session, count=count)
        return list((await self._call(self.control.ReadHistory, request)).entries)

    async def create_gateway_token(self, name: str, platform: str) -> str:
        request = control_pb2.CreateTokenRequest(name=name, kind=control_pb2.TOKEN_KIND_GATEWAY, platform=platform)
        return (await self._call(self.control.CreateToken, request)).secret

    async def bind_feed(self) -> "BindFeed":
        """Binds and unbinds over the BindChannel stream and follows binding changes."""
        from ._bind import BindFeed
        return BindFeed(self)

    def publisher(self, window: int = 256, max_backoff: float = 5.0) -> "Publisher":
        from ._publisher import Publisher
        return Publisher(self, window=window, max_backoff=max_backoff)

    async def subscribe(self, platform: str, gateway_id: str = "", cursor: Optional[int] = None,
                        max_backoff: float = 5.0) -> "Subscription":
        """Opens a subscription; a refused token, platform or cursor raises here."""
        from ._subscription import Subscription
        subscription = Subscription(self, platform, gateway_id, cursor, max_backoff)
        await subscription._start()
        return subscription
