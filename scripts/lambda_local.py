"""The Python side of `make watch`, `make invoke` and `make sam-local` (scripts/lambda-local.sh,
scripts/sam-local.sh): the functions' configuration from `cooper setup`, fixtures made ready to
send, the answers made readable, and the local copy of the SAM template.

  configure SETUP_JSON DIR    the env file and the secrets (tokens) the other commands read
  event FIXTURE DIR OUT       a fixture with its placeholders filled and a fresh request id
  answer FILE                 a function's answer, as a person reads it
  sam-env DIR HOST OUT        the --env-vars file of `sam local`: moto on HOST
  sam-template TEMPLATE       declares the variables `sam local` must set (it sets no others)
  relay LISTEN TARGET         relays TCP from LISTEN (host:port) to TARGET (a container to moto)

Everything here is for a local run against moto on loopback: nothing reaches AWS.
"""

import base64
import hashlib
import hmac
import json
import os
import secrets
import subprocess
import sys
import time
import uuid

COOPER = "target/debug/cooper"
# The variables `cooper setup` and the functions share (the defaults `make run` uses).
DEFAULTS = {
    "COOPER_DIRECTORY_TABLE": "cooper-directory",
    "COOPER_AUDIT_TABLE": "cooper-audit",
    "COOPER_SSM_PREFIX": "/cooper",
    "COOPER_JWT_ISSUER": "cooper",
    "COOPER_JWT_AUDIENCE": "cooper",
}


def fail(message):
    print(message, file=sys.stderr)
    sys.exit(1)


def issue_token(user, label):
    """A new API token for `user` (a kept user's first token was shown once, by the first setup)."""
    out = subprocess.run(
        [COOPER, "token", "issue", "--user", user, "--label", label, "--days", "1", "--json"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return json.loads(out)["token"]


def configure(setup_json, out_dir):
    """The functions' environment (cargo lambda's --env-file) and the tokens fixtures carry."""
    with open(setup_json) as f:
        setup = json.load(f)
    env = {
        "AWS_ENDPOINT_URL": os.environ["AWS_ENDPOINT_URL"],
        "AWS_REGION": os.environ.get("AWS_REGION", "us-east-1"),
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        **{k: os.environ.get(k, v) for k, v in DEFAULTS.items()},
        "COOPER_DIRECTORY_TABLE": setup["directory_table"],
        "COOPER_AUDIT_TABLE": setup["audit_table"],
        "COOPER_SSM_PREFIX": setup["ssm_prefix"],
        "COOPER_KMS_KEY": setup["kms_key"],
        "COOPER_NOTIFY_TOPIC_ARN": setup["notify_topic_arn"],
        # Console sign-in links: `cooper serve`'s stand-in (`make run`), never AWS's sign-in host.
        "COOPER_SIGNIN_ENDPOINT": os.environ["COOPER_SIGNIN_ENDPOINT"],
        "COOPER_CONSOLE_LOGIN_ENDPOINT": os.environ["COOPER_SIGNIN_ENDPOINT"],
        "RUST_LOG": os.environ.get("RUST_LOG", "info"),
    }
    demo = setup.get("demo") or {}
    found = {
        "demo_token": demo.get("token"),
        "demo_enrollment_code": demo.get("enrollment_code"),
        "admin_user": setup["admin_user"],
        "admin_token": setup.get("admin_token"),
    }
    # Tokens are shown once, when `cooper setup` creates their user: keep the first ones, or
    # issue new ones when moto was set up by someone else (`make run`).
    old = {}
    secrets_path = os.path.join(out_dir, "secrets.json")
    if os.path.exists(secrets_path):
        with open(secrets_path) as f:
            old = json.load(f)
    if old.get("endpoint") != env["AWS_ENDPOINT_URL"] or old.get("kms_key") != setup["kms_key"]:
        old = {}
    kept = {k: v or old.get(k) for k, v in found.items()}
    if not kept["demo_token"]:
        kept["demo_token"] = issue_token("demo", "make watch")
    if not kept["admin_token"]:
        kept["admin_token"] = issue_token(kept["admin_user"], "make watch")
    kept.update(endpoint=env["AWS_ENDPOINT_URL"], kms_key=setup["kms_key"], env=env)
    fd = os.open(secrets_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        json.dump(kept, f, indent=2)
    with open(os.path.join(out_dir, "function.env"), "w") as f:
        for key, value in env.items():
            f.write(f"{key}={value}\n")


def b64url(data):
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def console_session(env, user):
    """A web console session for `user`, signed as cooper signs one (HS256, the SSM key), so that
    the web console's fixtures can be sent signed in. Local only: it reads the key from moto."""
    import boto3

    ssm = boto3.client(
        "ssm",
        endpoint_url=env["AWS_ENDPOINT_URL"],
        region_name=env["AWS_REGION"],
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    name = env["COOPER_SSM_PREFIX"].rstrip("/") + "/jwt/signing-key"
    key_b64 = ssm.get_parameter(Name=name, WithDecryption=True)["Parameter"]["Value"]
    key = base64.b64decode(key_b64.strip())
    now = int(time.time())
    claims = {
        "iss": env["COOPER_JWT_ISSUER"],
        "aud": env["COOPER_JWT_AUDIENCE"] + "-console",
        "sub": user,
        "exp": now + 3600,
        "iat": now,
        "sid": secrets.token_hex(16),
    }
    header = b64url(json.dumps({"typ": "JWT", "alg": "HS256"}, separators=(",", ":")).encode())
    payload = b64url(json.dumps(claims, separators=(",", ":")).encode())
    signature = hmac.new(key, f"{header}.{payload}".encode(), hashlib.sha256).digest()
    return f"{header}.{payload}.{b64url(signature)}"


def csrf_of(session):
    """The CSRF token the pages derive from a session (crates/api/src/web/session.rs)."""
    return b64url(hashlib.sha256(b"cooper-console-csrf\0" + session.encode()).digest())


def event(fixture, run_dir, out):
    with open(os.path.join(run_dir, "secrets.json")) as f:
        kept = json.load(f)
    with open(fixture) as f:
        text = f.read()
    function = os.path.basename(os.path.dirname(os.path.abspath(fixture)))
    # The bearer a fixture carries, by the function it is for (as tests/e2e/lambda.rs does).
    if "REPLACE_WITH_TOKEN" in text:
        bearer = {
            "admin-targets": kept["admin_token"],
            "enroll-totp": kept.get("demo_enrollment_code") or kept["demo_token"],
        }.get(function, kept["demo_token"])
        if function == "enroll-totp" and not kept.get("demo_enrollment_code"):
            print(
                "note: no enrollment code for demo (it is shown once, by the `cooper setup` that "
                "creates demo): sending demo's API token, which enrollment refuses",
                file=sys.stderr,
            )
        text = text.replace("REPLACE_WITH_TOKEN", bearer)
    for placeholder, user in [
        ("REPLACE_WITH_ADMIN_SESSION", kept["admin_user"]),
        ("REPLACE_WITH_SESSION", "demo"),
    ]:
        if placeholder in text:
            session = console_session(kept["env"], user)
            text = text.replace(placeholder, session).replace("REPLACE_WITH_CSRF", csrf_of(session))
    payload = json.loads(text)
    # API Gateway gives every request a new id, and cooper keys its audit record by it: a fixture
    # sent twice must not be the same request twice.
    context = payload.get("requestContext")
    if isinstance(context, dict) and "requestId" in context:
        context["requestId"] = str(uuid.uuid4())
        context["timeEpoch"] = int(time.time() * 1000)
        context["time"] = time.strftime("%d/%b/%Y:%H:%M:%S +0000", time.gmtime())
    with open(out, "w") as f:
        json.dump(payload, f, indent=2)


def answer(path):
    with open(path) as f:
        text = f.read()
    try:
        payload = json.loads(text)
    except json.JSONDecodeError:
        print(text)
        return
    if not isinstance(payload, dict) or "statusCode" not in payload:
        print(json.dumps(payload, indent=2))
        return
    print(f"HTTP {payload['statusCode']}")
    for name, value in sorted((payload.get("headers") or {}).items()):
        print(f"{name}: {value}")
    for name, values in sorted((payload.get("multiValueHeaders") or {}).items()):
        for value in values:
            print(f"{name}: {value}")
    for cookie in payload.get("cookies") or []:
        print(f"set-cookie: {cookie}")
    print()
    body = payload.get("body") or ""
    if payload.get("isBase64Encoded"):
        body = base64.b64decode(body).decode("utf-8", "replace")
    try:
        print(json.dumps(json.loads(body), indent=2))
    except json.JSONDecodeError:
        print(body)


def sam_env(run_dir, host, out):
    """`sam local`'s --env-vars file: every function ("Parameters") pointed at moto on `host`,
    with the names `cooper setup` made (a function gets those its template declares)."""
    with open(os.path.join(run_dir, "secrets.json")) as f:
        env = dict(json.load(f)["env"])
    env["COOPER_PUBLIC_URL"] = os.environ.get("SAM_LOCAL_URL", "http://127.0.0.1:3000")
    port = env["AWS_ENDPOINT_URL"].rsplit(":", 1)[1]
    env["AWS_ENDPOINT_URL"] = f"http://{host}:{port}"
    # The function asks the sign-in stand-in from its container; the browser that follows a
    # console link is on this host (COOPER_CONSOLE_LOGIN_ENDPOINT stays on loopback).
    env["COOPER_SIGNIN_ENDPOINT"] = env["COOPER_SIGNIN_ENDPOINT"].replace("127.0.0.1", host)
    # The container has credentials of its own from SAM (AWS_ACCESS_KEY_ID...): moto takes any.
    for key in ("AWS_REGION", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        env.pop(key)
    with open(out, "w") as f:
        json.dump({"Parameters": env}, f, indent=2)


# What `sam local` must set besides what template.yaml declares: it passes a function only the
# variables its template declares, so the local copy of the built template declares these.
LOCAL_ONLY = ["AWS_ENDPOINT_URL", "COOPER_SIGNIN_ENDPOINT", "COOPER_CONSOLE_LOGIN_ENDPOINT"]


def sam_template(path):
    """Declares LOCAL_ONLY in every function of a built template (`.aws-sam/build/template.yaml`,
    which `sam local` runs), with an empty default the --env-vars file overrides. The template
    that is deployed is never changed."""
    from samcli.yamlhelper import yaml_dump, yaml_parse

    with open(path) as f:
        template = yaml_parse(f.read())
    functions = 0
    for resource in template.get("Resources", {}).values():
        if resource.get("Type") != "AWS::Serverless::Function":
            continue
        functions += 1
        props = resource.setdefault("Properties", {})
        variables = props.setdefault("Environment", {}).setdefault("Variables", {})
        for name in LOCAL_ONLY:
            variables.setdefault(name, "")
    with open(path, "w") as f:
        f.write(yaml_dump(template))
    print(f"{path}: {functions} functions declare {', '.join(LOCAL_ONLY)}")


def relay(listen, target):
    """Relays TCP connections from `listen` to `target`: a container reaches moto, which listens
    on loopback only, through the docker bridge's address on this host (not every address)."""
    import asyncio

    async def pipe(reader, writer):
        try:
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        finally:
            writer.close()

    async def handle(reader, writer):
        host, port = target.rsplit(":", 1)
        try:
            up_reader, up_writer = await asyncio.open_connection(host, int(port))
        except OSError:
            writer.close()
            return
        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))

    async def main():
        host, port = listen.rsplit(":", 1)
        server = await asyncio.start_server(handle, host, int(port))
        print(f"relaying {listen} -> {target}", flush=True)
        async with server:
            await server.serve_forever()

    asyncio.run(main())


def main():
    commands = {
        "configure": (configure, 2),
        "event": (event, 3),
        "answer": (answer, 1),
        "sam-env": (sam_env, 3),
        "sam-template": (sam_template, 1),
        "relay": (relay, 2),
    }
    if len(sys.argv) < 2 or sys.argv[1] not in commands:
        fail(__doc__)
    command, arity = commands[sys.argv[1]]
    if len(sys.argv) != arity + 2:
        fail(__doc__)
    command(*sys.argv[2:])


if __name__ == "__main__":
    main()
