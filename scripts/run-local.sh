#!/usr/bin/env bash
# `make run`: moto on loopback, `cooper setup`, then `cooper serve`. Ctrl-C stops both.
set -euo pipefail
cd "$(dirname "$0")/.."

listen="${COOPER_LISTEN:-127.0.0.1:8080}"
moto_port="${MOTO_PORT:-5000}"
cooper=target/debug/cooper

cargo build --quiet -p cooper-cli

mkdir -p .run
.venv/bin/python scripts/moto_server.py --port "$moto_port" > .run/moto.port 2> .run/moto.log &
moto_pid=$!
trap 'kill "$moto_pid" 2>/dev/null || true; wait "$moto_pid" 2>/dev/null || true' EXIT INT TERM

for _ in $(seq 1 100); do
    [ -s .run/moto.port ] && break
    if ! kill -0 "$moto_pid" 2>/dev/null; then
        echo "moto did not start (is port $moto_port free?); see .run/moto.log" >&2
        exit 1
    fi
    sleep 0.1
done

# The SDK's standard variables point every AWS client at moto; nothing else changes.
export AWS_ENDPOINT_URL="http://127.0.0.1:$moto_port"
export AWS_REGION="${AWS_REGION:-us-east-1}"
export AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing
unset AWS_PROFILE AWS_SESSION_TOKEN

echo "moto on $AWS_ENDPOINT_URL"
"$cooper" setup --endpoint "http://$listen"
echo
"$cooper" serve --listen "$listen"
