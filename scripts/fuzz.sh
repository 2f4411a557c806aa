#!/usr/bin/env bash
# Property-based fuzzing of the whole API: schemathesis reads docs/openapi.json as `cooper serve`
# serves it, and sends every operation generated valid and invalid requests, authenticated as the
# first admin, against moto on loopback. Fails on any 5xx and on any response the document does
# not describe (status, content type, headers, body schema), and on invalid input accepted.
#
#   scripts/fuzz.sh quick   the short, seeded run in `make test`
#   scripts/fuzz.sh long    `make fuzz`: every phase, more examples, a fresh seed
#
# Reports (JUnit, and a pytest file reproducing any failure) land in .run/fuzz/.
set -euo pipefail
cd "$(dirname "$0")/.."

mode="${1:-quick}"
out=.run/fuzz
cooper=target/debug/cooper
python=.venv/bin/python
mkdir -p "$out"
rm -f "$out"/*.log "$out"/moto.port

cargo build --quiet -p cooper-cli

pids=()
cleanup() {
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
}
trap cleanup EXIT INT TERM

"$python" scripts/moto_server.py > "$out/moto.port" 2> "$out/moto.log" &
pids+=($!)
for _ in $(seq 1 100); do [ -s "$out/moto.port" ] && break; sleep 0.1; done
[ -s "$out/moto.port" ] || { echo "moto did not start; see $out/moto.log" >&2; exit 1; }

export AWS_ENDPOINT_URL="http://127.0.0.1:$(head -1 "$out/moto.port")"
export AWS_REGION=us-east-1 AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing
unset AWS_PROFILE AWS_SESSION_TOKEN
# No console sign-in endpoint answers here: console links fail as a 502, which the document allows.
export COOPER_SIGNIN_ENDPOINT="http://127.0.0.1:9/federation"

port=$("$python" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
base="http://127.0.0.1:$port"
# The CLI logs to stdout (at info by default, admin changes included): keep them out of the JSON.
token=$(COOPER_LOG=warn "$cooper" setup --json --endpoint "$base" | "$python" -c 'import json, sys; print(json.load(sys.stdin)["admin_token"])')

# The hooks keep the fuzzer from locking itself out (disabling its own admin, revoking its token).
export FUZZ_ADMIN=admin FUZZ_ADMIN_TOKEN_ID="$(echo "$token" | cut -d_ -f2)"
export SCHEMATHESIS_HOOKS=fuzz_hooks PYTHONPATH="$PWD/scripts"
COOPER_LOG=info "$cooper" serve --listen "127.0.0.1:$port" --no-notices 2> "$out/serve.log" &
pids+=($!)

case "$mode" in
    quick) limits=(--max-examples 8 --seed 20261122 --phases examples,coverage,fuzzing --generation-deterministic) ;;
    long) limits=(--max-examples 200 --phases examples,coverage,fuzzing,stateful) ;;
    *) echo "usage: $0 quick|long" >&2; exit 2 ;;
esac

extra=()
# A deterministic run keeps no example database; a long run must not replay an old one either.
[ "$mode" = long ] && extra=(--generation-database none)
checks=not_a_server_error,status_code_conformance,content_type_conformance,response_headers_conformance,response_schema_conformance,negative_data_rejection

.venv/bin/st run "$base/v1/openapi.json" \
    --wait-for-schema 30 \
    --header "Authorization: Bearer $token" \
    --checks "$checks" \
    --workers 2 \
    --request-timeout 30 \
    "${extra[@]}" \
    --report junit,pytest --report-dir "$out" \
    --no-color \
    "${limits[@]}"
