#!/usr/bin/env bash
# `make sam-local`: `sam build`, then `sam local start-api` on 127.0.0.1:3000 with every function
# pointed at moto, in containers, as SAM runs them (the API's routes from template.yaml).
#
# Needs a working Docker engine (`sam local` runs each function in a Lambda container). The
# functions are arm64 (template.yaml), so on an x86_64 host Docker also needs arm64 emulation
# (binfmt/qemu; Docker Desktop has it).
#
# A container does not reach the host's 127.0.0.1, where moto listens: with Docker Desktop it
# reaches the host as host.docker.internal; on Linux, at the docker bridge's gateway address,
# where a relay (scripts/lambda_local.py relay) passes connections on to moto. SAM_HOST_ADDRESS
# overrides the address.
set -euo pipefail
cd "$(dirname "$0")/.."

# 1. Docker, first: without it nothing below can run.
if ! command -v docker >/dev/null 2>&1; then
    echo "make sam-local needs Docker: \`sam local\` runs each function in a Lambda container," >&2
    echo "and there is no docker command here. Without Docker, run a function with" >&2
    echo "\`make watch FUNCTION=...\` and \`make invoke\` (cargo-lambda), or all of cooper with \`make run\`." >&2
    exit 1
fi
if ! problem=$(docker info 2>&1 >/dev/null); then
    echo "make sam-local needs a working Docker engine: \`sam local\` runs each function in a" >&2
    echo "Lambda container, and \`docker info\` fails here:" >&2
    printf '%s\n' "$problem" | grep -v '^$' | sed 's/^/    /' | head -5 >&2
    echo "Start the Docker engine (or use \`make watch FUNCTION=...\` and \`make invoke\`, or \`make run\`)." >&2
    exit 1
fi

export PATH="$PWD/.venv-tools/bin:$PATH"
export SAM_CLI_TELEMETRY=0
# shellcheck source=scripts/local-aws.sh
. scripts/local-aws.sh

# 2. The address a container reaches this host on.
relay_pid=
if [ -n "${SAM_HOST_ADDRESS:-}" ]; then
    host="$SAM_HOST_ADDRESS"
elif docker info --format '{{.OperatingSystem}}' 2>/dev/null | grep -q 'Docker Desktop'; then
    host=host.docker.internal
else
    host=$(docker network inspect bridge --format '{{(index .IPAM.Config 0).Gateway}}')
fi

# 3. moto with `cooper setup` done in it (reused if `make run` or `make watch` has one).
local_aws
stop_all() {
    # shellcheck disable=SC2086 # the relays' ids
    if [ -n "$relay_pid" ]; then kill $relay_pid 2>/dev/null || true; fi
    stop_moto
}
trap stop_all EXIT
trap 'exit 130' INT TERM
if [ "$host" != host.docker.internal ] && [ -z "${SAM_HOST_ADDRESS:-}" ]; then
    # moto, and `make run`'s sign-in stand-in (console links), reached from the containers.
    .venv/bin/python scripts/lambda_local.py relay "$host:$moto_port" "127.0.0.1:$moto_port" &
    relay_pid=$!
    .venv/bin/python scripts/lambda_local.py relay "$host:${listen##*:}" "$listen" &
    relay_pid="$relay_pid $!"
fi

# 4. The functions' variables, and the built template that declares the local ones.
port="${SAM_LOCAL_PORT:-3000}"
export SAM_LOCAL_URL="http://127.0.0.1:$port"
.venv/bin/python scripts/lambda_local.py sam-env "$run_dir" "$host" "$run_dir/sam-env.json"
echo "env vars: $run_dir/sam-env.json (moto at http://$host:$moto_port)"
# SAM_BUILD_MODE=debug: a debug build of the arm64 functions, not the 15-minute release one.
SAM_BUILD_MODE="${SAM_BUILD_MODE:-debug}" sam build --beta-features
.venv-tools/bin/python scripts/lambda_local.py sam-template .aws-sam/build/template.yaml
echo "sam local start-api on $SAM_LOCAL_URL (the API and the web console; Ctrl-C stops it)"
sam local start-api --host 127.0.0.1 --port "$port" \
    --env-vars "$run_dir/sam-env.json" --add-host "host.docker.internal:host-gateway"
