#!/bin/sh
# Chooses the process this container runs: api (default), worker,
# policy-engine or identity-service; any other command runs as given.
# deploy/healthcheck.mjs recognises the role by these entry-point paths.
set -e
case "${1:-api}" in
  api) exec node dist/src/api/main.js ;;
  worker) exec node dist/src/worker/main.js ;;
  policy-engine) exec node dist/src/companions/policy-engine/main.js ;;
  identity-service) exec node dist/src/companions/identity-service/main.js ;;
  *) exec "$@" ;;
esac
