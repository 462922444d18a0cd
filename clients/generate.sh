#!/usr/bin/env bash
# Regenerates the committed client stubs from proto/ (`npm run generate:clients`):
# Go with buf and the pinned protoc-gen-go / protoc-gen-go-grpc (buf.gen.clients.yaml),
# Python with grpcio-tools' bundled protoc, and the OpenAPI 3 document with
# gnostic's protoc-gen-openapi (openapi/openapi.yaml, and the openapi.json the API serves). Needs no network once
# clients/install.sh has run (it is called here and is a no-op when warm).
# `clients/generate.sh --check` (npm run check:clients) fails when the
# committed stubs differ from what proto/ generates.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CACHE="${SOMAGENT_CACHE_DIR:-$HOME/.cache/somagent-orchestrator}"
cd "$ROOT"
clients/install.sh >&2
eval "$(grep -E '^(PROTOC_GEN_GO_VERSION|PROTOC_GEN_GO_GRPC_VERSION|PROTOC_GEN_OPENAPI_VERSION|GRPCIO_TOOLS_VERSION)=' clients/install.sh)"

PATH="$CACHE/go-protoc-plugins-$PROTOC_GEN_GO_VERSION-$PROTOC_GEN_GO_GRPC_VERSION/bin:$CACHE/protoc-gen-openapi-$PROTOC_GEN_OPENAPI_VERSION/bin:$ROOT/node_modules/.bin:$PATH" \
  buf generate --template buf.gen.clients.yaml
node_modules/.bin/tsx clients/openapi-json.ts openapi/openapi.yaml openapi/openapi.json

PY_OUT=clients/python/somagent_client/gen
rm -rf "$PY_OUT"; mkdir -p "$PY_OUT"
"$CACHE/python-grpcio-tools-$GRPCIO_TOOLS_VERSION/bin/python" -m grpc_tools.protoc \
  -I proto -I third_party/proto \
  --python_out="$PY_OUT" --pyi_out="$PY_OUT" --grpc_python_out="$PY_OUT" \
  somagent/orchestrator/v1/session.proto somagent/orchestrator/v1/sse_options.proto \
  buf/validate/validate.proto google/api/annotations.proto google/api/http.proto

# --check (CI): the committed stubs must be exactly what proto/ generates.
if [ "${1:-}" = --check ]; then
  changed="$(git status --porcelain -- clients/go/gen clients/python/somagent_client/gen openapi)"
  if [ -n "$changed" ]; then
    echo "client stubs or the OpenAPI document are stale; run npm run generate:clients and commit:" >&2
    echo "$changed" >&2
    git --no-pager diff --stat -- clients/go/gen clients/python/somagent_client/gen openapi >&2
    exit 1
  fi
fi
