from google.protobuf import descriptor_pb2 as _descriptor_pb2
from google.protobuf import descriptor as _descriptor
from typing import ClassVar as _ClassVar

DESCRIPTOR: _descriptor.FileDescriptor
SSE_EVENT_ID_FIELD_NUMBER: _ClassVar[int]
sse_event_id: _descriptor.FieldDescriptor
SSE_LAST_EVENT_ID_FIELD_NUMBER: _ClassVar[int]
sse_last_event_id: _descriptor.FieldDescriptor
