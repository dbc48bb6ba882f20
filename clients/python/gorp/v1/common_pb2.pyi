from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class PermissionState(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    PERMISSION_STATE_PENDING: _ClassVar[PermissionState]
    PERMISSION_STATE_APPROVED: _ClassVar[PermissionState]
    PERMISSION_STATE_DENIED: _ClassVar[PermissionState]
    PERMISSION_STATE_TIMED_OUT: _ClassVar[PermissionState]
    PERMISSION_STATE_CANCELLED: _ClassVar[PermissionState]

class ResponseKind(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    RESPONSE_KIND_UNSPECIFIED: _ClassVar[ResponseKind]
    RESPONSE_KIND_COMPLETE: _ClassVar[ResponseKind]
    RESPONSE_KIND_ERROR: _ClassVar[ResponseKind]
    RESPONSE_KIND_NOTICE: _ClassVar[ResponseKind]
PERMISSION_STATE_PENDING: PermissionState
PERMISSION_STATE_APPROVED: PermissionState
PERMISSION_STATE_DENIED: PermissionState
PERMISSION_STATE_TIMED_OUT: PermissionState
PERMISSION_STATE_CANCELLED: PermissionState
RESPONSE_KIND_UNSPECIFIED: ResponseKind
RESPONSE_KIND_COMPLETE: ResponseKind
RESPONSE_KIND_ERROR: ResponseKind
RESPONSE_KIND_NOTICE: ResponseKind

class Channel(_message.Message):
    __slots__ = ("platform", "channel_id")
    PLATFORM_FIELD_NUMBER: _ClassVar[int]
    CHANNEL_ID_FIELD_NUMBER: _ClassVar[int]
    platform: str
    channel_id: str
    def __init__(self, platform: _Optional[str] = ..., channel_id: _Optional[str] = ...) -> None: ...

class MessageRef(_message.Message):
    __slots__ = ("channel", "message_id")
    CHANNEL_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_ID_FIELD_NUMBER: _ClassVar[int]
    channel: Channel
    message_id: str
    def __init__(self, channel: _Optional[_Union[Channel, _Mapping]] = ..., message_id: _Optional[str] = ...) -> None: ...

class Response(_message.Message):
    __slots__ = ("seq", "response_id", "session", "dispatch", "kind", "text", "targets", "in_reply_to", "created_at", "permission", "reply_to", "attachments", "traceparent")
    SEQ_FIELD_NUMBER: _ClassVar[int]
    RESPONSE_ID_FIELD_NUMBER: _ClassVar[int]
    SESSION_FIELD_NUMBER: _ClassVar[int]
    DISPATCH_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    TEXT_FIELD_NUMBER: _ClassVar[int]
    TARGETS_FIELD_NUMBER: _ClassVar[int]
    IN_REPLY_TO_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    PERMISSION_FIELD_NUMBER: _ClassVar[int]
    REPLY_TO_FIELD_NUMBER: _ClassVar[int]
    ATTACHMENTS_FIELD_NUMBER: _ClassVar[int]
    TRACEPARENT_FIELD_NUMBER: _ClassVar[int]
    seq: int
    response_id: str
    session: str
    dispatch: bool
    kind: ResponseKind
    text: str
    targets: _containers.RepeatedCompositeFieldContainer[Channel]
    in_reply_to: str
    created_at: str
    permission: Permission
    reply_to: MessageRef
    attachments: _containers.RepeatedCompositeFieldContainer[Attachment]
    traceparent: str
    def __init__(self, seq: _Optional[int] = ..., response_id: _Optional[str] = ..., session: _Optional[str] = ..., dispatch: _Optional[bool] = ..., kind: _Optional[_Union[ResponseKind, str]] = ..., text: _Optional[str] = ..., targets: _Optional[_Iterable[_Union[Channel, _Mapping]]] = ..., in_reply_to: _Optional[str] = ..., created_at: _Optional[str] = ..., permission: _Optional[_Union[Permission, _Mapping]] = ..., reply_to: _Optional[_Union[MessageRef, _Mapping]] = ..., attachments: _Optional[_Iterable[_Union[Attachment, _Mapping]]] = ..., traceparent: _Optional[str] = ...) -> None: ...

class Attachment(_message.Message):
    __slots__ = ("name", "media_type", "size", "sha256", "data")
    NAME_FIELD_NUMBER: _ClassVar[int]
    MEDIA_TYPE_FIELD_NUMBER: _ClassVar[int]
    SIZE_FIELD_NUMBER: _ClassVar[int]
    SHA256_FIELD_NUMBER: _ClassVar[int]
    DATA_FIELD_NUMBER: _ClassVar[int]
    name: str
    media_type: str
    size: int
    sha256: str
    data: bytes
    def __init__(self, name: _Optional[str] = ..., media_type: _Optional[str] = ..., size: _Optional[int] = ..., sha256: _Optional[str] = ..., data: _Optional[bytes] = ...) -> None: ...

class Permission(_message.Message):
    __slots__ = ("id", "title", "options", "state", "resolved_by")
    ID_FIELD_NUMBER: _ClassVar[int]
    TITLE_FIELD_NUMBER: _ClassVar[int]
    OPTIONS_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    RESOLVED_BY_FIELD_NUMBER: _ClassVar[int]
    id: str
    title: str
    options: _containers.RepeatedCompositeFieldContainer[PermissionOption]
    state: PermissionState
    resolved_by: str
    def __init__(self, id: _Optional[str] = ..., title: _Optional[str] = ..., options: _Optional[_Iterable[_Union[PermissionOption, _Mapping]]] = ..., state: _Optional[_Union[PermissionState, str]] = ..., resolved_by: _Optional[str] = ...) -> None: ...

class PermissionOption(_message.Message):
    __slots__ = ("id", "label", "kind")
    ID_FIELD_NUMBER: _ClassVar[int]
    LABEL_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    id: str
    label: str
    kind: str
    def __init__(self, id: _Optional[str] = ..., label: _Optional[str] = ..., kind: _Optional[str] = ...) -> None: ...

class BindingChange(_message.Message):
    __slots__ = ("channel", "session", "initial")
    CHANNEL_FIELD_NUMBER: _ClassVar[int]
    SESSION_FIELD_NUMBER: _ClassVar[int]
    INITIAL_FIELD_NUMBER: _ClassVar[int]
    channel: Channel
    session: str
    initial: bool
    def __init__(self, channel: _Optional[_Union[Channel, _Mapping]] = ..., session: _Optional[str] = ..., initial: _Optional[bool] = ...) -> None: ...

class GatewayHealth(_message.Message):
    __slots__ = ("undecryptable_since_start", "waiting_for_keys")
    UNDECRYPTABLE_SINCE_START_FIELD_NUMBER: _ClassVar[int]
    WAITING_FOR_KEYS_FIELD_NUMBER: _ClassVar[int]
    undecryptable_since_start: int
    waiting_for_keys: int
    def __init__(self, undecryptable_since_start: _Optional[int] = ..., waiting_for_keys: _Optional[int] = ...) -> None: ...
