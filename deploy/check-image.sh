#!/usr/bin/env bash
# Checks the Dockerfile without a Docker engine: replays its COPY, ENV and RUN
# steps in a clean temporary directory (one root per stage), then runs the
# image's ENTRYPOINT for each role as the container would and checks that
#   - api, worker and identity-service refuse to start without their required
#     variables, with the error naming the variable;
#   - policy-engine and identity-service start, and the image's HEALTHCHECK
#     command (deploy/healthcheck.mjs) passes for them;
#   - with TEMPORAL_TARGET_HOST set (a real Temporal, e.g. a running stack's),
#     api and worker start against it and their HEALTHCHECK passes too.
# Node 24 of the base image is the one npm installed for this repository.
# Usage: deploy/check-image.sh   (npm run check:image)
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d "${TMPDIR:-/tmp}/somagent-image-check.XXXXXX")
role_pid=""
cleanup() {
  if [ -n "$role_pid" ]; then kill "$role_pid" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT
started=$SECONDS
say() { printf '== %s (%ss)\n' "$1" "$((SECONDS - started))"; }
fail() { printf 'FAIL: %s\n' "$1" >&2; exit 1; }

node24=$(readlink -f "$repo/node_modules/.bin/node")
mkdir -p "$work/base-image/bin"
ln -s "$node24" "$work/base-image/bin/node"
"$node24" --version | grep -q '^v24\.' || fail "$node24 is not Node 24"

# Dockerfile instructions, continuation lines joined, comments dropped.
instructions() {
  sed -e '/^[[:space:]]*#/d' "$repo/Dockerfile" | awk '{ if (sub(/\\$/, "")) { line = line $0 } else { print line $0; line = "" } }' | sed -e '/^[[:space:]]*$/d'
}

stage=-1; root=""; workdir="/"
stage_env=()
in_root() { case "$1" in /*) printf '%s%s' "$root" "$1" ;; *) printf '%s%s/%s' "$root" "$workdir" "$1" ;; esac; }
while read -r keyword rest; do
  case "$keyword" in
    FROM)
      stage=$((stage + 1)); root="$work/stage-$stage"; workdir="/"; stage_env=()
      mkdir -p "$root"
      say "stage $stage: FROM $rest" ;;
    WORKDIR) workdir=$rest; mkdir -p "$(in_root .)" ;;
    ENV)
      # NAME=value pairs; image paths mapped into this stage's root.
      for pair in $rest; do stage_env+=("${pair//=\//=$root/}"); done ;;
    COPY)
      read -r -a args <<<"$rest"
      from=""
      if [[ ${args[0]} == --from=* ]]; then from=${args[0]#--from=}; args=("${args[@]:1}"); fi
      dest=$(in_root "${args[-1]}")
      unset 'args[-1]'
      for source in "${args[@]}"; do
        if [ -n "$from" ]; then source="$work/stage-0$source"; else source="$repo/$source"; fi
        [ -e "$source" ] || fail "COPY source $source does not exist"
        case "$dest" in */) mkdir -p "$dest" ;; *) mkdir -p "$(dirname "$dest")" ;; esac
        cp -a "$source" "$dest"
      done ;;
    RUN)
      say "RUN $rest"
      (cd "$(in_root .)" && env PATH="$work/base-image/bin:$PATH" "${stage_env[@]}" sh -c "$rest") || fail "RUN $rest" ;;
    ENTRYPOINT|CMD|USER|EXPOSE|HEALTHCHECK|ARG|LABEL) ;;
    *) fail "check-image.sh does not know the instruction $keyword" ;;
  esac
done < <(instructions)
[ "$stage" -eq 1 ] || fail "expected a build stage and a runtime stage, found $((stage + 1)) stages"
app=$(in_root .)
image_path="$root/usr/local/bin:$work/base-image/bin:/usr/bin:/bin"
say "runtime stage: $(du -sh "$app" | cut -f1) in /app"
[ ! -e "$app/node_modules/vitest" ] || fail "dev dependencies are in the runtime stage"
[ ! -e "$app/local" ] || fail "the local-stack launcher is in the runtime stage"
[ -e "$app/dist/console/index.html" ] || fail "the session console (dist/console) is not in the runtime stage"

free_port() { "$node24" -e 'const s=require("net").createServer().listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})'; }
# Runs the image's entry point for a role, in /app, with only the image's environment and the given variables.
# Always called in a subshell ($(...) or &), which the exec chain turns into the role's node process,
# so the pid of `run_role ... &` is the process to stop.
run_role() {
  local role=$1; shift
  cd "$app" && exec env -i HOME="$work/home" PATH="$image_path" "${stage_env[@]}" "$@" docker-entrypoint.sh "$role"
}
healthcheck() { (cd "$app" && env -i HOME="$work/home" PATH="$image_path" "${stage_env[@]}" "$@" node deploy/healthcheck.mjs); }
mkdir -p "$work/home"

expect_config_error() {
  local role=$1 variable=$2; shift 2
  local output
  if output=$(run_role "$role" "$@" 2>&1); then fail "$role started without $variable"; fi
  grep -q "$variable is required" <<<"$output" || fail "$role did not name $variable: $output"
  say "$role without $variable: refused, naming it"
}
expect_healthy() {
  local role=$1; shift
  run_role "$role" "$@" >"$work/$role.log" 2>&1 &
  role_pid=$!
  for _ in $(seq 1 120); do
    if healthcheck "$@" 2>/dev/null; then
      say "$role started; HEALTHCHECK passed"
      kill "$role_pid"; wait "$role_pid" 2>/dev/null || true; role_pid=""
      return
    fi
    kill -0 "$role_pid" 2>/dev/null || fail "$role exited: $(cat "$work/$role.log")"
    sleep 1
  done
  fail "$role: HEALTHCHECK did not pass within 120 s: $(healthcheck "$@" 2>&1; cat "$work/$role.log")"
}

secret=$(head -c 32 /dev/urandom | base64)
codec_keys="check:$(head -c 32 /dev/urandom | base64)"
expect_config_error api PAYLOAD_CODEC_KEYS
expect_config_error worker PAYLOAD_CODEC_KEYS
expect_config_error identity-service IDENTITY_SERVICE_CLIENT_SECRET
expect_healthy policy-engine POLICY_ENGINE_HOST=0.0.0.0 POLICY_ENGINE_PORT="$(free_port)"
expect_healthy identity-service IDENTITY_SERVICE_HOST=0.0.0.0 IDENTITY_SERVICE_PORT="$(free_port)" \
  IDENTITY_SERVICE_CLIENT_SECRET="$secret" IDENTITY_SERVICE_KEY_DIR="$work/identity-keys"
if [ -n "${TEMPORAL_TARGET_HOST:-}" ]; then
  queue="image-check-$$"
  expect_healthy api TEMPORAL_TARGET_HOST="$TEMPORAL_TARGET_HOST" TEMPORAL_TASK_QUEUE="$queue" \
    PAYLOAD_CODEC_KEYS="$codec_keys" PORT="$(free_port)"
  expect_healthy worker TEMPORAL_TARGET_HOST="$TEMPORAL_TARGET_HOST" TEMPORAL_TASK_QUEUE="$queue" \
    PAYLOAD_CODEC_KEYS="$codec_keys" IDENTITY_SERVICE_CLIENT_SECRET="$secret" \
    WORKER_METRICS_PORT="$(free_port)" WORKER_SDK_METRICS_PORT="$(free_port)"
else
  say "TEMPORAL_TARGET_HOST unset: api and worker checked for their configuration errors only"
fi
say "image check passed"
