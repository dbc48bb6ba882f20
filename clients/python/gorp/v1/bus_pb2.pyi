from gorp.v1 import common_pb2 as _common_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class PublishStatus(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    PUBLISH_STATUS_UNSPECIFIED: _ClassVar[PublishStatus]
    PUBLISH_STATUS_ACCEPTED: _ClassVar[PublishStatus]
    PUBLISH_STATUS_DUPLICATE: _ClassVar[PublishStatus]
    PUBLISH_STATUS_REJECTED: _ClassVar[PublishStatus]

class ChunkKind(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    CHUNK_KIND_TEXT: _ClassVar[ChunkKind]
    CHUNK_KIND_PROGRESS: _ClassVar[ChunkKind]
PUBLISH_STATUS_UNSPECIFIED: PublishStatus
PUBLISH_STATUS_ACCEPTED: PublishStatus
PUBLISH_STATUS_DUPLICATE: PublishStatus
PUBLISH_STATUS_REJECTED: PublishStatus
CHUNK_KIND_TEXT: ChunkKind
CHUNK_KIND_PROGRESS: ChunkKind

class UploadChunk(_message.Message):
    __slots__ = ("data", "total_size")
    DATA_FIELD_NUMBER: _ClassVar[int]
    TOTAL_SIZE_FIELD_NUMBER: _ClassVar[int]
    data: bytes
    total_size: int
    def __init__(self, data: _Optional[bytes] = ..., total_size: _Optional[int] = ...) -> None: ...

class UploadResult(_message.Message):
    __slots__ = ("sha256", "size", "existed")
    SHA256_FIELD_NUMBER: _ClassVar[int]
    SIZE_FIELD_NUMBER: _ClassVar[int]
    EXISTED_FIELD_NUMBER: _ClassVar[int]
    sha256: str
    size: int
    existed: bool
    def __init__(self, sha256: _Optional[str] = ..., size: _Optional[int] = ..., existed: _Optional[bool] = ...) -> None: ...

class DownloadRequest(_message.Message):
    __slots__ = ("sha256",)
    SHA256_FIELD_NUMBER: _ClassVar[int]
    sha256: str
    def __init__(self, sha256: _Optional[str] = ...) -> None: ...

class DownloadChunk(_message.Message):
    __slots__ = ("data", "total_size")
    DATA_FIELD_NUMBER: _ClassVar[int]
    TOTAL_SIZE_FIELD_NUMBER: _ClassVar[int]
    data: bytes
    total_size: int
    def __init__(self, data: _Optional[bytes] = ..., total_size: _Optional[int] = ...) -> None: ...

class PublishRequest(_message.Message):
    __slots__ = ("channel", "message_id", "sender_id", "sender_name", "text", "attachments", "traceparent")
    CHANNEL_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_ID_FIELD_NUMBER: _ClassVar[int]
    SENDER_ID_FIELD_NUMBER: _ClassVar[int]
    SENDER_NAME_FIELD_NUMBER: _ClassVar[int]
    TEXT_FIELD_NUMBER: _ClassVar[int]
    ATTACHMENTS_FIELD_NUMBER: _ClassVar[int]
    TRACEPARENT_FIELD_NUMBER: _ClassVar[int]
    channel: _common_pb2.Channel
    message_id: str
    sender_id: str
    sender_name: str
    text: str
    attachments: _containers.RepeatedCompositeFieldContainer[_common_pb2.Attachment]
    traceparent: str
    def __init__(self, channel: _Optional[_Union[_common_pb2.Channel, _Mapping]] = ..., message_id: _Optional[str] = ..., sender_id: _Optional[str] = ..., sender_name: _Optional[str] = ..., text: _Optional[str] = ..., attachments: _Optional[_Iterable[_Union[_common_pb2.Attachment, _Mapping]]] = ..., traceparent: _Optional[str] = ...) -> None: ...

class PublishAck(_message.Message):
    __slots__ = ("message_id", "status", "error_code", "error")
    MESSAGE_ID_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    ERROR_CODE_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    message_id: str
    status: PublishStatus
    error_code: int
    error: str
    def __init__(self, message_id: _Optional[str] = ..., status: _Optional[_Union[PublishStatus, str]] = ..., error_code: _Optional[int] = ..., error: _Optional[str] = ...) -> None: ...

class SubscribeRequest(_message.Message):
    __slots__ = ("hello", "ack", "health")
    HELLO_FIELD_NUMBER: _ClassVar[int]
    ACK_FIELD_NUMBER: _ClassVar[int]
    HEALTH_FIELD_NUMBER: _ClassVar[int]
    hello: SubscribeHello
    ack: SubscribeAck
    health: _common_pb2.GatewayHealth
    def __init__(self, hello: _Optional[_Union[SubscribeHello, _Mapping]] = ..., ack: _Optional[_Union[SubscribeAck, _Mapping]] = ..., health: _Optional[_Union[_common_pb2.GatewayHealth, _Mapping]] = ...) -> None: ...

class SubscribeHello(_message.Message):
    __slots__ = ("gateway_id", "platform", "cursor")
    GATEWAY_ID_FIELD_NUMBER: _ClassVar[int]
    PLATFORM_FIELD_NUMBER: _ClassVar[int]
    CURSOR_FIELD_NUMBER: _ClassVar[int]
    gateway_id: str
    platform: str
    cursor: int
    def __init__(self, gateway_id: _Optional[str] = ..., platform: _Optional[str] = ..., cursor: _Optional[int] = ...) -> None: ...

class SubscribeAck(_message.Message):
    __slots__ = ("seq",)
    SEQ_FIELD_NUMBER: _ClassVar[int]
    seq: int
    def __init__(self, seq: _Optional[int] = ...) -> None: ...

class Delivery(_message.Message):
    __slots__ = ("chunk", "response", "caught_up")
    CHUNK_FIELD_NUMBER: _ClassVar[int]
    RESPONSE_FIELD_NUMBER: _ClassVar[int]
    CAUGHT_UP_FIELD_NUMBER: _ClassVar[int]
    chunk: Chunk
    response: _common_pb2.Response
    caught_up: CaughtUp
    def __init__(self, chunk: _Optional[_Union[Chunk, _Mapping]] = ..., response: _Optional[_Union[_common_pb2.Response, _Mapping]] = ..., caught_up: _Optional[_Union[CaughtUp, _Mapping]] = ...) -> None: ...

class CaughtUp(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class Chunk(_message.Message):
    __slots__ = ("response_id", "session", "text", "targets", "kind", "reply_to")
    RESPONSE_ID_FIELD_NUMBER: _ClassVar[int]
    SESSION_FIELD_NUMBER: _ClassVar[int]
    TEXT_FIELD_NUMBER: _ClassVar[int]
    TARGETS_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    REPLY_TO_FIELD_NUMBER: _ClassVar[int]
    response_id: str
    session: str
    text: str
    targets: _containers.RepeatedCompositeFieldContainer[_common_pb2.Channel]
    kind: ChunkKind
    reply_to: _common_pb2.MessageRef
    def __init__(self, response_id: _Optional[str] = ..., session: _Optional[str] = ..., text: _Optional[str] = ..., targets: _Optional[_Iterable[_Union[_common_pb2.Channel, _Mapping]]] = ..., kind: _Optional[_Union[ChunkKind, str]] = ..., reply_to: _Optional[_Union[_common_pb2.MessageRef, _Mapping]] = ...) -> None: ...

class BindRequest(_message.Message):
    __slots__ = ("request_id", "bind", "unbind")
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    BIND_FIELD_NUMBER: _ClassVar[int]
    UNBIND_FIELD_NUMBER: _ClassVar[int]
    request_id: str
    bind: Bind
    unbind: Unbind
    def __init__(self, request_id: _Optional[str] = ..., bind: _Optional[_Union[Bind, _Mapping]] = ..., unbind: _Optional[_Union[Unbind, _Mapping]] = ...) -> None: ...

class Bind(_message.Message):
    __slots__ = ("channel", "session")
    CHANNEL_FIELD_NUMBER: _ClassVar[int]
    SESSION_FIELD_NUMBER: _ClassVar[int]
    channel: _common_pb2.Channel
    session: str
    def __init__(self, channel: _Optional[_Union[_common_pb2.Channel, _Mapping]] = ..., session: _Optional[str] = ...) -> None: ...

class Unbind(_message.Message):
    __slots__ = ("channel",)
    CHANNEL_FIELD_NUMBER: _ClassVar[int]
    channel: _common_pb2.Channel
    def __init__(self, channel: _Optional[_Union[_common_pb2.Channel, _Mapping]] = ...) -> None: ...

class BindEvent(_message.Message):
    __slots__ = ("result", "change")
    RESULT_FIELD_NUMBER: _ClassVar[int]
    CHANGE_FIELD_NUMBER: _ClassVar[int]
    result: BindResult
    change: _common_pb2.BindingChange
    def __init__(self, result: _Optional[_Union[BindResult, _Mapping]] = ..., change: _Optional[_Union[_common_pb2.BindingChange, _Mapping]] = ...) -> None: ...

class BindResult(_message.Message):
    __slots__ = ("request_id", "ok", "error_code", "error")
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    OK_FIELD_NUMBER: _ClassVar[int]
    ERROR_CODE_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    request_id: str
    ok: bool
    error_code: int
    error: str
    def __init__(self, request_id: _Optional[str] = ..., ok: _Optional[bool] = ..., error_code: _Optional[int] = ..., error: _Optional[str] = ...) -> None: ...
