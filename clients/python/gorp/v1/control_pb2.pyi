from gorp.v1 import common_pb2 as _common_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class TokenKind(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    TOKEN_KIND_UNSPECIFIED: _ClassVar[TokenKind]
    TOKEN_KIND_ADMIN: _ClassVar[TokenKind]
    TOKEN_KIND_GATEWAY: _ClassVar[TokenKind]
TOKEN_KIND_UNSPECIFIED: TokenKind
TOKEN_KIND_ADMIN: TokenKind
TOKEN_KIND_GATEWAY: TokenKind

class Session(_message.Message):
    __slots__ = ("name", "workspace_dir", "backend", "channels", "created_at", "state", "queued", "message_count", "agent_running", "input_tokens", "output_tokens", "last_turn_input_tokens", "last_turn_output_tokens", "cost", "cost_currency", "agent_mode", "agent_model", "context_used", "context_size")
    NAME_FIELD_NUMBER: _ClassVar[int]
    WORKSPACE_DIR_FIELD_NUMBER: _ClassVar[int]
    BACKEND_FIELD_NUMBER: _ClassVar[int]
    CHANNELS_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    QUEUED_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_COUNT_FIELD_NUMBER: _ClassVar[int]
    AGENT_RUNNING_FIELD_NUMBER: _ClassVar[int]
    INPUT_TOKENS_FIELD_NUMBER: _ClassVar[int]
    OUTPUT_TOKENS_FIELD_NUMBER: _ClassVar[int]
    LAST_TURN_INPUT_TOKENS_FIELD_NUMBER: _ClassVar[int]
    LAST_TURN_OUTPUT_TOKENS_FIELD_NUMBER: _ClassVar[int]
    COST_FIELD_NUMBER: _ClassVar[int]
    COST_CURRENCY_FIELD_NUMBER: _ClassVar[int]
    AGENT_MODE_FIELD_NUMBER: _ClassVar[int]
    AGENT_MODEL_FIELD_NUMBER: _ClassVar[int]
    CONTEXT_USED_FIELD_NUMBER: _ClassVar[int]
    CONTEXT_SIZE_FIELD_NUMBER: _ClassVar[int]
    name: str
    workspace_dir: str
    backend: str
    channels: _containers.RepeatedCompositeFieldContainer[_common_pb2.Channel]
    created_at: str
    state: str
    queued: int
    message_count: int
    agent_running: bool
    input_tokens: int
    output_tokens: int
    last_turn_input_tokens: int
    last_turn_output_tokens: int
    cost: float
    cost_currency: str
    agent_mode: str
    agent_model: str
    context_used: int
    context_size: int
    def __init__(self, name: _Optional[str] = ..., workspace_dir: _Optional[str] = ..., backend: _Optional[str] = ..., channels: _Optional[_Iterable[_Union[_common_pb2.Channel, _Mapping]]] = ..., created_at: _Optional[str] = ..., state: _Optional[str] = ..., queued: _Optional[int] = ..., message_count: _Optional[int] = ..., agent_running: _Optional[bool] = ..., input_tokens: _Optional[int] = ..., output_tokens: _Optional[int] = ..., last_turn_input_tokens: _Optional[int] = ..., last_turn_output_tokens: _Optional[int] = ..., cost: _Optional[float] = ..., cost_currency: _Optional[str] = ..., agent_mode: _Optional[str] = ..., agent_model: _Optional[str] = ..., context_used: _Optional[int] = ..., context_size: _Optional[int] = ...) -> None: ...

class CreateSessionRequest(_message.Message):
    __slots__ = ("name", "workspace", "agent")
    NAME_FIELD_NUMBER: _ClassVar[int]
    WORKSPACE_FIELD_NUMBER: _ClassVar[int]
    AGENT_FIELD_NUMBER: _ClassVar[int]
    name: str
    workspace: str
    agent: str
    def __init__(self, name: _Optional[str] = ..., workspace: _Optional[str] = ..., agent: _Optional[str] = ...) -> None: ...

class DeleteSessionRequest(_message.Message):
    __slots__ = ("name",)
    NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    def __init__(self, name: _Optional[str] = ...) -> None: ...

class DeleteSessionResponse(_message.Message):
    __slots__ = ("unbound",)
    UNBOUND_FIELD_NUMBER: _ClassVar[int]
    unbound: _containers.RepeatedCompositeFieldContainer[_common_pb2.Channel]
    def __init__(self, unbound: _Optional[_Iterable[_Union[_common_pb2.Channel, _Mapping]]] = ...) -> None: ...

class ListSessionsRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ListSessionsResponse(_message.Message):
    __slots__ = ("sessions",)
    SESSIONS_FIELD_NUMBER: _ClassVar[int]
    sessions: _containers.RepeatedCompositeFieldContainer[Session]
    def __init__(self, sessions: _Optional[_Iterable[_Union[Session, _Mapping]]] = ...) -> None: ...

class GetSessionRequest(_message.Message):
    __slots__ = ("name",)
    NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    def __init__(self, name: _Optional[str] = ...) -> None: ...

class BindSessionRequest(_message.Message):
    __slots__ = ("channel", "session")
    CHANNEL_FIELD_NUMBER: _ClassVar[int]
    SESSION_FIELD_NUMBER: _ClassVar[int]
    channel: _common_pb2.Channel
    session: str
    def __init__(self, channel: _Optional[_Union[_common_pb2.Channel, _Mapping]] = ..., session: _Optional[str] = ...) -> None: ...

class BindSessionResponse(_message.Message):
    __slots__ = ("previous_session",)
    PREVIOUS_SESSION_FIELD_NUMBER: _ClassVar[int]
    previous_session: str
    def __init__(self, previous_session: _Optional[str] = ...) -> None: ...

class UnbindChannelRequest(_message.Message):
    __slots__ = ("channel",)
    CHANNEL_FIELD_NUMBER: _ClassVar[int]
    channel: _common_pb2.Channel
    def __init__(self, channel: _Optional[_Union[_common_pb2.Channel, _Mapping]] = ...) -> None: ...

class UnbindChannelResponse(_message.Message):
    __slots__ = ("session",)
    SESSION_FIELD_NUMBER: _ClassVar[int]
    session: str
    def __init__(self, session: _Optional[str] = ...) -> None: ...

class TellRequest(_message.Message):
    __slots__ = ("session", "text", "attachments")
    SESSION_FIELD_NUMBER: _ClassVar[int]
    TEXT_FIELD_NUMBER: _ClassVar[int]
    ATTACHMENTS_FIELD_NUMBER: _ClassVar[int]
    session: str
    text: str
    attachments: _containers.RepeatedCompositeFieldContainer[_common_pb2.Attachment]
    def __init__(self, session: _Optional[str] = ..., text: _Optional[str] = ..., attachments: _Optional[_Iterable[_Union[_common_pb2.Attachment, _Mapping]]] = ...) -> None: ...

class TellResponse(_message.Message):
    __slots__ = ("message_id",)
    MESSAGE_ID_FIELD_NUMBER: _ClassVar[int]
    message_id: int
    def __init__(self, message_id: _Optional[int] = ...) -> None: ...

class ReadHistoryRequest(_message.Message):
    __slots__ = ("session", "count")
    SESSION_FIELD_NUMBER: _ClassVar[int]
    COUNT_FIELD_NUMBER: _ClassVar[int]
    session: str
    count: int
    def __init__(self, session: _Optional[str] = ..., count: _Optional[int] = ...) -> None: ...

class HistoryEntry(_message.Message):
    __slots__ = ("id", "role", "author", "text", "channel", "created_at", "attachments")
    ID_FIELD_NUMBER: _ClassVar[int]
    ROLE_FIELD_NUMBER: _ClassVar[int]
    AUTHOR_FIELD_NUMBER: _ClassVar[int]
    TEXT_FIELD_NUMBER: _ClassVar[int]
    CHANNEL_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    ATTACHMENTS_FIELD_NUMBER: _ClassVar[int]
    id: int
    role: str
    author: str
    text: str
    channel: _common_pb2.Channel
    created_at: str
    attachments: _containers.RepeatedCompositeFieldContainer[_common_pb2.Attachment]
    def __init__(self, id: _Optional[int] = ..., role: _Optional[str] = ..., author: _Optional[str] = ..., text: _Optional[str] = ..., channel: _Optional[_Union[_common_pb2.Channel, _Mapping]] = ..., created_at: _Optional[str] = ..., attachments: _Optional[_Iterable[_Union[_common_pb2.Attachment, _Mapping]]] = ...) -> None: ...

class ReadHistoryResponse(_message.Message):
    __slots__ = ("entries",)
    ENTRIES_FIELD_NUMBER: _ClassVar[int]
    entries: _containers.RepeatedCompositeFieldContainer[HistoryEntry]
    def __init__(self, entries: _Optional[_Iterable[_Union[HistoryEntry, _Mapping]]] = ...) -> None: ...

class BroadcastRequest(_message.Message):
    __slots__ = ("text",)
    TEXT_FIELD_NUMBER: _ClassVar[int]
    text: str
    def __init__(self, text: _Optional[str] = ...) -> None: ...

class BroadcastResponse(_message.Message):
    __slots__ = ("sessions",)
    SESSIONS_FIELD_NUMBER: _ClassVar[int]
    sessions: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, sessions: _Optional[_Iterable[str]] = ...) -> None: ...

class ListGatewaysRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class Gateway(_message.Message):
    __slots__ = ("gateway_id", "platform", "connected", "last_seen", "acked_seq", "pending", "health")
    GATEWAY_ID_FIELD_NUMBER: _ClassVar[int]
    PLATFORM_FIELD_NUMBER: _ClassVar[int]
    CONNECTED_FIELD_NUMBER: _ClassVar[int]
    LAST_SEEN_FIELD_NUMBER: _ClassVar[int]
    ACKED_SEQ_FIELD_NUMBER: _ClassVar[int]
    PENDING_FIELD_NUMBER: _ClassVar[int]
    HEALTH_FIELD_NUMBER: _ClassVar[int]
    gateway_id: str
    platform: str
    connected: bool
    last_seen: str
    acked_seq: int
    pending: int
    health: _common_pb2.GatewayHealth
    def __init__(self, gateway_id: _Optional[str] = ..., platform: _Optional[str] = ..., connected: _Optional[bool] = ..., last_seen: _Optional[str] = ..., acked_seq: _Optional[int] = ..., pending: _Optional[int] = ..., health: _Optional[_Union[_common_pb2.GatewayHealth, _Mapping]] = ...) -> None: ...

class ListGatewaysResponse(_message.Message):
    __slots__ = ("gateways",)
    GATEWAYS_FIELD_NUMBER: _ClassVar[int]
    gateways: _containers.RepeatedCompositeFieldContainer[Gateway]
    def __init__(self, gateways: _Optional[_Iterable[_Union[Gateway, _Mapping]]] = ...) -> None: ...

class CreateTokenRequest(_message.Message):
    __slots__ = ("name", "kind", "platform")
    NAME_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    PLATFORM_FIELD_NUMBER: _ClassVar[int]
    name: str
    kind: TokenKind
    platform: str
    def __init__(self, name: _Optional[str] = ..., kind: _Optional[_Union[TokenKind, str]] = ..., platform: _Optional[str] = ...) -> None: ...

class CreateTokenResponse(_message.Message):
    __slots__ = ("token", "secret")
    TOKEN_FIELD_NUMBER: _ClassVar[int]
    SECRET_FIELD_NUMBER: _ClassVar[int]
    token: TokenInfo
    secret: str
    def __init__(self, token: _Optional[_Union[TokenInfo, _Mapping]] = ..., secret: _Optional[str] = ...) -> None: ...

class TokenInfo(_message.Message):
    __slots__ = ("id", "name", "kind", "platform", "created_at", "revoked_at")
    ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    PLATFORM_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    REVOKED_AT_FIELD_NUMBER: _ClassVar[int]
    id: int
    name: str
    kind: TokenKind
    platform: str
    created_at: str
    revoked_at: str
    def __init__(self, id: _Optional[int] = ..., name: _Optional[str] = ..., kind: _Optional[_Union[TokenKind, str]] = ..., platform: _Optional[str] = ..., created_at: _Optional[str] = ..., revoked_at: _Optional[str] = ...) -> None: ...

class ListTokensRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ListTokensResponse(_message.Message):
    __slots__ = ("tokens",)
    TOKENS_FIELD_NUMBER: _ClassVar[int]
    tokens: _containers.RepeatedCompositeFieldContainer[TokenInfo]
    def __init__(self, tokens: _Optional[_Iterable[_Union[TokenInfo, _Mapping]]] = ...) -> None: ...

class RevokeTokenRequest(_message.Message):
    __slots__ = ("id",)
    ID_FIELD_NUMBER: _ClassVar[int]
    id: int
    def __init__(self, id: _Optional[int] = ...) -> None: ...

class RevokeTokenResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class WatchRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class WatchEvent(_message.Message):
    __slots__ = ("at", "message", "response", "binding", "session")
    AT_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    RESPONSE_FIELD_NUMBER: _ClassVar[int]
    BINDING_FIELD_NUMBER: _ClassVar[int]
    SESSION_FIELD_NUMBER: _ClassVar[int]
    at: str
    message: MessageAccepted
    response: _common_pb2.Response
    binding: _common_pb2.BindingChange
    session: SessionChange
    def __init__(self, at: _Optional[str] = ..., message: _Optional[_Union[MessageAccepted, _Mapping]] = ..., response: _Optional[_Union[_common_pb2.Response, _Mapping]] = ..., binding: _Optional[_Union[_common_pb2.BindingChange, _Mapping]] = ..., session: _Optional[_Union[SessionChange, _Mapping]] = ...) -> None: ...

class MessageAccepted(_message.Message):
    __slots__ = ("channel", "message_id", "sender", "text")
    CHANNEL_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_ID_FIELD_NUMBER: _ClassVar[int]
    SENDER_FIELD_NUMBER: _ClassVar[int]
    TEXT_FIELD_NUMBER: _ClassVar[int]
    channel: _common_pb2.Channel
    message_id: str
    sender: str
    text: str
    def __init__(self, channel: _Optional[_Union[_common_pb2.Channel, _Mapping]] = ..., message_id: _Optional[str] = ..., sender: _Optional[str] = ..., text: _Optional[str] = ...) -> None: ...

class SessionChange(_message.Message):
    __slots__ = ("name", "created")
    NAME_FIELD_NUMBER: _ClassVar[int]
    CREATED_FIELD_NUMBER: _ClassVar[int]
    name: str
    created: bool
    def __init__(self, name: _Optional[str] = ..., created: _Optional[bool] = ...) -> None: ...

class Schedule(_message.Message):
    __slots__ = ("id", "session", "spec", "cron", "once_at", "timezone", "prompt", "catch_up", "paused", "next_slot", "failures", "description", "created_by", "created_at", "last_run")
    ID_FIELD_NUMBER: _ClassVar[int]
    SESSION_FIELD_NUMBER: _ClassVar[int]
    SPEC_FIELD_NUMBER: _ClassVar[int]
    CRON_FIELD_NUMBER: _ClassVar[int]
    ONCE_AT_FIELD_NUMBER: _ClassVar[int]
    TIMEZONE_FIELD_NUMBER: _ClassVar[int]
    PROMPT_FIELD_NUMBER: _ClassVar[int]
    CATCH_UP_FIELD_NUMBER: _ClassVar[int]
    PAUSED_FIELD_NUMBER: _ClassVar[int]
    NEXT_SLOT_FIELD_NUMBER: _ClassVar[int]
    FAILURES_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    CREATED_BY_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    LAST_RUN_FIELD_NUMBER: _ClassVar[int]
    id: int
    session: str
    spec: str
    cron: str
    once_at: str
    timezone: str
    prompt: str
    catch_up: str
    paused: bool
    next_slot: str
    failures: int
    description: str
    created_by: str
    created_at: str
    last_run: ScheduleRun
    def __init__(self, id: _Optional[int] = ..., session: _Optional[str] = ..., spec: _Optional[str] = ..., cron: _Optional[str] = ..., once_at: _Optional[str] = ..., timezone: _Optional[str] = ..., prompt: _Optional[str] = ..., catch_up: _Optional[str] = ..., paused: _Optional[bool] = ..., next_slot: _Optional[str] = ..., failures: _Optional[int] = ..., description: _Optional[str] = ..., created_by: _Optional[str] = ..., created_at: _Optional[str] = ..., last_run: _Optional[_Union[ScheduleRun, _Mapping]] = ...) -> None: ...

class ScheduleRun(_message.Message):
    __slots__ = ("id", "schedule_id", "slot", "manual", "fired_at", "started_at", "ended_at", "outcome", "answer_chars", "error")
    ID_FIELD_NUMBER: _ClassVar[int]
    SCHEDULE_ID_FIELD_NUMBER: _ClassVar[int]
    SLOT_FIELD_NUMBER: _ClassVar[int]
    MANUAL_FIELD_NUMBER: _ClassVar[int]
    FIRED_AT_FIELD_NUMBER: _ClassVar[int]
    STARTED_AT_FIELD_NUMBER: _ClassVar[int]
    ENDED_AT_FIELD_NUMBER: _ClassVar[int]
    OUTCOME_FIELD_NUMBER: _ClassVar[int]
    ANSWER_CHARS_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    id: int
    schedule_id: int
    slot: str
    manual: bool
    fired_at: str
    started_at: str
    ended_at: str
    outcome: str
    answer_chars: int
    error: str
    def __init__(self, id: _Optional[int] = ..., schedule_id: _Optional[int] = ..., slot: _Optional[str] = ..., manual: _Optional[bool] = ..., fired_at: _Optional[str] = ..., started_at: _Optional[str] = ..., ended_at: _Optional[str] = ..., outcome: _Optional[str] = ..., answer_chars: _Optional[int] = ..., error: _Optional[str] = ...) -> None: ...

class AddScheduleRequest(_message.Message):
    __slots__ = ("session", "when", "prompt", "timezone", "catch_up")
    SESSION_FIELD_NUMBER: _ClassVar[int]
    WHEN_FIELD_NUMBER: _ClassVar[int]
    PROMPT_FIELD_NUMBER: _ClassVar[int]
    TIMEZONE_FIELD_NUMBER: _ClassVar[int]
    CATCH_UP_FIELD_NUMBER: _ClassVar[int]
    session: str
    when: str
    prompt: str
    timezone: str
    catch_up: str
    def __init__(self, session: _Optional[str] = ..., when: _Optional[str] = ..., prompt: _Optional[str] = ..., timezone: _Optional[str] = ..., catch_up: _Optional[str] = ...) -> None: ...

class ListSchedulesRequest(_message.Message):
    __slots__ = ("session",)
    SESSION_FIELD_NUMBER: _ClassVar[int]
    session: str
    def __init__(self, session: _Optional[str] = ...) -> None: ...

class ListSchedulesResponse(_message.Message):
    __slots__ = ("schedules",)
    SCHEDULES_FIELD_NUMBER: _ClassVar[int]
    schedules: _containers.RepeatedCompositeFieldContainer[Schedule]
    def __init__(self, schedules: _Optional[_Iterable[_Union[Schedule, _Mapping]]] = ...) -> None: ...

class SetSchedulePausedRequest(_message.Message):
    __slots__ = ("id", "paused")
    ID_FIELD_NUMBER: _ClassVar[int]
    PAUSED_FIELD_NUMBER: _ClassVar[int]
    id: int
    paused: bool
    def __init__(self, id: _Optional[int] = ..., paused: _Optional[bool] = ...) -> None: ...

class DeleteScheduleRequest(_message.Message):
    __slots__ = ("id",)
    ID_FIELD_NUMBER: _ClassVar[int]
    id: int
    def __init__(self, id: _Optional[int] = ...) -> None: ...

class DeleteScheduleResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class RunScheduleRequest(_message.Message):
    __slots__ = ("id",)
    ID_FIELD_NUMBER: _ClassVar[int]
    id: int
    def __init__(self, id: _Optional[int] = ...) -> None: ...

class ListScheduleRunsRequest(_message.Message):
    __slots__ = ("id", "count")
    ID_FIELD_NUMBER: _ClassVar[int]
    COUNT_FIELD_NUMBER: _ClassVar[int]
    id: int
    count: int
    def __init__(self, id: _Optional[int] = ..., count: _Optional[int] = ...) -> None: ...

class ListScheduleRunsResponse(_message.Message):
    __slots__ = ("runs",)
    RUNS_FIELD_NUMBER: _ClassVar[int]
    runs: _containers.RepeatedCompositeFieldContainer[ScheduleRun]
    def __init__(self, runs: _Optional[_Iterable[_Union[ScheduleRun, _Mapping]]] = ...) -> None: ...

class Hook(_message.Message):
    __slots__ = ("session", "template", "per_minute", "created_at", "rotated_at")
    SESSION_FIELD_NUMBER: _ClassVar[int]
    TEMPLATE_FIELD_NUMBER: _ClassVar[int]
    PER_MINUTE_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    ROTATED_AT_FIELD_NUMBER: _ClassVar[int]
    session: str
    template: str
    per_minute: int
    created_at: str
    rotated_at: str
    def __init__(self, session: _Optional[str] = ..., template: _Optional[str] = ..., per_minute: _Optional[int] = ..., created_at: _Optional[str] = ..., rotated_at: _Optional[str] = ...) -> None: ...

class CreateHookRequest(_message.Message):
    __slots__ = ("session", "template", "per_minute")
    SESSION_FIELD_NUMBER: _ClassVar[int]
    TEMPLATE_FIELD_NUMBER: _ClassVar[int]
    PER_MINUTE_FIELD_NUMBER: _ClassVar[int]
    session: str
    template: str
    per_minute: int
    def __init__(self, session: _Optional[str] = ..., template: _Optional[str] = ..., per_minute: _Optional[int] = ...) -> None: ...

class HookSecret(_message.Message):
    __slots__ = ("hook", "secret")
    HOOK_FIELD_NUMBER: _ClassVar[int]
    SECRET_FIELD_NUMBER: _ClassVar[int]
    hook: Hook
    secret: str
    def __init__(self, hook: _Optional[_Union[Hook, _Mapping]] = ..., secret: _Optional[str] = ...) -> None: ...

class ListHooksRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ListHooksResponse(_message.Message):
    __slots__ = ("hooks",)
    HOOKS_FIELD_NUMBER: _ClassVar[int]
    hooks: _containers.RepeatedCompositeFieldContainer[Hook]
    def __init__(self, hooks: _Optional[_Iterable[_Union[Hook, _Mapping]]] = ...) -> None: ...

class RotateHookSecretRequest(_message.Message):
    __slots__ = ("session",)
    SESSION_FIELD_NUMBER: _ClassVar[int]
    session: str
    def __init__(self, session: _Optional[str] = ...) -> None: ...

class DeleteHookRequest(_message.Message):
    __slots__ = ("session",)
    SESSION_FIELD_NUMBER: _ClassVar[int]
    session: str
    def __init__(self, session: _Optional[str] = ...) -> None: ...

class DeleteHookResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ExportSessionConfigRequest(_message.Message):
    __slots__ = ("session",)
    SESSION_FIELD_NUMBER: _ClassVar[int]
    session: str
    def __init__(self, session: _Optional[str] = ...) -> None: ...

class ExportSessionConfigResponse(_message.Message):
    __slots__ = ("yaml",)
    YAML_FIELD_NUMBER: _ClassVar[int]
    yaml: str
    def __init__(self, yaml: _Optional[str] = ...) -> None: ...

class ImportSessionConfigRequest(_message.Message):
    __slots__ = ("session", "yaml")
    SESSION_FIELD_NUMBER: _ClassVar[int]
    YAML_FIELD_NUMBER: _ClassVar[int]
    session: str
    yaml: str
    def __init__(self, session: _Optional[str] = ..., yaml: _Optional[str] = ...) -> None: ...

class ImportSessionConfigResponse(_message.Message):
    __slots__ = ("schedules", "hook")
    SCHEDULES_FIELD_NUMBER: _ClassVar[int]
    HOOK_FIELD_NUMBER: _ClassVar[int]
    schedules: _containers.RepeatedCompositeFieldContainer[Schedule]
    hook: HookSecret
    def __init__(self, schedules: _Optional[_Iterable[_Union[Schedule, _Mapping]]] = ..., hook: _Optional[_Union[HookSecret, _Mapping]] = ...) -> None: ...

class BackupRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class BackupChunk(_message.Message):
    __slots__ = ("data", "total_bytes", "sha256")
    DATA_FIELD_NUMBER: _ClassVar[int]
    TOTAL_BYTES_FIELD_NUMBER: _ClassVar[int]
    SHA256_FIELD_NUMBER: _ClassVar[int]
    data: bytes
    total_bytes: int
    sha256: str
    def __init__(self, data: _Optional[bytes] = ..., total_bytes: _Optional[int] = ..., sha256: _Optional[str] = ...) -> None: ...

class PruneHistoryRequest(_message.Message):
    __slots__ = ("session", "keep_last", "older_than_secs")
    SESSION_FIELD_NUMBER: _ClassVar[int]
    KEEP_LAST_FIELD_NUMBER: _ClassVar[int]
    OLDER_THAN_SECS_FIELD_NUMBER: _ClassVar[int]
    session: str
    keep_last: int
    older_than_secs: int
    def __init__(self, session: _Optional[str] = ..., keep_last: _Optional[int] = ..., older_than_secs: _Optional[int] = ...) -> None: ...

class PruneHistoryResponse(_message.Message):
    __slots__ = ("removed",)
    REMOVED_FIELD_NUMBER: _ClassVar[int]
    removed: int
    def __init__(self, removed: _Optional[int] = ...) -> None: ...

class GetServerInfoRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ServerInfo(_message.Message):
    __slots__ = ("version", "max_body_bytes", "read_default", "read_max", "max_queued_messages", "timezone", "history_keep_days", "database_bytes", "database_free_bytes", "max_database_bytes", "table_rows", "dedup_window_days", "gateway_stale_days", "compacted_through", "compacted_through_others", "stale_gateways", "compacted_at", "max_sender_bytes", "max_id_bytes", "max_frame_bytes", "grpc_max_connections", "http_max_connections", "header_read_timeout_secs", "dispatch_scope", "server_time", "disk_free_bytes", "max_attachment_bytes", "max_message_attachment_bytes", "tls_certificates", "replica", "replicas", "lease_secs")
    class TableRowsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: int
        def __init__(self, key: _Optional[str] = ..., value: _Optional[int] = ...) -> None: ...
    class CompactedThroughEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: int
        def __init__(self, key: _Optional[str] = ..., value: _Optional[int] = ...) -> None: ...
    VERSION_FIELD_NUMBER: _ClassVar[int]
    MAX_BODY_BYTES_FIELD_NUMBER: _ClassVar[int]
    READ_DEFAULT_FIELD_NUMBER: _ClassVar[int]
    READ_MAX_FIELD_NUMBER: _ClassVar[int]
    MAX_QUEUED_MESSAGES_FIELD_NUMBER: _ClassVar[int]
    TIMEZONE_FIELD_NUMBER: _ClassVar[int]
    HISTORY_KEEP_DAYS_FIELD_NUMBER: _ClassVar[int]
    DATABASE_BYTES_FIELD_NUMBER: _ClassVar[int]
    DATABASE_FREE_BYTES_FIELD_NUMBER: _ClassVar[int]
    MAX_DATABASE_BYTES_FIELD_NUMBER: _ClassVar[int]
    TABLE_ROWS_FIELD_NUMBER: _ClassVar[int]
    DEDUP_WINDOW_DAYS_FIELD_NUMBER: _ClassVar[int]
    GATEWAY_STALE_DAYS_FIELD_NUMBER: _ClassVar[int]
    COMPACTED_THROUGH_FIELD_NUMBER: _ClassVar[int]
    COMPACTED_THROUGH_OTHERS_FIELD_NUMBER: _ClassVar[int]
    STALE_GATEWAYS_FIELD_NUMBER: _ClassVar[int]
    COMPACTED_AT_FIELD_NUMBER: _ClassVar[int]
    MAX_SENDER_BYTES_FIELD_NUMBER: _ClassVar[int]
    MAX_ID_BYTES_FIELD_NUMBER: _ClassVar[int]
    MAX_FRAME_BYTES_FIELD_NUMBER: _ClassVar[int]
    GRPC_MAX_CONNECTIONS_FIELD_NUMBER: _ClassVar[int]
    HTTP_MAX_CONNECTIONS_FIELD_NUMBER: _ClassVar[int]
    HEADER_READ_TIMEOUT_SECS_FIELD_NUMBER: _ClassVar[int]
    DISPATCH_SCOPE_FIELD_NUMBER: _ClassVar[int]
    SERVER_TIME_FIELD_NUMBER: _ClassVar[int]
    DISK_FREE_BYTES_FIELD_NUMBER: _ClassVar[int]
    MAX_ATTACHMENT_BYTES_FIELD_NUMBER: _ClassVar[int]
    MAX_MESSAGE_ATTACHMENT_BYTES_FIELD_NUMBER: _ClassVar[int]
    TLS_CERTIFICATES_FIELD_NUMBER: _ClassVar[int]
    REPLICA_FIELD_NUMBER: _ClassVar[int]
    REPLICAS_FIELD_NUMBER: _ClassVar[int]
    LEASE_SECS_FIELD_NUMBER: _ClassVar[int]
    version: str
    max_body_bytes: int
    read_default: int
    read_max: int
    max_queued_messages: int
    timezone: str
    history_keep_days: int
    database_bytes: int
    database_free_bytes: int
    max_database_bytes: int
    table_rows: _containers.ScalarMap[str, int]
    dedup_window_days: int
    gateway_stale_days: int
    compacted_through: _containers.ScalarMap[str, int]
    compacted_through_others: int
    stale_gateways: _containers.RepeatedScalarFieldContainer[str]
    compacted_at: str
    max_sender_bytes: int
    max_id_bytes: int
    max_frame_bytes: int
    grpc_max_connections: int
    http_max_connections: int
    header_read_timeout_secs: int
    dispatch_scope: str
    server_time: str
    disk_free_bytes: int
    max_attachment_bytes: int
    max_message_attachment_bytes: int
    tls_certificates: _containers.RepeatedCompositeFieldContainer[TlsCertificate]
    replica: str
    replicas: _containers.RepeatedCompositeFieldContainer[ReplicaInfo]
    lease_secs: int
    def __init__(self, version: _Optional[str] = ..., max_body_bytes: _Optional[int] = ..., read_default: _Optional[int] = ..., read_max: _Optional[int] = ..., max_queued_messages: _Optional[int] = ..., timezone: _Optional[str] = ..., history_keep_days: _Optional[int] = ..., database_bytes: _Optional[int] = ..., database_free_bytes: _Optional[int] = ..., max_database_bytes: _Optional[int] = ..., table_rows: _Optional[_Mapping[str, int]] = ..., dedup_window_days: _Optional[int] = ..., gateway_stale_days: _Optional[int] = ..., compacted_through: _Optional[_Mapping[str, int]] = ..., compacted_through_others: _Optional[int] = ..., stale_gateways: _Optional[_Iterable[str]] = ..., compacted_at: _Optional[str] = ..., max_sender_bytes: _Optional[int] = ..., max_id_bytes: _Optional[int] = ..., max_frame_bytes: _Optional[int] = ..., grpc_max_connections: _Optional[int] = ..., http_max_connections: _Optional[int] = ..., header_read_timeout_secs: _Optional[int] = ..., dispatch_scope: _Optional[str] = ..., server_time: _Optional[str] = ..., disk_free_bytes: _Optional[int] = ..., max_attachment_bytes: _Optional[int] = ..., max_message_attachment_bytes: _Optional[int] = ..., tls_certificates: _Optional[_Iterable[_Union[TlsCertificate, _Mapping]]] = ..., replica: _Optional[str] = ..., replicas: _Optional[_Iterable[_Union[ReplicaInfo, _Mapping]]] = ..., lease_secs: _Optional[int] = ...) -> None: ...

class ReplicaInfo(_message.Message):
    __slots__ = ("id", "name", "started_at", "alive", "sessions")
    ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    STARTED_AT_FIELD_NUMBER: _ClassVar[int]
    ALIVE_FIELD_NUMBER: _ClassVar[int]
    SESSIONS_FIELD_NUMBER: _ClassVar[int]
    id: str
    name: str
    started_at: str
    alive: bool
    sessions: int
    def __init__(self, id: _Optional[str] = ..., name: _Optional[str] = ..., started_at: _Optional[str] = ..., alive: _Optional[bool] = ..., sessions: _Optional[int] = ...) -> None: ...

class TlsCertificate(_message.Message):
    __slots__ = ("subject", "not_after")
    SUBJECT_FIELD_NUMBER: _ClassVar[int]
    NOT_AFTER_FIELD_NUMBER: _ClassVar[int]
    subject: str
    not_after: str
    def __init__(self, subject: _Optional[str] = ..., not_after: _Optional[str] = ...) -> None: ...

class CheckAgentsRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class AgentCheck(_message.Message):
    __slots__ = ("agent", "ok", "detail")
    AGENT_FIELD_NUMBER: _ClassVar[int]
    OK_FIELD_NUMBER: _ClassVar[int]
    DETAIL_FIELD_NUMBER: _ClassVar[int]
    agent: str
    ok: bool
    detail: str
    def __init__(self, agent: _Optional[str] = ..., ok: _Optional[bool] = ..., detail: _Optional[str] = ...) -> None: ...

class CheckAgentsResponse(_message.Message):
    __slots__ = ("agents",)
    AGENTS_FIELD_NUMBER: _ClassVar[int]
    agents: _containers.RepeatedCompositeFieldContainer[AgentCheck]
    def __init__(self, agents: _Optional[_Iterable[_Union[AgentCheck, _Mapping]]] = ...) -> None: ...
