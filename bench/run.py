"""`make bench`: cooper's cold start, per-request overhead, scale, size and memory, measured.

Everything runs on this machine against moto on loopback (scripts/moto_server.py):

1. Cold start: process start to the first credential response, for the release issue-credentials
   binary and for the boto3 handler in bench/python_handler.py, each hosted the way Lambda hosts a
   function: a runtime API (the small stub below) hands out the event, the function answers it.
   Alternating runs; medians compared.
2. Warm overhead: many issuances through the warm function, against the floor: the same AWS calls
   (recorded from cooper by moto's recorder) made directly with the SDK by crates/bench.
   Alternating rounds; p50 and p99 compared.
3. Scale: the AWS calls one issuance makes (moto's recorder) and its latency with 10, 1,000 and
   100,000 users and 10,000 targets in the directory.
4. Size and memory: each function's stripped release binary; the peak resident memory (VmHWM)
   of the function after it has served every warm request.
5. Round trips: how many AWS calls an issuance waits on one after another (its sequential
   depth), timed through a small proxy in front of moto (TimingProxy, as the e2e fault proxy's
   `timed` and harness::sequential_depth do): the first issuance of a caller in a fresh process
   and a warm one, for cooper and the Python handler.
6. Cost per million issuances, from what was measured: the recorded calls (DynamoDB request
   units from the sizes of the items read and written, the tables' indexes included), the warm
   duration at the template's MemorySize, the log bytes written, the audit-notify function's
   calls and duration for the issuance's audit record; at the list prices in PRICES.

Writes docs/bench/results.md, results.json and bench.png. Expects the release binaries built
(the Makefile's `bench` target builds them first).
"""

import argparse
import base64
import http.client
import json
import math
import re
import os
import platform
import queue
import statistics
import subprocess
import sys
import threading
import time
import urllib.parse
import urllib.request
import uuid
import zipfile
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import boto3

ROOT = Path(__file__).resolve().parent.parent
RUN = ROOT / ".run" / "bench"
RELEASE = ROOT / "target" / "release"
FUNCTIONS = ["issue-credentials", "enroll-totp", "admin-targets", "audit-notify", "web-console", "saml-signin", "rotate-keys"]
# High enough that the warm loops are never refused, while every issuance still counts itself.
RATE_LIMIT = "1000000000"
RUNTIME = "/2018-06-01/runtime"
# While the proxy times calls it holds each one this long before forwarding it, so that calls
# sent side by side overlap whatever moto's own speed (tests/e2e/harness.rs holds 40 ms too).
TIMING_HOLD_S = 0.040

# List prices, us-east-1, on-demand, in US dollars, as these pages gave them when this was
# written (check them before relying on the totals):
#   https://aws.amazon.com/lambda/pricing/           (Arm: per GB-second, per request)
#   https://aws.amazon.com/api-gateway/pricing/      (HTTP APIs, first 300 million a month)
#   https://aws.amazon.com/dynamodb/pricing/on-demand/  (request units; standard table class)
#   https://aws.amazon.com/kms/pricing/              (symmetric requests)
#   https://aws.amazon.com/sns/pricing/              (publishes; email deliveries)
#   https://aws.amazon.com/cloudwatch/pricing/       (Logs: standard ingestion)
#   https://aws.amazon.com/xray/pricing/             (traces recorded)
#   https://aws.amazon.com/sts/ (AssumeRole, GetFederationToken: no charge)
# Free tiers are left out: the figures are what a million more issuances cost.
PRICES = {
    "lambda_gb_second_arm64": 0.0000133334,
    "lambda_request": 0.20 / 1e6,
    "apigw_http_request": 1.00 / 1e6,
    "dynamodb_read_unit": 0.125 / 1e6,
    "dynamodb_write_unit": 0.625 / 1e6,
    "dynamodb_gb_month": 0.25,
    "kms_request": 0.03 / 10_000,
    "sns_publish": 0.50 / 1e6,
    "sns_email": 2.00 / 100_000,
    "logs_ingested_gb": 0.50,
    "xray_trace": 5.00 / 1e6,
    "sts_request": 0.0,
}
# What the SAM template gives every function (Globals: MemorySize), read from template.yaml.
TEMPLATE = ROOT / "template.yaml"


# ----------------------------------------------------------------------------- runtime API stub
class QuietServer(ThreadingHTTPServer):
    """Stopping a function drops its connection mid-request; that is expected, not an error."""

    daemon_threads = True

    def handle_error(self, request, client_address):
        pass


class Runtime:
    """The Lambda runtime API, as much of it as a function uses: next, response, error.

    One per function process, so that a stopped process can never swallow the next event.
    """

    def __init__(self):
        self.events = queue.Queue()
        self.done = {}
        self.cond = threading.Condition()
        # Set once the function asks for its first event: its init is over.
        self.polling = threading.Event()
        runtime = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            # Headers and body are separate writes: with Nagle's algorithm on, the body can wait
            # for the client's delayed ACK (40 ms on Linux), a stall that is the stub's, not the
            # function's.
            disable_nagle_algorithm = True

            def log_message(self, *args):
                pass

            def reply(self, status, body=b"", headers=()):
                self.send_response(status)
                for name, value in headers:
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_GET(self):
                if self.path != f"{RUNTIME}/invocation/next":
                    return self.reply(404)
                runtime.polling.set()
                request_id, event = runtime.events.get()
                deadline = int(time.time() * 1000) + 60_000
                self.reply(200, event, [
                    ("Content-Type", "application/json"),
                    ("Lambda-Runtime-Aws-Request-Id", request_id),
                    ("Lambda-Runtime-Deadline-Ms", str(deadline)),
                    ("Lambda-Runtime-Invoked-Function-Arn",
                     "arn:aws:lambda:us-east-1:123456789012:function:bench"),
                    ("Lambda-Runtime-Trace-Id", "Root=1-00000000-000000000000000000000000"),
                ])

            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                at = time.perf_counter()
                parts = self.path.split("/")
                if self.path.startswith(f"{RUNTIME}/invocation/") and parts[-1] in ("response", "error"):
                    with runtime.cond:
                        runtime.done[parts[-2]] = (parts[-1], body, at)
                        runtime.cond.notify_all()
                elif self.path == f"{RUNTIME}/init/error":
                    with runtime.cond:
                        runtime.done["init"] = ("error", body, at)
                        runtime.cond.notify_all()
                self.reply(202, b"{}", [("Content-Type", "application/json")])

        self.server = QuietServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.address = f"127.0.0.1:{self.server.server_address[1]}"

    def submit(self, event: bytes) -> str:
        request_id = str(uuid.uuid4())
        self.events.put((request_id, event))
        return request_id

    def wait(self, request_id, process=None, timeout=60.0, http=True):
        """The function's answer: (parsed response, time it arrived). An HTTP function's answer
        must be a 200; another's (a stream batch's) only an answer."""
        end = time.monotonic() + timeout
        with self.cond:
            while request_id not in self.done and "init" not in self.done:
                left = end - time.monotonic()
                if left <= 0:
                    raise RuntimeError("the function did not answer in time")
                if process is not None and process.poll() is not None:
                    raise RuntimeError(f"the function exited ({process.returncode}); see {RUN / 'functions.log'}")
                self.cond.wait(min(left, 0.2))
            if "init" in self.done:
                raise RuntimeError(f"the function failed at init: {self.done['init'][1][:500]!r}")
            kind, body, at = self.done.pop(request_id)
        if kind != "response":
            raise RuntimeError(f"the function reported an error: {body[:500]!r}")
        answer = json.loads(body)
        if http and answer.get("statusCode") != 200:
            raise RuntimeError(f"the function answered {answer.get('statusCode')}: {answer.get('body')}")
        return answer, at

    def invoke(self, event, http=True) -> float:
        """One invocation of a running function: seconds from handing out the event to the answer."""
        body = event()
        start = time.perf_counter()
        _, at = self.wait(self.submit(body), http=http)
        return at - start

    def close(self):
        self.server.shutdown()
        self.server.server_close()


class Function:
    """A function process hosted by its own runtime API stub."""

    def __init__(self, command, env, log):
        self.runtime = Runtime()
        self.command = command
        self.env = dict(env, AWS_LAMBDA_RUNTIME_API=self.runtime.address)
        self.log = log
        self.process = None

    def start(self, timeout=60.0):
        """Starts the process with no event waiting; returns once its init is over."""
        self.process = subprocess.Popen(
            self.command, env=self.env, stdout=self.log, stderr=self.log, stdin=subprocess.DEVNULL
        )
        end = time.monotonic() + timeout
        while not self.runtime.polling.wait(0.1):
            if self.process.poll() is not None or time.monotonic() > end:
                raise RuntimeError(f"the function did not get through init; see {RUN / 'functions.log'}")

    def cold_start(self, event) -> float:
        """Starts the process with an event waiting: seconds from process start to the answer."""
        request_id = self.runtime.submit(event())
        start = time.perf_counter()
        self.process = subprocess.Popen(
            self.command, env=self.env, stdout=self.log, stderr=self.log, stdin=subprocess.DEVNULL
        )
        _, at = self.runtime.wait(request_id, self.process)
        return at - start

    def peak_memory_kib(self) -> int:
        for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
        raise RuntimeError("no VmHWM in /proc")

    def stop(self):
        if self.process:
            self.process.kill()
            self.process.wait()
        self.runtime.close()


def lambda_env(base, name):
    return dict(
        base,
        AWS_LAMBDA_FUNCTION_NAME=name,
        AWS_LAMBDA_FUNCTION_MEMORY_SIZE="128",
        AWS_LAMBDA_FUNCTION_VERSION="$LATEST",
        AWS_LAMBDA_LOG_GROUP_NAME=f"/aws/lambda/{name}",
        AWS_LAMBDA_LOG_STREAM_NAME="bench",
    )


# ----------------------------------------------------------------------------- moto
class Moto:
    def __init__(self, python):
        RUN.mkdir(parents=True, exist_ok=True)
        self.recording = RUN / "recording.jsonl"
        env = dict(os.environ, MOTO_RECORDER_FILEPATH=str(self.recording))
        self.log = open(RUN / "moto.log", "w")
        self.process = subprocess.Popen(
            [python, str(ROOT / "scripts" / "moto_server.py"), "--exit-with-parent"],
            stdout=subprocess.PIPE, stderr=self.log, stdin=subprocess.PIPE, env=env, text=True,
        )
        port = self.process.stdout.readline().strip()
        if not port:
            raise RuntimeError(f"moto did not start; see {RUN / 'moto.log'}")
        self.endpoint = f"http://127.0.0.1:{port}"

    def client(self, service):
        return boto3.client(
            service, endpoint_url=self.endpoint, region_name="us-east-1",
            aws_access_key_id="testing", aws_secret_access_key="testing",
        )

    def recorder(self, action):
        urllib.request.urlopen(
            urllib.request.Request(f"{self.endpoint}/moto-api/recorder/{action}", method="POST")
        ).read()

    def record(self, f):
        """Runs f with moto's recorder on; returns its result and the AWS calls it made."""
        self.recorder("reset-recording")
        self.recorder("start-recording")
        try:
            out = f()
        finally:
            self.recorder("stop-recording")
        text = urllib.request.urlopen(f"{self.endpoint}/moto-api/recorder/download-recording").read()
        return out, [call(json.loads(line)) for line in text.decode().splitlines() if line.strip()]

    def stop(self):
        self.process.terminate()
        self.process.wait()


def call(recorded):
    """A recorded request as (service, operation, parameters)."""
    headers = recorded.get("headers") or {}
    body = recorded.get("body") or ""
    try:
        body = base64.b64decode(body).decode()
    except (ValueError, UnicodeDecodeError):
        pass
    return describe(headers, body)


def describe(headers, body):
    """An AWS request, from its headers and body text, as (service, operation, parameters)."""
    headers = {k.lower(): v for k, v in headers.items()}
    target = headers.get("x-amz-target", "")
    if target.startswith("DynamoDB_"):
        return "dynamodb", target.split(".", 1)[1], json.loads(body or "{}")
    if target.startswith("TrentService."):
        return "kms", target.split(".", 1)[1], json.loads(body or "{}")
    if target.startswith("AmazonSSM."):
        return "ssm", target.split(".", 1)[1], json.loads(body or "{}")
    form = dict(urllib.parse.parse_qsl(body))
    authorization = headers.get("authorization", "")
    service = authorization.split("/")[3] if "Credential=" in authorization else "?"
    return service, form.get("Action", "?"), form


# ----------------------------------------------------------------------------- round trips
class TimingProxy:
    """Forwards every request to moto; while timing, holds each one TIMING_HOLD_S and notes
    which AWS call it was and when it left and came back (the e2e fault proxy's `timed`)."""

    def __init__(self, upstream):
        self.upstream = urllib.parse.urlsplit(upstream)
        self.timeline = None
        self.lock = threading.Lock()
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True

            def log_message(self, *args):
                pass

            def forward(self):
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                start = time.perf_counter()
                timing = proxy.timeline is not None
                if timing:
                    time.sleep(TIMING_HOLD_S)
                upstream = http.client.HTTPConnection(proxy.upstream.hostname, proxy.upstream.port, timeout=120)
                headers = {k: v for k, v in self.headers.items() if k.lower() not in ("host", "content-length", "connection")}
                upstream.request(self.command, self.path, body=body, headers=headers)
                answer = upstream.getresponse()
                data = answer.read()
                upstream.close()
                end = time.perf_counter()
                self.send_response(answer.status)
                for name, value in answer.getheaders():
                    if name.lower() not in ("content-length", "transfer-encoding", "connection"):
                        self.send_header(name, value)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)
                if timing:
                    service, operation, _ = describe(dict(self.headers.items()), body.decode(errors="replace"))
                    with proxy.lock:
                        if proxy.timeline is not None:
                            proxy.timeline.append((f"{service}:{operation}", start, end))

            do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = forward

        self.server = QuietServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.endpoint = f"http://127.0.0.1:{self.server.server_address[1]}"

    def timed(self, f):
        """Runs f, timing every call made meanwhile: (f's result, [(call, start, end)])."""
        with self.lock:
            self.timeline = []
        try:
            out = f()
        finally:
            with self.lock:
                calls, self.timeline = self.timeline, None
        return out, calls

    def close(self):
        self.server.shutdown()
        self.server.server_close()


def sequential_depth(calls):
    """The longest chain of calls each waiting for the one before (a call waits for another when
    it left after the other came back): how many round trips deep, and that chain
    (tests/e2e/harness.rs `sequential_depth`)."""
    calls = sorted(calls, key=lambda c: c[1])
    best = []  # per call: (depth of the deepest chain ending with it, the call before it there)
    for i, (_, start, _) in enumerate(calls):
        before = [j for j in range(i) if calls[j][2] <= start]
        j = max(before, key=lambda j: best[j][0], default=None)
        best.append((1 if j is None else best[j][0] + 1, j))
    if not calls:
        return 0, []
    at = max(range(len(calls)), key=lambda i: best[i][0])
    depth, chain = best[at][0], []
    while at is not None:
        chain.append(calls[at][0])
        at = best[at][1]
    return depth, chain[::-1]


def round_trips(function, proxy, event, warm=3):
    """The sequential depth of a fresh process's first issuance (after its init) and the
    deepest of its next `warm` ones."""
    function.start()
    _, calls = proxy.timed(lambda: function.runtime.invoke(event))
    first = sequential_depth(calls)
    warmed = (0, [])
    for _ in range(warm):
        _, calls = proxy.timed(lambda: function.runtime.invoke(event))
        warmed = max(warmed, sequential_depth(calls), key=lambda d: d[0])
    return {
        "first": {"depth": first[0], "chain": first[1]},
        "warm": {"depth": warmed[0], "chain": warmed[1]},
    }


def floor_calls(calls):
    """The recorded calls of one issuance, named the way crates/bench replays them."""
    named = {"queries": []}
    for service, operation, params in calls:
        if operation == "GetItem":
            pk = params["Key"]["PK"]["S"]
            named["token" if pk.startswith("TOKEN#") else "target"] = params
        elif operation == "Query":
            named["queries"].append(params)
        elif operation == "UpdateItem":
            named["rate"] = params
        elif operation == "BatchGetItem":
            named["grants"] = params
        elif operation == "AssumeRole":
            named["assume_role"] = params
        elif operation == "PutItem":
            named["audit"] = params
        else:
            raise RuntimeError(f"an issuance made a call the floor does not replay: {service} {operation}")
    missing = {"token", "target", "rate", "grants", "assume_role", "audit"} - named.keys()
    if missing or not named["queries"]:
        raise RuntimeError(f"an issuance did not make the calls the floor expects: {sorted(missing) or 'a Query'}")
    # Every call is replayed: as many as cooper made.
    if sum(1 if k != "queries" else len(v) for k, v in named.items()) != len(calls):
        raise RuntimeError("an issuance made a call twice that the floor replays once")
    return named


def floor_run(env, calls_path, iterations):
    """Latencies (seconds) of `iterations` issuances' calls made by crates/bench."""
    out = subprocess.run(
        [str(RELEASE / "cooper-floor"), str(calls_path), str(iterations)],
        env=env, check=True, capture_output=True, text=True,
    )
    return [us / 1e6 for us in json.loads(out.stdout)]


# ----------------------------------------------------------------------------- cost
def number_size(text):
    """DynamoDB's size of a number: about one byte per two significant digits, plus one."""
    digits = re.sub(r"[eE].*$", "", text.lstrip("-+")).replace(".", "").strip("0") or "0"
    return 1 + math.ceil(len(digits) / 2)


def value_size(value):
    """The size DynamoDB bills for an attribute value (boto3's low-level shape or the wire's)."""
    (kind, inner), = value.items()
    if kind == "S":
        return len(inner.encode())
    if kind == "N":
        return number_size(inner)
    if kind == "B":
        return len(inner) if isinstance(inner, (bytes, bytearray)) else len(base64.b64decode(inner))
    if kind in ("BOOL", "NULL"):
        return 1
    if kind == "SS":
        return sum(len(x.encode()) for x in inner)
    if kind == "NS":
        return sum(number_size(x) for x in inner)
    if kind == "BS":
        return sum(len(x) if isinstance(x, (bytes, bytearray)) else len(base64.b64decode(x)) for x in inner)
    if kind == "L":
        return 3 + sum(1 + value_size(v) for v in inner)
    if kind == "M":
        return 3 + sum(1 + len(k.encode()) + value_size(v) for k, v in inner.items())
    raise RuntimeError(f"attribute type {kind} is not sized")


def item_size(item):
    """An item's size as DynamoDB bills it: each attribute's name and value."""
    return sum(len(name.encode()) + value_size(v) for name, v in (item or {}).items())


def full_read(params):
    """A recorded read's parameters without its projection: a projection does not make a read
    cheaper (the whole item is read), so the replay asks for whole items."""
    params = {k: v for k, v in params.items() if k not in ("ProjectionExpression", "ReturnConsumedCapacity")}
    if "ExpressionAttributeNames" in params:
        used = " ".join(str(params.get(k, "")) for k in ("KeyConditionExpression", "FilterExpression"))
        names = {k: v for k, v in params["ExpressionAttributeNames"].items() if k in used}
        params.pop("ExpressionAttributeNames")
        if names:
            params["ExpressionAttributeNames"] = names
    return params


class Units:
    """DynamoDB request units of recorded calls, on-demand: a read unit per 4 KB of each item
    (half for an eventually consistent read; a Query sums its items first), a write unit per KB
    of the item written, once more for each index the item is in (a projection of ALL, as
    cooper's tables have), twice for a transaction. The items are read back from moto."""

    def __init__(self, client):
        self.client = client
        self.indexes = {}

    def gsi_keys(self, table):
        if table not in self.indexes:
            described = self.client.describe_table(TableName=table)["Table"]
            self.indexes[table] = [
                [k["AttributeName"] for k in index["KeySchema"]]
                for index in described.get("GlobalSecondaryIndexes", [])
            ]
        return self.indexes[table]

    def write(self, table, item):
        size = item_size(item)
        copies = 1 + sum(all(k in item for k in keys) for keys in self.gsi_keys(table))
        return copies * max(1, math.ceil(size / 1024)), copies * size

    def of(self, service, operation, params):
        """(read units, write units, bytes stored) of one call."""
        if service != "dynamodb":
            return 0, 0, 0
        factor = lambda consistent: 1.0 if consistent else 0.5
        if operation == "GetItem":
            item = self.client.get_item(**full_read(params)).get("Item")
            return factor(params.get("ConsistentRead")) * max(1, math.ceil(item_size(item) / 4096)), 0, 0
        if operation == "BatchGetItem":
            units = 0.0
            for table, request in params["RequestItems"].items():
                replay = {table: full_read(request)}
                found = self.client.batch_get_item(RequestItems=replay)["Responses"].get(table, [])
                sizes = {json.dumps({k: i[k] for k in request["Keys"][0]}, sort_keys=True): item_size(i) for i in found}
                for key in request["Keys"]:
                    size = sizes.get(json.dumps(key, sort_keys=True), 0)
                    units += factor(request.get("ConsistentRead")) * max(1, math.ceil(size / 4096))
            return units, 0, 0
        if operation == "Query":
            items = self.client.query(**full_read(params))["Items"]
            total = sum(item_size(i) for i in items)
            return factor(params.get("ConsistentRead")) * max(1, math.ceil(total / 4096)), 0, 0
        if operation == "PutItem":
            units, stored = self.write(params["TableName"], params["Item"])
            return 0, units, stored
        if operation in ("UpdateItem", "DeleteItem"):
            # The item as it is now (after the update; gone after a delete: a unit at least).
            item = self.client.get_item(TableName=params["TableName"], Key=params["Key"], ConsistentRead=True).get("Item") or {}
            units, _ = self.write(params["TableName"], item)
            return 0, units, 0
        if operation == "TransactWriteItems":
            units = 0
            for action in params["TransactItems"]:
                (kind, body), = action.items()
                if kind == "Put":
                    units += 2 * self.write(body["TableName"], body["Item"])[0]
                elif kind != "ConditionCheck":
                    units += 2 * self.of("dynamodb", f"{kind}Item", body)[1]
                else:
                    units += 2
            return 0, units, 0
        raise RuntimeError(f"no request units known for dynamodb:{operation}")


def usage(units, calls):
    """What recorded calls use: DynamoDB units and bytes stored, and the other services' calls."""
    read = write = stored = 0
    counts = Counter()
    for service, operation, params in calls:
        r, w, b = units.of(service, operation, params)
        read, write, stored = read + r, write + w, stored + b
        counts[service] += 1
    return {
        "dynamodb_read_units": read, "dynamodb_write_units": write, "dynamodb_bytes_stored": stored,
        "kms_requests": counts["kms"], "sts_requests": counts["sts"], "sns_publishes": counts["sns"],
        "calls": sum(counts.values()),
    }


def memory_size_mb():
    """The functions' MemorySize in template.yaml (its Globals; no function sets its own)."""
    sizes = re.findall(r"^\s+MemorySize:\s*(\d+)", TEMPLATE.read_text(), re.M)
    if len(set(sizes)) != 1:
        raise RuntimeError(f"template.yaml: expected one MemorySize for every function, found {sizes}")
    return int(sizes[0])


def cost(issue, duration_s, log_bytes, notice, notice_duration_s, memory_mb):
    """Dollars per million issuances, by line, from per-issuance usage."""
    p, gb = PRICES, memory_mb / 1024
    million = 1e6

    def lam(seconds):
        # Lambda bills each invocation's duration rounded up to the millisecond.
        return p["lambda_request"] + math.ceil(seconds * 1000) / 1000 * gb * p["lambda_gb_second_arm64"]

    lines = {
        "api_gateway": p["apigw_http_request"],
        "lambda": lam(duration_s),
        "dynamodb": issue["dynamodb_read_units"] * p["dynamodb_read_unit"]
        + issue["dynamodb_write_units"] * p["dynamodb_write_unit"],
        "sts": issue["sts_requests"] * p["sts_request"],
        "kms": issue["kms_requests"] * p["kms_request"],
        "logs": log_bytes / 1e9 * p["logs_ingested_gb"],
        "xray": p["xray_trace"],
        "audit_notice": lam(notice_duration_s)
        + notice["dynamodb_read_units"] * p["dynamodb_read_unit"]
        + notice["dynamodb_write_units"] * p["dynamodb_write_unit"]
        + notice["sns_publishes"] * p["sns_publish"]
        + notice["kms_requests"] * p["kms_request"],
    }
    per_million = {k: round(v * million, 4) for k, v in lines.items()}
    return {
        "per_million": per_million,
        "total_per_million": round(sum(lines.values()) * million, 2),
        "email_per_subscriber_per_million": round(p["sns_email"] * million, 2),
        "storage_gb_per_million": round(issue["dynamodb_bytes_stored"] * million / 1e9, 3),
        "storage_per_million_per_month": round(issue["dynamodb_bytes_stored"] * million / 1e9 * p["dynamodb_gb_month"], 2),
    }


def stream_event(item, n):
    """A DynamoDB stream batch with one new audit record, as Lambda delivers it."""
    return json.dumps({"Records": [{
        "eventID": uuid.uuid4().hex, "eventName": "INSERT", "eventVersion": "1.1",
        "eventSource": "aws:dynamodb", "awsRegion": "us-east-1",
        "dynamodb": {
            "ApproximateCreationDateTime": int(time.time()), "Keys": {"id": item["id"]}, "NewImage": item,
            "SequenceNumber": f"{400000000000000000000 + n}", "SizeBytes": item_size(item),
            "StreamViewType": "NEW_IMAGE",
        },
        "eventSourceARN": "arn:aws:dynamodb:us-east-1:123456789012:table/cooper-audit/stream/2026-01-01T00:00:00.000",
    }]}).encode()


# ----------------------------------------------------------------------------- the directory
def seed(client, table, template, count, rename, start=0):
    """Writes `count` copies of `template` items, renamed by `rename(item, i)`, 25 per call."""
    batch = []
    for i in range(start, start + count):
        for item in template:
            batch.append({"PutRequest": {"Item": rename(item, i)}})
            if len(batch) == 25:
                write(client, table, batch)
                batch = []
    if batch:
        write(client, table, batch)


def write(client, table, batch):
    pending = {table: batch}
    while pending:
        pending = client.batch_write_item(RequestItems=pending).get("UnprocessedItems") or {}


def user_copy(item, i):
    name = f"bench-user-{i:06d}"
    out = json.loads(json.dumps(item))
    out["PK"] = {"S": f"USER#{name}"}
    if out["SK"]["S"] == "PROFILE":
        out["name"] = {"S": name}
        out["GSI1SK"] = {"S": f"USER#{name}"}
    else:
        out["user"] = {"S": name}
        out["GSI1SK"] = {"S": f"MEMBER#{name}"}
    return out


def target_copy(item, i):
    name = f"bench-target-{i:05d}"
    out = json.loads(json.dumps(item))
    out["PK"] = {"S": f"TARGET#{name}"}
    out["name"] = {"S": name}
    out["GSI1SK"] = {"S": f"TARGET#{int(out['level']['N']):04d}#{name}"}
    return out


# ----------------------------------------------------------------------------- statistics
def pct(values, p):
    ordered = sorted(values)
    k = max(0, min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1))))
    return ordered[k]


def ms(seconds):
    return round(seconds * 1000, 2)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cold-runs", type=int, default=15, help="cold starts of each function")
    parser.add_argument("--warm", type=int, default=600, help="warm issuances (cooper and the floor each)")
    parser.add_argument("--scale-requests", type=int, default=100, help="issuances timed at each directory size")
    parser.add_argument("--users", default="10,1000,100000", help="directory sizes (users)")
    parser.add_argument("--targets", type=int, default=10_000, help="targets in the directory")
    parser.add_argument("--out", default=str(ROOT / "docs" / "bench"))
    parser.add_argument("--render", action="store_true", help="only redraw results.md and bench.png from results.json")
    args = parser.parse_args()
    out = Path(args.out)
    if args.render:
        results = json.loads((out / "results.json").read_text())
        (out / "results.md").write_text(markdown(results))
        plot(results, out / "bench.png")
        return

    python = sys.executable
    cooper = ROOT / "target" / "debug" / "cooper"
    for binary in [RELEASE / f for f in FUNCTIONS] + [RELEASE / "cooper-floor", cooper]:
        if not binary.exists():
            sys.exit(f"{binary} is missing: run `make bench`, which builds it")

    moto = Moto(python)
    try:
        results = bench(args, python, cooper, moto)
    finally:
        moto.stop()
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.json").write_text(json.dumps(results, indent=2) + "\n")
    (out / "results.md").write_text(markdown(results))
    plot(results, out / "bench.png")
    print((out / "results.md").read_text())


def bench(args, python, cooper, moto):
    env = {
        k: v for k, v in os.environ.items()
        if not k.startswith(("AWS_", "COOPER_")) or k in ("AWS_CONFIG_FILE", "AWS_SHARED_CREDENTIALS_FILE")
    }
    env.update(
        AWS_ENDPOINT_URL=moto.endpoint, AWS_REGION="us-east-1", AWS_DEFAULT_REGION="us-east-1",
        AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing",
        COOPER_CREDENTIAL_RATE_LIMIT=RATE_LIMIT, AWS_EC2_METADATA_DISABLED="true",
    )
    setup = json.loads(subprocess.run(
        [str(cooper), "setup", "--json"], env=env, check=True, capture_output=True, text=True
    ).stdout)
    demo = setup["demo"]
    # What the SAM template sets on the function.
    env.update(
        COOPER_DIRECTORY_TABLE=setup["directory_table"], COOPER_AUDIT_TABLE=setup["audit_table"],
        COOPER_SSM_PREFIX=setup["ssm_prefix"], COOPER_KMS_KEY=setup["kms_key"],
    )
    template = (ROOT / "events" / "issue-credentials" / "post-credentials.json").read_text()
    fixture = json.loads(template.replace("REPLACE_WITH_TOKEN", demo["token"]))
    if json.loads(fixture["body"])["target"] != demo["target"]:
        raise RuntimeError("the event fixture asks for another target than the demo's")

    def event():
        # API Gateway gives every request its own id; cooper's audit record is keyed by it.
        fixture["requestContext"]["requestId"] = base64.b64encode(os.urandom(12)).decode()
        return json.dumps(fixture).encode()

    log = open(RUN / "functions.log", "w")
    # The warm functions log to files of their own: the bytes logged per issuance are a cost.
    cooper_log_path, python_log_path = RUN / "issue-credentials.log", RUN / "python-handler.log"
    cooper_log, python_log = open(cooper_log_path, "w"), open(python_log_path, "w")
    rust_cmd = [str(RELEASE / "issue-credentials")]
    python_cmd = [python, str(ROOT / "bench" / "python_handler.py")]
    rust_env = lambda_env(env, "issue-credentials")
    python_env = lambda_env(env, "issue-credentials-python")

    # 1. Cold start, alternating so that both see the same machine.
    print(f"cold start: {args.cold_runs} runs each", file=sys.stderr)
    cold = {"cooper": [], "python": []}
    for _ in range(args.cold_runs):
        for name, cmd, fenv in (("cooper", rust_cmd, rust_env), ("python", python_cmd, python_env)):
            function = Function(cmd, fenv, log)
            try:
                cold[name].append(function.cold_start(event))
            finally:
                function.stop()

    # The calls of one issuance, recorded from cooper, are what the floor replays.
    calls_path = RUN / "floor-calls.json"
    function = Function(rust_cmd, rust_env, cooper_log)
    try:
        _, first = moto.record(lambda: function.cold_start(event))
        _, calls = moto.record(lambda: function.runtime.invoke(event))
        # What a cold start adds to an issuance: the calls made at init.
        at_init = Counter(f"{s}:{o}" for s, o, _ in first) - Counter(f"{s}:{o}" for s, o, _ in calls)
        calls_path.write_text(json.dumps(floor_calls(calls)))
        # The floor signs AssumeRole with the broker's keys, as cooper does.
        ssm = moto.client("ssm")
        prefix = setup["ssm_prefix"]
        keys = {
            p["Name"]: p["Value"]
            for p in ssm.get_parameters(
                Names=[f"{prefix}/broker/access-key-id", f"{prefix}/broker/secret-access-key"],
                WithDecryption=True,
            )["Parameters"]
        }
        floor_env = dict(
            env,
            FLOOR_BROKER_ACCESS_KEY_ID=keys[f"{prefix}/broker/access-key-id"],
            FLOOR_BROKER_SECRET_ACCESS_KEY=keys[f"{prefix}/broker/secret-access-key"],
        )

        # 2. Warm overhead: cooper and the floor in alternating rounds.
        print(f"warm: {args.warm} issuances each", file=sys.stderr)
        warm = {"cooper": [], "floor": [], "python": []}
        rounds = 6
        per_round = max(1, args.warm // rounds)
        python_fn = Function(python_cmd, python_env, python_log)
        logged = {"cooper": 0, "python": 0}
        try:
            python_fn.cold_start(event)
            for _ in range(rounds):
                for name, f, n in (("cooper", function, per_round), ("python", python_fn, per_round // 3)):
                    f.log.flush()
                    before = Path(f.log.name).stat().st_size
                    warm[name] += [f.runtime.invoke(event) for _ in range(n)]
                    time.sleep(0.05)  # the last line written
                    logged[name] += Path(f.log.name).stat().st_size - before
                warm["floor"] += floor_run(floor_env, calls_path, per_round)
            python_peak = python_fn.peak_memory_kib()
            _, python_calls = moto.record(lambda: python_fn.runtime.invoke(event))
        finally:
            python_fn.stop()

        # 5. Round trips: fresh processes whose AWS calls go through the timing proxy.
        print("round trips", file=sys.stderr)
        proxy = TimingProxy(moto.endpoint)
        depth = {}
        try:
            for name, cmd, fenv in (("cooper", rust_cmd, rust_env), ("python", python_cmd, python_env)):
                timed_fn = Function(cmd, dict(fenv, AWS_ENDPOINT_URL=proxy.endpoint), log)
                try:
                    depth[name] = round_trips(timed_fn, proxy, event)
                finally:
                    timed_fn.stop()
        finally:
            proxy.close()

        # 6. Cost: what one warm issuance used, read from its recorded calls; the same for a
        # federated-user target (its keys are sealed with KMS) and for the Python handler; and
        # what announcing its audit record takes (the audit-notify function, one record a batch).
        units = Units(moto.client("dynamodb"))
        federated_fixture = json.loads(json.dumps(fixture))
        federated_body = json.loads(federated_fixture["body"])
        federated_body["target"] = demo["federated_target"]
        federated_fixture["body"] = json.dumps(federated_body)

        def federated_event():
            federated_fixture["requestContext"]["requestId"] = base64.b64encode(os.urandom(12)).decode()
            return json.dumps(federated_fixture).encode()

        federated_s = [function.runtime.invoke(federated_event) for _ in range(20)]
        _, federated_calls = moto.record(lambda: function.runtime.invoke(federated_event))
        topic = moto.client("sns").create_topic(Name="cooper-bench-notices")["TopicArn"]
        notifier = Function(
            [str(RELEASE / "audit-notify")],
            dict(lambda_env(env, "audit-notify"), COOPER_NOTIFY_TOPIC_ARN=topic), log,
        )
        audit_items = [
            params["Item"] for _, op, params in calls + federated_calls
            if op == "PutItem" and params.get("TableName") == setup["audit_table"]
        ]
        try:
            notifier.start()
            notifier.runtime.invoke(lambda: stream_event(audit_items[0], 1), http=False)
            notice_s, notice_calls = moto.record(
                lambda: notifier.runtime.invoke(lambda: stream_event(audit_items[1], 2), http=False)
            )
        finally:
            notifier.stop()
        memory_mb = memory_size_mb()
        notice = usage(units, notice_calls)
        issuances = {
            "cooper": (usage(units, calls), statistics.median(warm["cooper"]), logged["cooper"] / len(warm["cooper"])),
            "cooper_federated": (usage(units, federated_calls), statistics.median(federated_s), logged["cooper"] / len(warm["cooper"])),
            "python": (usage(units, python_calls), statistics.median(warm["python"]), logged["python"] / len(warm["python"])),
        }
        costs = {
            "memory_mb": memory_mb,
            "prices": PRICES,
            "notice": notice | {"duration_ms": ms(notice_s), "calls_by_name": dict(sorted(Counter(f"{s}:{o}" for s, o, _ in notice_calls).items()))},
        }
        for name, (used, seconds, log_bytes) in issuances.items():
            costs[name] = {
                "usage": used | {"duration_ms": ms(seconds), "log_bytes": round(log_bytes)},
                "calls_by_name": dict(sorted(Counter(f"{s}:{o}" for s, o, _ in (
                    calls if name == "cooper" else federated_calls if name == "cooper_federated" else python_calls
                )).items())),
            } | cost(used, seconds, log_bytes, notice, notice_s, memory_mb)

        # 3. Scale: calls and latency as the directory grows.
        dynamodb = moto.client("dynamodb")
        table = setup["directory_table"]
        user_items = dynamodb.query(
            TableName=table, KeyConditionExpression="PK = :pk",
            ExpressionAttributeValues={":pk": {"S": f"USER#{demo['user']}"}},
        )["Items"]
        target_item = dynamodb.get_item(
            TableName=table, Key={"PK": {"S": f"TARGET#{demo['target']}"}, "SK": {"S": "TARGET"}}
        )["Item"]
        started = time.perf_counter()
        seed(dynamodb, table, [target_item], args.targets, target_copy)
        print(f"seeded {args.targets} targets in {time.perf_counter() - started:.0f} s", file=sys.stderr)
        scale = []
        have = 1  # the demo user
        for size in [int(s) for s in args.users.split(",")]:
            if size > have:
                started = time.perf_counter()
                seed(dynamodb, table, user_items, size - have, user_copy, start=have)
                print(f"seeded users to {size} in {time.perf_counter() - started:.0f} s", file=sys.stderr)
                have = size
            _, recorded = moto.record(lambda: function.runtime.invoke(event))
            counts = Counter(f"{service}:{operation}" for service, operation, _ in recorded)
            latencies = [function.runtime.invoke(event) for _ in range(args.scale_requests)]
            floor = floor_run(floor_env, calls_path, args.scale_requests)
            scale.append({
                "users": size,
                "targets": args.targets + 3,
                "calls": dict(sorted(counts.items())),
                "total_calls": sum(counts.values()),
                "scan": any(op in ("Scan",) for _, op, _ in recorded),
                "p50_ms": ms(statistics.median(latencies)),
                "p99_ms": ms(pct(latencies, 99)),
                "floor_p50_ms": ms(statistics.median(floor)),
                "ratio_p50": round(statistics.median(latencies) / statistics.median(floor), 3),
            })

        # 4. Memory: the function has now served every request above.
        peak = function.peak_memory_kib()
        served = 23 + len(warm["cooper"]) + len(scale) * (1 + args.scale_requests)
    finally:
        function.stop()

    sizes = {f: (RELEASE / f).stat().st_size for f in FUNCTIONS}
    arm64 = {f: size for f in FUNCTIONS if (size := lambda_binary_size(f)) is not None}
    cold_ratio = statistics.median(cold["cooper"]) / statistics.median(cold["python"])
    return {
        "machine": {
            "cpu": cpu_model(), "cores": os.cpu_count(), "python": platform.python_version(),
            "rustc": subprocess.run(["rustc", "--version"], capture_output=True, text=True).stdout.strip(),
            "date": time.strftime("%Y-%m-%d"),
        },
        "cold_start": {
            name: {"runs": len(v), "median_ms": ms(statistics.median(v)), "min_ms": ms(min(v)), "max_ms": ms(max(v))}
            for name, v in cold.items()
        } | {"ratio": round(cold_ratio, 3)},
        "warm": {
            name: {"n": len(v), "p50_ms": ms(statistics.median(v)), "p99_ms": ms(pct(v, 99))}
            for name, v in warm.items()
        } | {
            "p50_ratio": round(statistics.median(warm["cooper"]) / statistics.median(warm["floor"]), 3),
            "p99_ratio": round(pct(warm["cooper"], 99) / pct(warm["floor"], 99), 3),
        },
        "calls_at_init": dict(sorted(at_init.items())),
        "scale": scale,
        "binary_bytes": sizes,
        "arm64_binary_bytes": arm64,
        "peak_memory_kib": {"cooper": peak, "cooper_requests_served": served, "python": python_peak},
        "round_trips": depth,
        "cost": costs,
    }


def lambda_binary_size(function):
    """The arm64 `bootstrap` in the zip `make build` writes for `function`, if it has been built."""
    package = ROOT / "target" / "lambda" / function / "bootstrap.zip"
    if not package.exists():
        return None
    with zipfile.ZipFile(package) as z:
        return z.getinfo("bootstrap").file_size


def cpu_model():
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def verdict(ok):
    return "met" if ok else "**not met**"


def markdown(r):
    c, w, m = r["cold_start"], r["warm"], r["machine"]
    mib = 1024 * 1024
    calls_constant = len({s["total_calls"] for s in r["scale"]}) == 1 and len({json.dumps(s["calls"]) for s in r["scale"]}) == 1
    lines = [
        "# cooper benchmarks",
        "",
        f"Measured by `make bench` on {m['date']}: {m['cpu']}, {m['cores']} cores; {m['rustc']}; "
        f"Python {m['python']}. Every AWS call goes to moto on loopback, so latencies are dominated "
        "by moto (a Python server) and are comparable only within this table; the ratios are the point.",
        "",
        "![cooper benchmarks](bench.png)",
        "",
        "## Targets",
        "",
        "| goal | target | measured | |",
        "|---|---|---|---|",
        f"| cold start vs the Python (boto3) handler | ≤ 0.333 | {c['ratio']:.3f} | {verdict(c['ratio'] <= 1 / 3)} |",
        f"| warm overhead vs the SDK floor, p50 | ≤ 1.15 | {w['p50_ratio']:.3f} | {verdict(w['p50_ratio'] <= 1.15)} |",
        f"| warm overhead vs the SDK floor, p99 | ≤ 1.15 | {w['p99_ratio']:.3f} | {verdict(w['p99_ratio'] <= 1.15)} |",
        f"| AWS calls per issuance constant with the directory's size, no Scan | yes | "
        f"{'yes' if calls_constant else 'no'}, {'no Scan' if not any(s['scan'] for s in r['scale']) else 'a Scan'} "
        f"| {verdict(calls_constant and not any(s['scan'] for s in r['scale']))} |",
    ]
    # Judged in decimal megabytes, the stricter reading, on the arm64 build Lambda runs when
    # `make build` has made it, else on this machine's.
    for arch, sizes in (("arm64", r["arm64_binary_bytes"]), ("x86_64", r["binary_bytes"])):
        if sizes:
            largest = max(sizes.values())
            lines.append(
                f"| largest stripped function binary ({arch}) | ≤ 8 MB | {largest / 1e6:.2f} MB "
                f"({largest / mib:.2f} MiB) | {verdict(largest <= 8_000_000)} |"
            )
    peak = r["peak_memory_kib"]["cooper"] * 1024
    if "round_trips" in r:
        d = r["round_trips"]["cooper"]
        lines += [
            f"| round trips an API-token issuance waits on, warm | ≤ 4 | {d['warm']['depth']} | {verdict(d['warm']['depth'] <= 4)} |",
            f"| the same, a caller's first issuance in a fresh process | ≤ 4 | {d['first']['depth']} | {verdict(d['first']['depth'] <= 4)} |",
        ]
    lines += [
        f"| peak memory of issue-credentials | < 40 MB | {peak / 1e6:.1f} MB | {verdict(peak < 40_000_000)} |",
        "",
        "## 1. Cold start (process start to first credential response, runtime API stub)",
        "",
        "| function | runs | median | min | max |",
        "|---|---|---|---|---|",
    ]
    for name, label in (("cooper", "cooper issue-credentials (Rust, release)"), ("python", "Python 3 + boto3, same calls")):
        s = c[name]
        lines.append(f"| {label} | {s['runs']} | {s['median_ms']} ms | {s['min_ms']} ms | {s['max_ms']} ms |")
    init = ", ".join(f"{k} ×{v}" if v > 1 else k for k, v in r["calls_at_init"].items()) or "none"
    lines += [
        "",
        f"AWS calls cooper makes at init, before its first request: {init}.",
        "",
        "## 2. Warm issuance latency",
        "",
        "| | issuances | p50 | p99 |",
        "|---|---|---|---|",
    ]
    for name, label in (
        ("cooper", "cooper issue-credentials via the runtime API"),
        ("floor", "floor: the same AWS calls with the Rust SDK, nothing around them"),
        ("python", "Python + boto3 handler via the runtime API"),
    ):
        s = w[name]
        lines.append(f"| {label} | {s['n']} | {s['p50_ms']} ms | {s['p99_ms']} ms |")
    lines += [
        "",
        f"Overhead ratio cooper / floor: p50 {w['p50_ratio']:.3f}, p99 {w['p99_ratio']:.3f}.",
        "",
        "## 3. Scale",
        "",
        "| users | targets | AWS calls per issuance | which | cooper p50 | cooper p99 | floor p50 | cooper / floor |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for s in r["scale"]:
        which = ", ".join(f"{k} ×{v}" if v > 1 else k for k, v in s["calls"].items())
        lines.append(
            f"| {s['users']:,} | {s['targets']:,} | {s['total_calls']} | {which} | {s['p50_ms']} ms "
            f"| {s['p99_ms']} ms | {s['floor_p50_ms']} ms | {s['ratio_p50']:.2f} |"
        )
    lines += [
        "",
        "The calls are the same at every size: key lookups, never a Scan. The latency that grows is "
        "moto's: its Query walks every item of the table to find one partition (`Table.query` in "
        "`moto/dynamodb/models/table.py` iterates `all_items()`), where DynamoDB reads only the "
        "partition. The floor, making the same calls with no cooper around them, grows the same way; "
        "cooper's share stays the same.",
    ]
    lines += [
        "",
        "## 4. Size and memory",
        "",
        "| function | stripped release binary, x86_64 (this machine) | arm64 (`make build`, what Lambda runs) |",
        "|---|---|---|",
    ]
    for f, size in r["binary_bytes"].items():
        arm = r["arm64_binary_bytes"].get(f)
        lines.append(f"| {f} | {size / 1e6:.2f} MB | {f'{arm / 1e6:.2f} MB' if arm else 'not built: run `make build` first'} |")
    p = r["peak_memory_kib"]
    lines += [
        "",
        f"Peak resident memory (VmHWM) of issue-credentials after {p['cooper_requests_served']} requests: "
        f"{p['cooper'] * 1024 / 1e6:.1f} MB (the Python handler: {p['python'] * 1024 / 1e6:.1f} MB).",
        "",
    ]
    if "round_trips" in r:
        lines += round_trips_markdown(r["round_trips"])
    if "cost" in r:
        lines += cost_markdown(r["cost"])
    return "\n".join(lines)


def round_trips_markdown(d):
    lines = [
        "## 5. Round trips per issuance (sequential depth)",
        "",
        "The longest chain of AWS calls an issuance waits on, each leaving only after the one before "
        "came back: what a request's latency is made of once every call costs a network round trip "
        f"(in a region, DynamoDB ~5 ms, STS more). Timed through a proxy in front of moto that holds "
        f"each call {TIMING_HOLD_S * 1000:.0f} ms, so that calls sent side by side overlap; the caller is "
        "the bench's API-token caller (cooper's goal: 4 for an API token, 3 for a session or an "
        "identity provider's JWT, both measured by tests/e2e/scale.rs, a fresh function's first issuance "
        "included: the token's record and the session hint the caller's groups). \"First\": a fresh process's first issuance, "
        "after its init; \"warm\": the deepest of the next three.",
        "",
        "| function | issuance | round trips | chain |",
        "|---|---|---|---|",
    ]
    for name, label in (("cooper", "cooper issue-credentials"), ("python", "Python + boto3 handler")):
        for nth in ("first", "warm"):
            x = d[name][nth]
            lines.append(f"| {label} | {nth} | {x['depth']} | {' → '.join(x['chain'])} |")
    return lines + [""]


COST_LINES = (
    ("api_gateway", "API Gateway HTTP API, 1 request"),
    ("lambda", "Lambda, 1 request + duration × MemorySize (arm64)"),
    ("dynamodb", "DynamoDB on-demand read and write units"),
    ("sts", "STS (no charge)"),
    ("kms", "KMS requests"),
    ("logs", "CloudWatch Logs ingestion (the function's own lines)"),
    ("xray", "X-Ray, 1 trace (Tracing: Active; an upper bound: sampling keeps 1 a second + 5%)"),
    ("audit_notice", "the audit record's notice: audit-notify (1 record a batch), its ledger writes, 1 SNS publish"),
)


def cost_markdown(c):
    p = c["prices"]
    columns = (("cooper", "cooper, role target"), ("cooper_federated", "cooper, federated-user target"),
               ("python", "Python + boto3 handler, role target"))
    lines = [
        "## 6. Cost per million issuances",
        "",
        "From what this run measured: each call of one warm issuance (moto's recorder), DynamoDB request "
        "units from the sizes of the items read and written (the items read back; a read unit per 4 KB, "
        "half when eventually consistent; a write unit per KB, again for each index the item is in), the "
        f"warm p50 duration billed at the template's MemorySize ({c['memory_mb']} MB, arm64), the bytes the "
        "function logged per issuance, and the audit-notify function run on the issuance's audit record. "
        "The durations are moto's, not AWS's (a real issuance waits longer on STS and less on DynamoDB); "
        "free tiers, cold starts and Lambda's own START/END/REPORT log lines are left out.",
        "",
        "| per issuance | " + " | ".join(label for _, label in columns) + " |",
        "|---|" + "---|" * len(columns),
    ]
    u = {name: c[name]["usage"] for name, _ in columns}
    for key, label, fmt in (
        ("calls", "AWS calls", "{:.0f}"),
        ("dynamodb_read_units", "DynamoDB read units", "{:g}"),
        ("dynamodb_write_units", "DynamoDB write units", "{:g}"),
        ("kms_requests", "KMS requests", "{:.0f}"),
        ("sts_requests", "STS requests", "{:.0f}"),
        ("duration_ms", "Lambda duration (warm p50; the federated target's over 20)", "{} ms"),
        ("log_bytes", "bytes logged", "{}"),
    ):
        lines.append(f"| {label} | " + " | ".join(fmt.format(u[name][key]) for name, _ in columns) + " |")
    lines.append("| calls | " + " | ".join(
        ", ".join(f"{k} ×{v}" if v > 1 else k for k, v in c[name]["calls_by_name"].items()) for name, _ in columns
    ) + " |")
    n = c["notice"]
    lines += [
        "",
        f"Announcing the record (audit-notify, measured): {', '.join(f'{k} ×{v}' if v > 1 else k for k, v in n['calls_by_name'].items())}; "
        f"{n['dynamodb_read_units']:g} read and {n['dynamodb_write_units']:g} write units; {n['duration_ms']} ms.",
        "",
        "| $ per million issuances | " + " | ".join(label for _, label in columns) + " |",
        "|---|" + "---|" * len(columns),
    ]
    for key, label in COST_LINES:
        lines.append(f"| {label} | " + " | ".join(f"{c[name]['per_million'][key]:.2f}" for name, _ in columns) + " |")
    lines.append("| **total** | " + " | ".join(f"**{c[name]['total_per_million']:.2f}**" for name, _ in columns) + " |")
    lines += [
        "",
        "Besides: each email subscriber of the notice topic adds "
        f"${c['cooper']['email_per_subscriber_per_million']:.2f} per million; the audit records (in the table and its "
        f"three indexes) add {c['cooper']['storage_gb_per_million']} GB per million issuances, "
        f"${c['cooper']['storage_per_million_per_month']:.2f} a month for as long as they are kept. DynamoDB's calls "
        "to the tables' KMS key are cached by DynamoDB (a few per table every few minutes), not made per request; "
        "the SSM read at init is free (standard parameters).",
        "",
        "Prices used (us-east-1, on-demand, Lambda on arm64; `PRICES` in bench/run.py names the pages): "
        f"Lambda ${p['lambda_gb_second_arm64']:.10f} per GB-second and ${p['lambda_request'] * 1e6:.2f} per million requests; "
        f"API Gateway HTTP API ${p['apigw_http_request'] * 1e6:.2f} per million requests; DynamoDB "
        f"${p['dynamodb_read_unit'] * 1e6:.3f} per million read units, ${p['dynamodb_write_unit'] * 1e6:.3f} per million "
        f"write units, ${p['dynamodb_gb_month']} per GB-month; KMS ${p['kms_request'] * 1e4:.2f} per 10,000 requests; SNS "
        f"${p['sns_publish'] * 1e6:.2f} per million publishes, ${p['sns_email'] * 1e5:.2f} per 100,000 emails; CloudWatch "
        f"Logs ${p['logs_ingested_gb']:.2f} per GB ingested; X-Ray ${p['xray_trace'] * 1e6:.2f} per million traces; STS free.",
        "",
    ]
    return lines


def plot(r, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 4, figsize=(18, 4.2))
    c = r["cold_start"]
    ax = axes[0]
    ax.bar(["cooper", "Python+boto3"], [c["cooper"]["median_ms"], c["python"]["median_ms"]], color=["#c0392b", "#7f8c8d"])
    ax.set_title(f"Cold start, median (ratio {c['ratio']:.2f})")
    ax.set_ylabel("ms")

    w = r["warm"]
    ax = axes[1]
    names = ["cooper", "floor", "python"]
    x = range(len(names))
    ax.bar([i - 0.2 for i in x], [w[n]["p50_ms"] for n in names], width=0.4, label="p50", color="#2980b9")
    ax.bar([i + 0.2 for i in x], [w[n]["p99_ms"] for n in names], width=0.4, label="p99", color="#8e44ad")
    ax.set_xticks(list(x), ["cooper", "SDK floor", "Python"])
    ax.set_title(f"Warm issuance (p50 ratio {w['p50_ratio']:.2f})")
    ax.set_ylabel("ms")
    ax.legend()

    ax = axes[2]
    users = [s["users"] for s in r["scale"]]
    ax.plot(users, [s["ratio_p50"] for s in r["scale"]], marker="o", label="p50 latency, cooper / floor")
    ax.plot(users, [s["total_calls"] for s in r["scale"]], marker="s", label="AWS calls / issuance")
    ax.set_xscale("log")
    ax.set_ylim(0, max(s["total_calls"] for s in r["scale"]) + 2)
    ax.set_xlabel("users in the directory")
    ax.set_title(f"Scale ({r['scale'][0]['targets']:,} targets)")
    ax.legend()

    ax = axes[3]
    functions = list(r["binary_bytes"])
    x = range(len(functions))
    ax.bar([i - 0.2 for i in x], [r["binary_bytes"][f] / 1e6 for f in functions], width=0.4,
           label="x86_64", color="#27ae60")
    if r["arm64_binary_bytes"]:
        ax.bar([i + 0.2 for i in x], [r["arm64_binary_bytes"].get(f, 0) / 1e6 for f in functions],
               width=0.4, label="arm64 (Lambda)", color="#16a085")
    ax.axhline(8, color="black", linestyle="--", linewidth=1, label="8 MB")
    ax.set_xticks(list(x), functions)
    ax.set_title("Stripped binary size")
    ax.set_ylabel("MB")
    ax.set_ylim(0, 10.5)
    ax.tick_params(axis="x", labelrotation=20)
    ax.legend(loc="upper right", ncol=3, fontsize=8)

    fig.tight_layout()
    fig.savefig(path, dpi=110)


if __name__ == "__main__":
    main()
