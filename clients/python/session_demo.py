"""Starts a SomaAgent session over gRPC with the generated stubs, reads it back
with Get, follows it with Watch to its terminal event and prints the final
status; then asks for a session that does not exist and prints the NOT_FOUND
status the service answers with.

Output, one line each: ``started <workflow_id> <run_id>``, ``get <status>``,
``event <sequence> <kind> <event as JSON>`` in the order received,
``final <status>``, ``missing <code> <details>``. Exit status: 0 when the
session completed or was rejected by policy, 1 on a call error, 2 when it
ended otherwise.

    python clients/python/session_demo.py --addr 127.0.0.1:8090 --session-id sess-py
"""

import argparse
import os
import sys

import grpc
from google.protobuf import json_format, struct_pb2

from somagent_client import session_pb2, session_pb2_grpc

FINISHED_OK = (session_pb2.SESSION_STATUS_COMPLETED, session_pb2.SESSION_STATUS_REJECTED)


def parse_args() -> argparse.Namespace:
    env = os.environ.get
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--addr", default=env("SOMAGENT_ADDR", "127.0.0.1:8090"))
    parser.add_argument("--tenant", default=env("SOMAGENT_TENANT", "tenant-demo"))
    parser.add_argument("--user", default=env("SOMAGENT_USER", "user-demo"))
    parser.add_argument("--prompt", default=env("SOMAGENT_PROMPT", "kick off a demo"))
    parser.add_argument("--session-id", default=env("SOMAGENT_SESSION_ID", ""))
    parser.add_argument("--timeout", type=float, default=120.0, help="seconds for each call")
    return parser.parse_args()


def main() -> int:
    args = parse_args()
    # Plain HTTP/2 (h2c): the local service has no TLS. Use
    # grpc.secure_channel with grpc.ssl_channel_credentials() behind TLS.
    with grpc.insecure_channel(args.addr) as channel:
        sessions = session_pb2_grpc.SessionServiceStub(channel)
        metadata = struct_pb2.Struct()
        if args.session_id:
            metadata.update({"session_id": args.session_id})
        try:
            started = sessions.Start(
                session_pb2.StartRequest(
                    tenant=args.tenant, user=args.user, prompt=args.prompt, metadata=metadata
                ),
                timeout=args.timeout,
            )
            print("started", started.workflow_id, started.run_id, flush=True)

            got = sessions.Get(session_pb2.GetRequest(workflow_id=started.workflow_id), timeout=args.timeout)
            print("get", session_pb2.SessionStatus.Name(got.status), flush=True)

            for event in sessions.Watch(
                session_pb2.WatchRequest(workflow_id=started.workflow_id), timeout=args.timeout
            ):
                kind = event.WhichOneof("event")
                body = json_format.MessageToJson(getattr(event, kind), indent=None)
                print("event", event.sequence, kind, body, flush=True)

            final = sessions.Get(session_pb2.GetRequest(workflow_id=started.workflow_id), timeout=args.timeout)
            print("final", session_pb2.SessionStatus.Name(final.status), flush=True)
            if final.result.completion.text:
                print("completion", final.result.completion.text, flush=True)
        except grpc.RpcError as error:
            print("error", error.code().name, error.details(), file=sys.stderr)
            return 1

        try:
            sessions.Get(session_pb2.GetRequest(workflow_id="session-does-not-exist"), timeout=args.timeout)
            print("missing OK unexpectedly found", file=sys.stderr)
            return 1
        except grpc.RpcError as error:
            print("missing", error.code().name, error.details(), flush=True)
            if error.code() != grpc.StatusCode.NOT_FOUND:
                return 1

    return 0 if final.status in FINISHED_OK else 2


if __name__ == "__main__":
    sys.exit(main())
