"""Generated gRPC stubs of the SomaAgent session orchestrator.

The stubs under ``gen/`` are produced by ``clients/generate.sh`` (grpcio-tools)
and import each other by their proto package names (``somagent.orchestrator.v1``,
``buf.validate``, ``google.api``), so ``gen/`` is put on ``sys.path`` once here.
"""

import os
import sys

_GEN = os.path.join(os.path.dirname(os.path.abspath(__file__)), "gen")
if _GEN not in sys.path:
    sys.path.append(_GEN)

from somagent.orchestrator.v1 import session_pb2, session_pb2_grpc  # noqa: E402

__all__ = ["session_pb2", "session_pb2_grpc"]
