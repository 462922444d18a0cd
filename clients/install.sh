#!/usr/bin/env bash
# Installs the tools the client interop tests and `npm run generate:clients`
# need, each into ~/.cache/somagent-orchestrator/<tool>-<version>/ so a
# version bump installs beside the old one and a warm cache costs nothing.
#   clients/install.sh            Go protoc plugins (stubs and OpenAPI), grpcurl, Python venv
#   clients/install.sh chromium   also Debian's chromium (needs root, apt)
# Prints one "<tool> <seconds>s" line per tool it had to install.
set -euo pipefail

CACHE="${SOMAGENT_CACHE_DIR:-$HOME/.cache/somagent-orchestrator}"
PROTOC_GEN_GO_VERSION=v1.36.12
PROTOC_GEN_GO_GRPC_VERSION=v1.6.2
PROTOC_GEN_OPENAPI_VERSION=v0.7.1
GRPCURL_VERSION=v1.9.4
GRPCIO_TOOLS_VERSION=1.85.1
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
mkdir -p "$CACHE"

# Installs in place (a venv cannot be moved) and marks the directory done
# last, so an interrupted install is redone from scratch.
install_once() {
  local dir="$1"; shift
  [ -e "$dir/.done" ] && return 0
  local start=$SECONDS
  rm -rf "$dir"; mkdir -p "$dir"
  "$@" "$dir"
  touch "$dir/.done"
  echo "$(basename "$dir") $((SECONDS - start))s"
}

go_plugins() {
  GOBIN="$1/bin" go install "google.golang.org/protobuf/cmd/protoc-gen-go@$PROTOC_GEN_GO_VERSION"
  GOBIN="$1/bin" go install "google.golang.org/grpc/cmd/protoc-gen-go-grpc@$PROTOC_GEN_GO_GRPC_VERSION"
}

# gnostic's OpenAPI 3 generator (buf.gen.clients.yaml writes openapi/openapi.yaml with it).
openapi_plugin() {
  GOBIN="$1/bin" go install "github.com/google/gnostic/cmd/protoc-gen-openapi@$PROTOC_GEN_OPENAPI_VERSION"
}

grpcurl() {
  GOBIN="$1/bin" go install "github.com/fullstorydev/grpcurl/cmd/grpcurl@$GRPCURL_VERSION"
}

# Wheels only: a source build of grpcio takes longer than the whole CI budget.
python_venv() {
  python3 -m venv "$1"
  "$1/bin/pip" install --quiet --disable-pip-version-check --only-binary=:all: \
    -r "$HERE/python/requirements.txt"
}

install_once "$CACHE/go-protoc-plugins-$PROTOC_GEN_GO_VERSION-$PROTOC_GEN_GO_GRPC_VERSION" go_plugins
install_once "$CACHE/protoc-gen-openapi-$PROTOC_GEN_OPENAPI_VERSION" openapi_plugin
install_once "$CACHE/grpcurl-$GRPCURL_VERSION" grpcurl
install_once "$CACHE/python-grpcio-tools-$GRPCIO_TOOLS_VERSION" python_venv

if [ "${1:-}" = chromium ] && [ ! -x /usr/bin/chromium ]; then
  start=$SECONDS
  sudo_cmd=""; [ "$(id -u)" -ne 0 ] && sudo_cmd=sudo
  $sudo_cmd apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq --no-install-recommends chromium >/dev/null
  echo "chromium $((SECONDS - start))s"
fi
