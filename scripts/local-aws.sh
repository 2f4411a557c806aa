# Sourced by scripts/lambda-local.sh and scripts/sam-local.sh: moto on 127.0.0.1:$MOTO_PORT with
# `cooper setup` done in it, as `make run` has it, and in .run/lambda/ what the functions and the
# fixtures need (function.env: the functions' variables; secrets.json: the tokens).
#
# A moto already answering on $MOTO_PORT (5000, `make run`'s) is reused, so that `make run` and
# `make watch` share one directory; else one is started here, and stopped when the caller exits.
# `cooper setup` keeps what exists, so running it again changes nothing.

moto_port="${MOTO_PORT:-5000}"
listen="${COOPER_LISTEN:-127.0.0.1:8080}"
run_dir=.run/lambda
moto_pid=

moto_answers() {
    curl -sf -m 2 "http://127.0.0.1:$moto_port/moto-api/data.json" >/dev/null 2>&1
}

stop_moto() {
    if [ -n "$moto_pid" ]; then
        kill "$moto_pid" 2>/dev/null || true
        wait "$moto_pid" 2>/dev/null || true
    fi
}

local_aws() {
    mkdir -p "$run_dir"
    if moto_answers; then
        echo "moto: reusing the one on 127.0.0.1:$moto_port (make run's, or another make watch's)"
    else
        .venv/bin/python scripts/moto_server.py --port "$moto_port" > "$run_dir/moto.port" 2> "$run_dir/moto.log" &
        moto_pid=$!
        trap stop_moto EXIT
        trap 'exit 130' INT TERM
        for _ in $(seq 1 100); do
            [ -s "$run_dir/moto.port" ] && break
            if ! kill -0 "$moto_pid" 2>/dev/null; then
                echo "moto did not start (is port $moto_port free?); see $run_dir/moto.log" >&2
                exit 1
            fi
            sleep 0.1
        done
        echo "moto: started on 127.0.0.1:$moto_port (stopped when this exits)"
    fi

    # The SDK's standard variables point every AWS client at moto, as in `make run`.
    export AWS_ENDPOINT_URL="http://127.0.0.1:$moto_port"
    export AWS_REGION="${AWS_REGION:-us-east-1}"
    export AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing
    unset AWS_PROFILE AWS_SESSION_TOKEN
    # Console sign-in links go to `cooper serve`'s stand-in (`make run`), never to AWS.
    export COOPER_SIGNIN_ENDPOINT="${COOPER_SIGNIN_ENDPOINT:-http://$listen/_local/signin}"

    cargo build --quiet -p cooper-cli
    # Its report holds the tokens it creates: readable by this user only.
    (umask 077 && target/debug/cooper setup --json --endpoint "http://$listen" > "$run_dir/setup.json")
    .venv/bin/python scripts/lambda_local.py configure "$run_dir/setup.json" "$run_dir"
    echo "configuration: $run_dir/function.env (tables, SSM prefix, KMS key, topic from cooper setup)"
}
