import datetime

from buf.validate import validate_pb2 as _validate_pb2
from google.api import annotations_pb2 as _annotations_pb2
from google.protobuf import struct_pb2 as _struct_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from somagent.orchestrator.v1 import sse_options_pb2 as _sse_options_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class SessionStatus(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    SESSION_STATUS_UNSPECIFIED: _ClassVar[SessionStatus]
    SESSION_STATUS_RUNNING: _ClassVar[SessionStatus]
    SESSION_STATUS_COMPLETED: _ClassVar[SessionStatus]
    SESSION_STATUS_REJECTED: _ClassVar[SessionStatus]
    SESSION_STATUS_FAILED: _ClassVar[SessionStatus]
    SESSION_STATUS_CANCELED: _ClassVar[SessionStatus]
    SESSION_STATUS_TERMINATED: _ClassVar[SessionStatus]
    SESSION_STATUS_TIMED_OUT: _ClassVar[SessionStatus]

class AuditStatus(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    AUDIT_STATUS_UNSPECIFIED: _ClassVar[AuditStatus]
    AUDIT_STATUS_ACCEPTED: _ClassVar[AuditStatus]
    AUDIT_STATUS_REJECTED: _ClassVar[AuditStatus]
    AUDIT_STATUS_FAILED: _ClassVar[AuditStatus]
    AUDIT_STATUS_CANCELED: _ClassVar[AuditStatus]
SESSION_STATUS_UNSPECIFIED: SessionStatus
SESSION_STATUS_RUNNING: SessionStatus
SESSION_STATUS_COMPLETED: SessionStatus
SESSION_STATUS_REJECTED: SessionStatus
SESSION_STATUS_FAILED: SessionStatus
SESSION_STATUS_CANCELED: SessionStatus
SESSION_STATUS_TERMINATED: SessionStatus
SESSION_STATUS_TIMED_OUT: SessionStatus
AUDIT_STATUS_UNSPECIFIED: AuditStatus
AUDIT_STATUS_ACCEPTED: AuditStatus
AUDIT_STATUS_REJECTED: AuditStatus
AUDIT_STATUS_FAILED: AuditStatus
AUDIT_STATUS_CANCELED: AuditStatus

class StartRequest(_message.Message):
    __slots__ = ("tenant", "user", "prompt", "model", "metadata")
    TENANT_FIELD_NUMBER: _ClassVar[int]
    USER_FIELD_NUMBER: _ClassVar[int]
    PROMPT_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    METADATA_FIELD_NUMBER: _ClassVar[int]
    tenant: str
    user: str
    prompt: str
    model: str
    metadata: _struct_pb2.Struct
    def __init__(self, tenant: _Optional[str] = ..., user: _Optional[str] = ..., prompt: _Optional[str] = ..., model: _Optional[str] = ..., metadata: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ...) -> None: ...

class StartResponse(_message.Message):
    __slots__ = ("workflow_id", "run_id", "session_id", "task_queue")
    WORKFLOW_ID_FIELD_NUMBER: _ClassVar[int]
    RUN_ID_FIELD_NUMBER: _ClassVar[int]
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    TASK_QUEUE_FIELD_NUMBER: _ClassVar[int]
    workflow_id: str
    run_id: str
    session_id: str
    task_queue: str
    def __init__(self, workflow_id: _Optional[str] = ..., run_id: _Optional[str] = ..., session_id: _Optional[str] = ..., task_queue: _Optional[str] = ...) -> None: ...

class GetRequest(_message.Message):
    __slots__ = ("workflow_id",)
    WORKFLOW_ID_FIELD_NUMBER: _ClassVar[int]
    workflow_id: str
    def __init__(self, workflow_id: _Optional[str] = ...) -> None: ...

class GetResponse(_message.Message):
    __slots__ = ("workflow_id", "run_id", "status", "history_length", "result", "failure", "start_time", "close_time")
    WORKFLOW_ID_FIELD_NUMBER: _ClassVar[int]
    RUN_ID_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    HISTORY_LENGTH_FIELD_NUMBER: _ClassVar[int]
    RESULT_FIELD_NUMBER: _ClassVar[int]
    FAILURE_FIELD_NUMBER: _ClassVar[int]
    START_TIME_FIELD_NUMBER: _ClassVar[int]
    CLOSE_TIME_FIELD_NUMBER: _ClassVar[int]
    workflow_id: str
    run_id: str
    status: SessionStatus
    history_length: int
    result: SessionResult
    failure: str
    start_time: _timestamp_pb2.Timestamp
    close_time: _timestamp_pb2.Timestamp
    def __init__(self, workflow_id: _Optional[str] = ..., run_id: _Optional[str] = ..., status: _Optional[_Union[SessionStatus, str]] = ..., history_length: _Optional[int] = ..., result: _Optional[_Union[SessionResult, _Mapping]] = ..., failure: _Optional[str] = ..., start_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., close_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class SessionResult(_message.Message):
    __slots__ = ("session_id", "policy", "token", "completion", "audit_event_id", "completed_at")
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    POLICY_FIELD_NUMBER: _ClassVar[int]
    TOKEN_FIELD_NUMBER: _ClassVar[int]
    COMPLETION_FIELD_NUMBER: _ClassVar[int]
    AUDIT_EVENT_ID_FIELD_NUMBER: _ClassVar[int]
    COMPLETED_AT_FIELD_NUMBER: _ClassVar[int]
    session_id: str
    policy: PolicyDecision
    token: IdentityToken
    completion: Completion
    audit_event_id: str
    completed_at: _timestamp_pb2.Timestamp
    def __init__(self, session_id: _Optional[str] = ..., policy: _Optional[_Union[PolicyDecision, _Mapping]] = ..., token: _Optional[_Union[IdentityToken, _Mapping]] = ..., completion: _Optional[_Union[Completion, _Mapping]] = ..., audit_event_id: _Optional[str] = ..., completed_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class PolicyDecision(_message.Message):
    __slots__ = ("allowed", "score", "violations", "reasons", "constitution_hash", "evaluated_at")
    ALLOWED_FIELD_NUMBER: _ClassVar[int]
    SCORE_FIELD_NUMBER: _ClassVar[int]
    VIOLATIONS_FIELD_NUMBER: _ClassVar[int]
    REASONS_FIELD_NUMBER: _ClassVar[int]
    CONSTITUTION_HASH_FIELD_NUMBER: _ClassVar[int]
    EVALUATED_AT_FIELD_NUMBER: _ClassVar[int]
    allowed: bool
    score: float
    violations: _containers.RepeatedCompositeFieldContainer[PolicyViolation]
    reasons: _containers.RepeatedScalarFieldContainer[str]
    constitution_hash: str
    evaluated_at: _timestamp_pb2.Timestamp
    def __init__(self, allowed: _Optional[bool] = ..., score: _Optional[float] = ..., violations: _Optional[_Iterable[_Union[PolicyViolation, _Mapping]]] = ..., reasons: _Optional[_Iterable[str]] = ..., constitution_hash: _Optional[str] = ..., evaluated_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class PolicyViolation(_message.Message):
    __slots__ = ("name", "pattern", "weight", "severity", "description", "excerpt")
    NAME_FIELD_NUMBER: _ClassVar[int]
    PATTERN_FIELD_NUMBER: _ClassVar[int]
    WEIGHT_FIELD_NUMBER: _ClassVar[int]
    SEVERITY_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    EXCERPT_FIELD_NUMBER: _ClassVar[int]
    name: str
    pattern: str
    weight: float
    severity: str
    description: str
    excerpt: str
    def __init__(self, name: _Optional[str] = ..., pattern: _Optional[str] = ..., weight: _Optional[float] = ..., severity: _Optional[str] = ..., description: _Optional[str] = ..., excerpt: _Optional[str] = ...) -> None: ...

class IdentityToken(_message.Message):
    __slots__ = ("token", "token_type", "expires_in", "claims")
    TOKEN_FIELD_NUMBER: _ClassVar[int]
    TOKEN_TYPE_FIELD_NUMBER: _ClassVar[int]
    EXPIRES_IN_FIELD_NUMBER: _ClassVar[int]
    CLAIMS_FIELD_NUMBER: _ClassVar[int]
    token: str
    token_type: str
    expires_in: int
    claims: TokenClaims
    def __init__(self, token: _Optional[str] = ..., token_type: _Optional[str] = ..., expires_in: _Optional[int] = ..., claims: _Optional[_Union[TokenClaims, _Mapping]] = ...) -> None: ...

class TokenClaims(_message.Message):
    __slots__ = ("sub", "tenant_id", "capabilities", "iat", "exp", "jti", "kid")
    SUB_FIELD_NUMBER: _ClassVar[int]
    TENANT_ID_FIELD_NUMBER: _ClassVar[int]
    CAPABILITIES_FIELD_NUMBER: _ClassVar[int]
    IAT_FIELD_NUMBER: _ClassVar[int]
    EXP_FIELD_NUMBER: _ClassVar[int]
    JTI_FIELD_NUMBER: _ClassVar[int]
    KID_FIELD_NUMBER: _ClassVar[int]
    sub: str
    tenant_id: str
    capabilities: _containers.RepeatedScalarFieldContainer[str]
    iat: _timestamp_pb2.Timestamp
    exp: _timestamp_pb2.Timestamp
    jti: str
    kid: str
    def __init__(self, sub: _Optional[str] = ..., tenant_id: _Optional[str] = ..., capabilities: _Optional[_Iterable[str]] = ..., iat: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., exp: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., jti: _Optional[str] = ..., kid: _Optional[str] = ...) -> None: ...

class Completion(_message.Message):
    __slots__ = ("text", "model", "provider", "prompt_tokens", "completion_tokens")
    TEXT_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    PROVIDER_FIELD_NUMBER: _ClassVar[int]
    PROMPT_TOKENS_FIELD_NUMBER: _ClassVar[int]
    COMPLETION_TOKENS_FIELD_NUMBER: _ClassVar[int]
    text: str
    model: str
    provider: str
    prompt_tokens: int
    completion_tokens: int
    def __init__(self, text: _Optional[str] = ..., model: _Optional[str] = ..., provider: _Optional[str] = ..., prompt_tokens: _Optional[int] = ..., completion_tokens: _Optional[int] = ...) -> None: ...

class WatchRequest(_message.Message):
    __slots__ = ("workflow_id", "after_sequence")
    WORKFLOW_ID_FIELD_NUMBER: _ClassVar[int]
    AFTER_SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    workflow_id: str
    after_sequence: int
    def __init__(self, workflow_id: _Optional[str] = ..., after_sequence: _Optional[int] = ...) -> None: ...

class WatchResponse(_message.Message):
    __slots__ = ("sequence", "time", "started", "policy_evaluated", "token_issued", "completion_generated", "audit_emitted", "completed", "rejected", "failed", "canceled")
    SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    TIME_FIELD_NUMBER: _ClassVar[int]
    STARTED_FIELD_NUMBER: _ClassVar[int]
    POLICY_EVALUATED_FIELD_NUMBER: _ClassVar[int]
    TOKEN_ISSUED_FIELD_NUMBER: _ClassVar[int]
    COMPLETION_GENERATED_FIELD_NUMBER: _ClassVar[int]
    AUDIT_EMITTED_FIELD_NUMBER: _ClassVar[int]
    COMPLETED_FIELD_NUMBER: _ClassVar[int]
    REJECTED_FIELD_NUMBER: _ClassVar[int]
    FAILED_FIELD_NUMBER: _ClassVar[int]
    CANCELED_FIELD_NUMBER: _ClassVar[int]
    sequence: int
    time: _timestamp_pb2.Timestamp
    started: SessionStarted
    policy_evaluated: PolicyDecision
    token_issued: TokenClaims
    completion_generated: Completion
    audit_emitted: AuditEmitted
    completed: SessionResult
    rejected: SessionResult
    failed: SessionFailed
    canceled: SessionCanceled
    def __init__(self, sequence: _Optional[int] = ..., time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., started: _Optional[_Union[SessionStarted, _Mapping]] = ..., policy_evaluated: _Optional[_Union[PolicyDecision, _Mapping]] = ..., token_issued: _Optional[_Union[TokenClaims, _Mapping]] = ..., completion_generated: _Optional[_Union[Completion, _Mapping]] = ..., audit_emitted: _Optional[_Union[AuditEmitted, _Mapping]] = ..., completed: _Optional[_Union[SessionResult, _Mapping]] = ..., rejected: _Optional[_Union[SessionResult, _Mapping]] = ..., failed: _Optional[_Union[SessionFailed, _Mapping]] = ..., canceled: _Optional[_Union[SessionCanceled, _Mapping]] = ...) -> None: ...

class SessionStarted(_message.Message):
    __slots__ = ("session_id", "tenant", "user", "model")
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    TENANT_FIELD_NUMBER: _ClassVar[int]
    USER_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    session_id: str
    tenant: str
    user: str
    model: str
    def __init__(self, session_id: _Optional[str] = ..., tenant: _Optional[str] = ..., user: _Optional[str] = ..., model: _Optional[str] = ...) -> None: ...

class AuditEmitted(_message.Message):
    __slots__ = ("audit_id", "status")
    AUDIT_ID_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    audit_id: str
    status: AuditStatus
    def __init__(self, audit_id: _Optional[str] = ..., status: _Optional[_Union[AuditStatus, str]] = ...) -> None: ...

class SessionFailed(_message.Message):
    __slots__ = ("reason",)
    REASON_FIELD_NUMBER: _ClassVar[int]
    reason: str
    def __init__(self, reason: _Optional[str] = ...) -> None: ...

class SessionCanceled(_message.Message):
    __slots__ = ("session_id", "audit_event_id")
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    AUDIT_EVENT_ID_FIELD_NUMBER: _ClassVar[int]
    session_id: str
    audit_event_id: str
    def __init__(self, session_id: _Optional[str] = ..., audit_event_id: _Optional[str] = ...) -> None: ...

class AuditEvent(_message.Message):
    __slots__ = ("audit_id", "session_id", "workflow_id", "run_id", "tenant", "user", "status", "policy", "token_claims", "model", "reason", "emitted_at")
    AUDIT_ID_FIELD_NUMBER: _ClassVar[int]
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    WORKFLOW_ID_FIELD_NUMBER: _ClassVar[int]
    RUN_ID_FIELD_NUMBER: _ClassVar[int]
    TENANT_FIELD_NUMBER: _ClassVar[int]
    USER_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    POLICY_FIELD_NUMBER: _ClassVar[int]
    TOKEN_CLAIMS_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    EMITTED_AT_FIELD_NUMBER: _ClassVar[int]
    audit_id: str
    session_id: str
    workflow_id: str
    run_id: str
    tenant: str
    user: str
    status: AuditStatus
    policy: PolicyDecision
    token_claims: TokenClaims
    model: str
    reason: str
    emitted_at: _timestamp_pb2.Timestamp
    def __init__(self, audit_id: _Optional[str] = ..., session_id: _Optional[str] = ..., workflow_id: _Optional[str] = ..., run_id: _Optional[str] = ..., tenant: _Optional[str] = ..., user: _Optional[str] = ..., status: _Optional[_Union[AuditStatus, str]] = ..., policy: _Optional[_Union[PolicyDecision, _Mapping]] = ..., token_claims: _Optional[_Union[TokenClaims, _Mapping]] = ..., model: _Optional[str] = ..., reason: _Optional[str] = ..., emitted_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class CancelRequest(_message.Message):
    __slots__ = ("workflow_id",)
    WORKFLOW_ID_FIELD_NUMBER: _ClassVar[int]
    workflow_id: str
    def __init__(self, workflow_id: _Optional[str] = ...) -> None: ...

class CancelResponse(_message.Message):
    __slots__ = ("workflow_id", "run_id", "status")
    WORKFLOW_ID_FIELD_NUMBER: _ClassVar[int]
    RUN_ID_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    workflow_id: str
    run_id: str
    status: SessionStatus
    def __init__(self, workflow_id: _Optional[str] = ..., run_id: _Optional[str] = ..., status: _Optional[_Union[SessionStatus, str]] = ...) -> None: ...

class ListRequest(_message.Message):
    __slots__ = ("tenant", "page_size", "page_token", "statuses", "start_time_from", "start_time_to")
    TENANT_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    STATUSES_FIELD_NUMBER: _ClassVar[int]
    START_TIME_FROM_FIELD_NUMBER: _ClassVar[int]
    START_TIME_TO_FIELD_NUMBER: _ClassVar[int]
    tenant: str
    page_size: int
    page_token: str
    statuses: _containers.RepeatedScalarFieldContainer[SessionStatus]
    start_time_from: _timestamp_pb2.Timestamp
    start_time_to: _timestamp_pb2.Timestamp
    def __init__(self, tenant: _Optional[str] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ..., statuses: _Optional[_Iterable[_Union[SessionStatus, str]]] = ..., start_time_from: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., start_time_to: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class ListResponse(_message.Message):
    __slots__ = ("sessions", "next_page_token")
    SESSIONS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    sessions: _containers.RepeatedCompositeFieldContainer[SessionSummary]
    next_page_token: str
    def __init__(self, sessions: _Optional[_Iterable[_Union[SessionSummary, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class SessionSummary(_message.Message):
    __slots__ = ("workflow_id", "session_id", "user", "model", "status", "start_time", "close_time")
    WORKFLOW_ID_FIELD_NUMBER: _ClassVar[int]
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    USER_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    START_TIME_FIELD_NUMBER: _ClassVar[int]
    CLOSE_TIME_FIELD_NUMBER: _ClassVar[int]
    workflow_id: str
    session_id: str
    user: str
    model: str
    status: SessionStatus
    start_time: _timestamp_pb2.Timestamp
    close_time: _timestamp_pb2.Timestamp
    def __init__(self, workflow_id: _Optional[str] = ..., session_id: _Optional[str] = ..., user: _Optional[str] = ..., model: _Optional[str] = ..., status: _Optional[_Union[SessionStatus, str]] = ..., start_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., close_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...
