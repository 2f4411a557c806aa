#!/usr/bin/env bash
# `make watch` and `make invoke`: one Lambda function under cargo-lambda's emulator, against moto
# on loopback with the configuration `make run` uses.
#
#   scripts/lambda-local.sh watch FUNCTION          cargo lambda watch: rebuilds and restarts on edits
#   scripts/lambda-local.sh invoke [FUNCTION] EVENT cargo lambda invoke with a fixture of events/
#                                                   (FUNCTION: by default the fixture's folder)
#
# LAMBDA_PORT (9000) is where the emulator listens, on 127.0.0.1; MOTO_PORT and COOPER_LISTEN as
# for `make run`.
set -euo pipefail
cd "$(dirname "$0")/.."

lambda_port="${LAMBDA_PORT:-9000}"
# cargo-lambda comes from the tools' venv (`make tools`); it runs `python3 -m ziglang` for cross
# builds, so that venv's bin goes first.
export PATH="$PWD/.venv-tools/bin:$PATH"
# shellcheck source=scripts/local-aws.sh
. scripts/local-aws.sh

usage() {
    echo "usage: $0 watch FUNCTION | invoke [FUNCTION] EVENT" >&2
    exit 2
}

function_named() {
    local function="$1"
    if [ -z "$function" ] || [ ! -f "crates/functions/$function/Cargo.toml" ]; then
        echo "FUNCTION must be one of: $(ls crates/functions | tr '\n' ' ')" >&2
        exit 2
    fi
}

command -v cargo-lambda >/dev/null || {
    echo "cargo-lambda is missing: run \`make tools\`" >&2
    exit 1
}

case "${1:-}" in
watch)
    function_named "${2:-}"
    local_aws
    # What this emulator serves, for `make invoke` (it serves one function: --bin).
    echo "$2 $lambda_port" > "$run_dir/watching"
    trap 'rm -f "$run_dir/watching"; stop_moto' EXIT
    trap 'exit 130' INT TERM
    echo "cargo lambda watch: $2 on 127.0.0.1:$lambda_port; send it a fixture with"
    echo "  make invoke FUNCTION=$2 EVENT=events/$2/<fixture>.json"
    # `cargo run --bin $2` under the emulator: built on the first start and again on every edit.
    # (Built alone, the function resolves its dependencies' features apart from the workspace's,
    # so its first build compiles them once more: several minutes on two cores.)
    cargo-lambda lambda watch --bin "$2" -A 127.0.0.1 -P "$lambda_port" \
        --env-file "$run_dir/function.env"
    ;;
invoke)
    event="${3:-}"
    function="${2:-}"
    [ -n "$event" ] || { echo "EVENT is required: make invoke EVENT=events/<function>/<fixture>.json" >&2; exit 2; }
    if [ -z "$function" ] && [ -n "$event" ]; then
        function=$(basename "$(dirname "$event")")
    fi
    set -- invoke "$function" "$event"
    function_named "$2"
    [ -f "$event" ] || { echo "EVENT must be a fixture file, e.g. events/$2/..." >&2; exit 2; }
    [ -f "$run_dir/secrets.json" ] || {
        echo "nothing is set up yet: start \`make watch FUNCTION=$2\` (in another terminal) first" >&2
        exit 1
    }
    if ! (exec 3<>"/dev/tcp/127.0.0.1/$lambda_port") 2>/dev/null; then
        echo "no emulator on 127.0.0.1:$lambda_port: start \`make watch FUNCTION=$2\` first" >&2
        exit 1
    fi
    read -r watched watched_port < "$run_dir/watching" 2>/dev/null || true
    if [ "${watched_port:-}" = "$lambda_port" ] && [ "$watched" != "$2" ]; then
        echo "\`make watch\` on 127.0.0.1:$lambda_port serves $watched, not $2: start" >&2
        echo "\`make watch FUNCTION=$2\` (another LAMBDA_PORT runs both)" >&2
        exit 1
    fi
    mkdir -p "$run_dir/events"
    ready="$run_dir/events/$(basename "$event")"
    .venv/bin/python scripts/lambda_local.py event "$event" "$run_dir" "$ready"
    cargo-lambda lambda invoke "$2" -A 127.0.0.1 -P "$lambda_port" --data-file "$ready" \
        --output-format json > "$run_dir/answer.json"
    .venv/bin/python scripts/lambda_local.py answer "$run_dir/answer.json"
    ;;
*)
    usage
    ;;
esac
