"""`make soak`: many users' mixed load on `cooper serve` against moto, with faults mid-run.

What it starts, all on loopback ports picked free at run time (so it runs beside `make run`):

    driver (this script) --HTTP--> cooper serve --AWS_ENDPOINT_URL--> fault proxy --> moto

1. moto (scripts/moto_server.py), a fault proxy in front of it (below), `cooper setup` through
   the proxy, then `cooper serve` through the proxy, with `COOPER_LOG_FORMAT=json`.
2. Through the admin API: --users users in the demo group, each with an API token.
3. For --seconds, worker threads send a weighted mix at --rate requests a second, --workers at a
   time at most: role and federated-user credential issuances, console links, denied
   issuances, whoami, targets, and an admin's reads (audit search, users, grants, targets).
   Slots missed while the server is slow are sent as soon as a worker is free (a surge after
   the fault window, as clients catching up make), so every run sends seconds x rate requests
   and may run over a little. Each worker keeps one HTTP/1.1 connection. Users are taken in
   turn, so each one's credential requests stay far below the server's per-user rate limit
   (set to its default, 60 a minute); a 429 would count as an expected refusal, and is reported.
4. For the fault window (by default the middle 20% of the run) the proxy makes moto slow and
   failing: every AWS call waits --fault-delay more, and --fault-rate of them are answered 500
   or 503 (AWS-shaped error bodies) without reaching moto. Outside the window it only forwards.
5. The server's resident memory (VmRSS) is sampled all along; after the run the audit table is
   read straight from moto and its records compared with the answers the driver saw.

Writes docs/bench/soak.md and soak.json (--out), prints the report, and exits 1 when a goal is
missed (naming it). Whatever happens, it stops what it started. Logs land in .run/soak/.
"""

import argparse
import http.client
import json
import os
import platform
import random
import re
import signal
import subprocess
import sys
import threading
import time
import urllib.parse
from collections import Counter
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import boto3

ROOT = Path(__file__).resolve().parent.parent
RUN = ROOT / ".run" / "soak"
# The server's default: each user's credential and console requests stay well below it.
RATE_LIMIT = "60"
CLIENT_TIMEOUT = 60.0
ISSUED_EVENTS = {"credentials": "credentials.issued", "console": "console.issued"}
# What the proxy's counts mean, for the report.
PROXY_COUNTS = {"forwarded": "forwarded at once", "delayed": "delayed then forwarded"}
HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "content-length", "proxy-connection"}


# ----------------------------------------------------------------------------- the request mix
class Kind:
    """One kind of request in the mix: its share, how to make it, and the answers expected."""

    def __init__(self, name, weight, expected, audited=None):
        self.name = name
        self.weight = weight
        self.expected = expected
        self.audited = audited


KINDS = [
    Kind("credentials (role)", 30, {200, 429}, "credentials"),
    Kind("credentials (federated)", 10, {200, 429}, "credentials"),
    Kind("console link", 15, {200, 429}, "console"),
    Kind("credentials (denied)", 5, {403, 429}),
    Kind("whoami", 20, {200}),
    Kind("targets", 5, {200}),
    Kind("admin read", 15, {200}),
]
ADMIN_READS = [
    "/v1/admin/audit?user={user}&order=desc&limit=20",
    "/v1/admin/users?limit=50",
    "/v1/admin/grants?account={account}",
    "/v1/admin/targets?account={account}",
]


def request_for(kind, user, demo, admin_token, turn):
    """The (method, path, body, bearer token) of a request of `kind` by `user` (name, token)."""
    name, token = user
    if kind.name == "credentials (role)":
        return "POST", "/v1/credentials", {"target": demo["target"]}, token
    if kind.name == "credentials (federated)":
        return "POST", "/v1/credentials", {"target": demo["federated_target"]}, token
    if kind.name == "console link":
        return "POST", "/v1/console", {"target": demo["target"]}, token
    if kind.name == "credentials (denied)":
        return "POST", "/v1/credentials", {"target": demo["denied_target"]}, token
    if kind.name == "whoami":
        return "GET", "/v1/whoami", None, token
    if kind.name == "targets":
        return "GET", "/v1/targets", None, token
    path = ADMIN_READS[turn % len(ADMIN_READS)].format(
        user=urllib.parse.quote(name), account=demo["account_id"]
    )
    return "GET", path, None, admin_token


# ----------------------------------------------------------------------------- the fault proxy
class FaultProxy(ThreadingHTTPServer):
    """A forwarding proxy in front of moto that, while `faulty` is set, delays every call and
    answers a share of them with a 500 or 503 of its own (never forwarded)."""

    daemon_threads = True

    def __init__(self, upstream_port, delay, fail_rate, seed):
        super().__init__(("127.0.0.1", 0), ProxyHandler)
        self.upstream_port = upstream_port
        self.delay = delay
        self.fail_rate = fail_rate
        self.faulty = False
        self.random = random.Random(seed)
        self.lock = threading.Lock()
        self.counts = Counter()

    @property
    def endpoint(self):
        """The URL to give cooper as AWS_ENDPOINT_URL."""
        return f"http://127.0.0.1:{self.server_address[1]}"

    def decide(self):
        """What to do with the next call: (status to fail with or None, seconds to wait first)."""
        with self.lock:
            if not self.faulty:
                self.counts["forwarded"] += 1
                return None, 0.0
            if self.random.random() < self.fail_rate:
                status = self.random.choice((500, 503))
                self.counts[f"failed {status}"] += 1
                return status, 0.0
            self.counts["delayed"] += 1
            return None, self.delay

    def handle_error(self, request, client_address):
        """A client that drops its connection mid-call is not the proxy's failure."""


class ProxyHandler(BaseHTTPRequestHandler):
    """Forwards each call to moto on a fresh connection, or fails it as the proxy decides."""

    protocol_version = "HTTP/1.1"

    def log_message(self, format, *args):
        """No access log: the counts tell what the proxy did."""

    def do_GET(self):
        """Every method is forwarded the same way."""
        self.forward()

    do_POST = do_PUT = do_DELETE = do_HEAD = do_GET

    def read_body(self):
        """The request body, by Content-Length or chunked."""
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            chunks = []
            while size := int(self.rfile.readline().split(b";")[0], 16):
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
            while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                pass
            return b"".join(chunks)
        return self.rfile.read(int(self.headers.get("Content-Length") or 0))

    def forward(self):
        """Fail the call, or wait and hand it to moto, and answer with what moto answered."""
        body = self.read_body()
        status, wait = self.server.decide()
        if status is not None:
            return self.answer(status, *aws_error(status, self.headers))
        time.sleep(wait)
        upstream = http.client.HTTPConnection("127.0.0.1", self.server.upstream_port, timeout=120)
        try:
            headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP_BY_HOP}
            headers["Connection"] = "close"
            upstream.request(self.command, self.path, body=body, headers=headers)
            response = upstream.getresponse()
            payload = response.read()
            kept = [(k, v) for k, v in response.getheaders() if k.lower() not in HOP_BY_HOP]
            self.answer(response.status, kept, payload)
        finally:
            upstream.close()

    def answer(self, status, headers, payload):
        """Send one complete response, keeping the client's connection open."""
        self.send_response(status)
        for k, v in headers:
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(payload)


def aws_error(status, headers):
    """An error answer shaped as the called service's protocol shapes one: JSON for the
    X-Amz-Target services (DynamoDB, KMS, SSM), the query protocol's XML for the rest (STS, SNS)."""
    code = "InternalFailure" if status == 500 else "ServiceUnavailable"
    message = "injected by the soak's fault proxy"
    if headers.get("X-Amz-Target"):
        body = json.dumps({"__type": code, "message": message}).encode()
        kind = "application/x-amz-json-1.0"
    else:
        body = (
            f"<ErrorResponse><Error><Type>Receiver</Type><Code>{code}</Code>"
            f"<Message>{message}</Message></Error><RequestId>soak-fault</RequestId></ErrorResponse>"
        ).encode()
        kind = "text/xml"
    return [("Content-Type", kind), ("x-amzn-RequestId", "soak-fault")], body


# ----------------------------------------------------------------------------- processes
class Moto:
    """moto's standalone server on a free loopback port; it stops when this process exits."""

    def __init__(self, python):
        self.log = open(RUN / "moto.log", "w")
        self.process = subprocess.Popen(
            [python, str(ROOT / "scripts" / "moto_server.py"), "--exit-with-parent"],
            stdout=subprocess.PIPE, stderr=self.log, stdin=subprocess.PIPE, text=True,
        )
        port = self.process.stdout.readline().strip()
        if not port:
            raise RuntimeError(f"moto did not start; see {RUN / 'moto.log'}")
        self.port = int(port)

    def client(self, service):
        """A boto3 client straight to moto (never through the proxy)."""
        return boto3.client(
            service, endpoint_url=f"http://127.0.0.1:{self.port}", region_name="us-east-1",
            aws_access_key_id="testing", aws_secret_access_key="testing",
        )

    def stop(self):
        """Stop moto and wait for it."""
        stop_process(self.process, signal.SIGTERM)
        self.log.close()


class Server:
    """`cooper serve` on a free loopback port, its JSON logs in .run/soak/serve.log."""

    def __init__(self, cooper, env):
        self.log = open(RUN / "serve.log", "w")
        self.metrics = open(RUN / "serve-metrics.log", "w")
        self.process = subprocess.Popen(
            [str(cooper), "serve", "--listen", "127.0.0.1:0"],
            env=dict(env, COOPER_LOG_FORMAT="json", COOPER_LOG="info"),
            stdout=self.metrics, stderr=self.log, stdin=subprocess.DEVNULL,
        )
        self.base = self.wait_for_address()

    def wait_for_address(self):
        """The address the server prints once it is listening."""
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            found = re.search(r"cooper serving on (http://\S+)", (RUN / "serve.log").read_text())
            if found:
                return found.group(1)
            if self.process.poll() is not None:
                break
            time.sleep(0.1)
        raise RuntimeError(f"cooper serve did not start; see {RUN / 'serve.log'}")

    def rss_kib(self):
        """The server's resident memory now (VmRSS), in KiB."""
        for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
        raise RuntimeError("no VmRSS for the server")

    def cpu_seconds(self):
        """CPU time the server has used so far (user and system)."""
        fields = Path(f"/proc/{self.process.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def stop(self):
        """Ctrl-C (what the server waits for to stop), then wait."""
        stop_process(self.process, signal.SIGINT)
        self.log.close()
        self.metrics.close()


def stop_process(process, sig):
    """Send `sig` to a child, and kill it if it has not exited within ten seconds."""
    if process.poll() is None:
        process.send_signal(sig)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


# ----------------------------------------------------------------------------- the HTTP client
class Client:
    """One keep-alive connection to the server, as one worker uses it."""

    def __init__(self, base):
        self.host, port = urllib.parse.urlsplit(base).netloc.split(":")
        self.port = int(port)
        self.connection = None

    def send(self, method, path, body, token):
        """Send one request; returns (status, error code, request id). Status 0: no answer."""
        headers = {"Authorization": f"Bearer {token}"}
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        try:
            if self.connection is None:
                self.connection = http.client.HTTPConnection(self.host, self.port, timeout=CLIENT_TIMEOUT)
            self.connection.request(method, path, body=data, headers=headers)
            response = self.connection.getresponse()
            payload = response.read()
        except (OSError, http.client.HTTPException) as e:
            self.close()
            return 0, f"no answer: {type(e).__name__}", None
        if response.will_close:
            self.close()
        request_id = response.getheader("x-request-id")
        code = None
        if response.status >= 400:
            try:
                code = json.loads(payload)["error"]["code"]
            except (ValueError, KeyError, TypeError):
                code = "(no JSON code)"
        return response.status, code, request_id

    def close(self):
        """Drop the connection; the next request opens a new one."""
        if self.connection is not None:
            self.connection.close()
            self.connection = None


def admin_call(base, token, method, path, body=None):
    """One admin API call during provisioning; raises unless it succeeds. Returns its JSON."""
    host, port = urllib.parse.urlsplit(base).netloc.split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=CLIENT_TIMEOUT)
    try:
        headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
        connection.request(method, path, body=json.dumps(body).encode() if body else None, headers=headers)
        response = connection.getresponse()
        payload = response.read()
    finally:
        connection.close()
    if response.status >= 300:
        raise RuntimeError(f"{method} {path}: {response.status} {payload[:300]!r}")
    return json.loads(payload)


def provision(base, admin_token, group, count):
    """`count` users in `group`, each with a one-day API token: [(name, token)]."""
    users = []
    for i in range(1, count + 1):
        name = f"soak-{i:03d}"
        admin_call(base, admin_token, "POST", "/v1/admin/users", {"name": name, "enabled": True})
        admin_call(base, admin_token, "PUT", f"/v1/admin/groups/{group}/members/{name}")
        issued = admin_call(
            base, admin_token, "POST", f"/v1/admin/users/{name}/tokens", {"days": 1, "label": "soak"}
        )
        users.append((name, issued["token"]))
    return users


# ----------------------------------------------------------------------------- the load
class Load:
    """The bounded load: `workers` threads taking evenly spaced slots (`rate` a second) until the
    end, each picking a kind by weight and the next user in turn."""

    def __init__(self, base, users, demo, admin_token, rate, workers, seed):
        self.base = base
        self.users = users
        self.demo = demo
        self.admin_token = admin_token
        self.interval = 1.0 / rate
        self.workers = workers
        self.seed = seed
        self.lock = threading.Lock()
        self.turn = 0
        self.results = []
        self.threads = []
        self.start = self.end = self.next_slot = None

    def run_for(self, start, seconds):
        """Start the workers; they stop taking slots `seconds` after `start` (monotonic)."""
        self.start, self.end, self.next_slot = start, start + seconds, start
        for i in range(self.workers):
            thread = threading.Thread(target=self.work, args=(random.Random(self.seed + i),), daemon=True)
            thread.start()
            self.threads.append(thread)

    def join(self):
        """Wait for every worker to finish its last request."""
        for thread in self.threads:
            thread.join()

    def take_slot(self):
        """The next slot's time and turn, or None once the run is over."""
        with self.lock:
            slot, turn = self.next_slot, self.turn
            if slot >= self.end:
                return None
            self.next_slot += self.interval
            self.turn += 1
            return slot, turn

    def work(self, rng):
        """One worker: take a slot, wait for it, send one request, record it; until the end."""
        client = Client(self.base)
        weights = [k.weight for k in KINDS]
        try:
            while (taken := self.take_slot()) is not None:
                slot, turn = taken
                time.sleep(max(0.0, slot - time.monotonic()))
                kind = rng.choices(KINDS, weights)[0]
                user = self.users[turn % len(self.users)]
                method, path, body, token = request_for(kind, user, self.demo, self.admin_token, turn)
                began = time.monotonic()
                status, code, request_id = client.send(method, path, body, token)
                ended = time.monotonic()
                with self.lock:
                    self.results.append(
                        {"kind": kind.name, "user": user[0], "began": began - self.start,
                         "ended": ended - self.start, "status": status, "code": code,
                         "request_id": request_id}
                    )
        finally:
            client.close()


def soak(args, cooper, python):
    """Start moto, the proxy and the server, run the load, and stop all three again whatever
    happens. Returns the raw measurements."""
    moto = Moto(python)
    proxy = None
    server = None
    try:
        proxy = FaultProxy(moto.port, args.fault_delay, args.fault_rate, args.seed)
        threading.Thread(target=proxy.serve_forever, daemon=True).start()
        env = {
            k: v for k, v in os.environ.items()
            if not k.startswith(("AWS_", "COOPER_")) or k in ("AWS_CONFIG_FILE", "AWS_SHARED_CREDENTIALS_FILE")
        }
        env.update(
            AWS_ENDPOINT_URL=proxy.endpoint, AWS_REGION="us-east-1", AWS_DEFAULT_REGION="us-east-1",
            AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing",
            AWS_EC2_METADATA_DISABLED="true", COOPER_CREDENTIAL_RATE_LIMIT=RATE_LIMIT,
        )
        setup = json.loads(subprocess.run(
            [str(cooper), "setup", "--json"], env=dict(env, COOPER_LOG="warn"),
            check=True, capture_output=True, text=True,
        ).stdout)
        server = Server(cooper, env)
        users = provision(server.base, setup["admin_token"], setup["demo"]["group"], args.users)
        print(f"soak: {server.base} via the fault proxy {proxy.endpoint} to moto :{moto.port}; "
              f"{len(users)} users; {args.seconds} s at most {args.rate} requests/s", flush=True)
        return drive(args, server, proxy, moto, setup, users)
    finally:
        if server is not None:
            server.stop()
        if proxy is not None:
            proxy.shutdown()
            proxy.server_close()
        moto.stop()


def drive(args, server, proxy, moto, setup, users):
    """The load itself, the fault window's switching and the memory samples; then the audit
    records of the run, read from moto."""
    warmup = min(30.0, args.seconds * 0.1)
    fault_from, fault_to = args.seconds * args.fault_from, args.seconds * args.fault_to
    load = Load(server.base, users, setup["demo"], setup["admin_token"], args.rate, args.workers, args.seed)
    wall_start = time.time()
    start = time.monotonic()
    cpu_start = server.cpu_seconds()
    load.run_for(start, args.seconds)
    samples, window = [], {}
    next_sample = start
    while (now := time.monotonic()) < start + args.seconds:
        t = now - start
        if "from" not in window and t >= fault_from:
            proxy.faulty, window["from"] = True, t
        if "from" in window and "to" not in window and t >= fault_to:
            proxy.faulty, window["to"] = False, t
        if now >= next_sample:
            samples.append((round(t, 1), server.rss_kib()))
            next_sample += args.sample_every
        time.sleep(0.2)
    proxy.faulty = False
    window.setdefault("to", time.monotonic() - start)
    load.join()
    ended = time.monotonic() - start
    samples.append((round(ended, 1), server.rss_kib()))
    cpu = server.cpu_seconds() - cpu_start
    wall_end = time.time()
    return {
        "wall_start": wall_start, "wall_end": wall_end, "elapsed": ended, "warmup": warmup,
        "window": window, "samples": samples, "server_cpu_seconds": cpu,
        "results": load.results, "proxy": dict(proxy.counts),
        "audit": audit_records(moto, setup["audit_table"], {u for u, _ in users}, wall_start, wall_end),
    }


def audit_records(moto, table, users, wall_start, wall_end):
    """The audit records of `users` written between the run's start and a minute after its end,
    read straight from moto's audit table (a Scan: this is a count after the fact, not cooper)."""
    low, high = int((wall_start - 5) * 1000), int((wall_end + 60) * 1000)
    records = []
    for page in moto.client("dynamodb").get_paginator("scan").paginate(TableName=table):
        for item in page["Items"]:
            at_ms = int(item["at_ms"]["N"])
            if item["actor"]["S"] in users and low <= at_ms <= high:
                records.append({"id": item["id"]["S"], "event": item["event"]["S"]})
    return records


# ----------------------------------------------------------------------------- the report
def pct(values, p):
    """The p-th percentile (nearest rank) of `values`."""
    ordered = sorted(values)
    return ordered[max(0, min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1))))]


def summarize(raw, args, cooper):
    """The figures and the goals, from the raw measurements."""
    results, window = raw["results"], raw["window"]

    def in_window(r):
        return r["ended"] >= window["from"] and r["began"] <= window["to"]

    expected = {k.name: k.expected for k in KINDS}
    unexpected = [r for r in results if r["status"] not in expected[r["kind"]]]
    outside_5xx = [r for r in results if not in_window(r) and (r["status"] >= 500 or r["status"] == 0)]
    inside_5xx = [r for r in results if in_window(r) and (r["status"] >= 500 or r["status"] == 0)]
    inside_bad = [r for r in inside_5xx if r["status"] != 503 or r["code"] in (None, "(no JSON code)")]

    audited = {k.name: k.audited for k in KINDS}
    issued = {r["request_id"]: r for r in results if audited[r["kind"]] and r["status"] == 200}
    records = raw["audit"]
    issued_records = {a["id"]: a for a in records if a["event"] in ISSUED_EVENTS.values()}
    by_answer = {r["request_id"]: r for r in results if r["request_id"]}
    wrong_event = [
        i for i, r in issued.items()
        if i in issued_records and issued_records[i]["event"] != ISSUED_EVENTS[audited[r["kind"]]]
    ]
    missing = sorted(set(issued) - set(issued_records))
    extra = sorted(set(issued_records) - set(issued))

    kinds = {}
    for kind in KINDS:
        mine = [r for r in results if r["kind"] == kind.name]
        answered = [r["ended"] - r["began"] for r in mine if r["status"]]
        calm = [r["ended"] - r["began"] for r in mine if r["status"] and not in_window(r)]
        kinds[kind.name] = {
            "requests": len(mine),
            "statuses": dict(sorted(Counter(str(r["status"]) for r in mine).items())),
            "p50_ms": round(pct(answered, 50) * 1000, 1) if answered else None,
            "p99_ms": round(pct(answered, 99) * 1000, 1) if answered else None,
            "p50_ms_outside_window": round(pct(calm, 50) * 1000, 1) if calm else None,
            "p99_ms_outside_window": round(pct(calm, 99) * 1000, 1) if calm else None,
        }

    samples = raw["samples"]
    rss_start = next((kib for t, kib in samples if t >= raw["warmup"]), samples[0][1])
    rss_end = samples[-1][1]
    growth = (rss_end - rss_start) / rss_start

    errors_by_status, errors_by_code = Counter(), Counter()
    for r in results:
        if r["status"] != 200:
            phase = "in window" if in_window(r) else "outside"
            ok = "expected" if r["status"] in expected[r["kind"]] else "error"
            errors_by_status[(str(r["status"]), phase, ok)] += 1
            errors_by_code[(r["code"] or "(none)", str(r["status"]), phase, ok)] += 1

    goals = [
        {"goal": "no 5xx (nor unanswered request) outside the fault window", "target": "0",
         "measured": str(len(outside_5xx)), "met": not outside_5xx},
        {"goal": "inside the window, every 5xx is a 503 carrying a JSON error code",
         "target": "0 others",
         "measured": f"{len(inside_5xx) - len(inside_bad)} such 503s, {len(inside_bad)} others",
         "met": not inside_bad},
        {"goal": "audit records (credentials.issued, console.issued) = successful issuances, id for id",
         "target": "equal", "measured": f"{len(issued_records)} records, {len(issued)} issuances "
         f"({len(missing)} without a record, {len(extra)} records without an issuance, "
         f"{len(wrong_event)} of the wrong event)",
         "met": not missing and not extra and not wrong_event},
        {"goal": "server memory (VmRSS) flat: end within 10% of start (after warm-up)",
         "target": "≤ +10%",
         "measured": f"{rss_start / 1024:.1f} MiB → {rss_end / 1024:.1f} MiB ({growth:+.1%})",
         "met": abs(growth) <= 0.10},
    ]
    return {
        "run": {
            "started": datetime.fromtimestamp(raw["wall_start"], timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC"),
            "seconds": args.seconds, "elapsed": round(raw["elapsed"], 1), "rate": args.rate,
            "workers": args.workers, "users": args.users, "seed": args.seed,
            "warmup_seconds": raw["warmup"],
            "fault_window": {k: round(v, 1) for k, v in window.items()},
            "fault_delay_seconds": args.fault_delay, "fault_rate": args.fault_rate,
            "rate_limit_per_user_minute": int(RATE_LIMIT),
        },
        "machine": {
            "cpu": cpu_model(), "cores": os.cpu_count(), "python": platform.python_version(),
            "load_average_at_end": [round(x, 2) for x in os.getloadavg()],
        },
        "build": {"binary": str(cooper), "profile": "release" if "release" in cooper.parts else "debug",
                  "commit": git_commit()},
        "goals": goals,
        "requests": len(results),
        "throughput_per_second": round(len(results) / raw["elapsed"], 2),
        "kinds": kinds,
        "unexpected_answers": len(unexpected),
        "errors_by_status": [
            {"status": s, "phase": p, "kind": k, "count": n} for (s, p, k), n in sorted(errors_by_status.items())
        ],
        "errors_by_code": [
            {"code": c, "status": s, "phase": p, "kind": k, "count": n}
            for (c, s, p, k), n in sorted(errors_by_code.items())
        ],
        "five_xx_outside_window": [brief(r) for r in outside_5xx],
        "five_xx_inside_window_not_503_with_code": [brief(r) for r in inside_bad],
        "audit": {
            "events": dict(sorted(Counter(a["event"] for a in records).items())),
            "issued_records": len(issued_records), "successful_issuances": len(issued),
            "issuances_without_record": [brief(issued[i]) for i in missing],
            "records_without_issuance": [
                {"request_id": i, "event": issued_records[i]["event"],
                 "answer": brief(by_answer[i]) if i in by_answer else None}
                for i in extra
            ],
            "denied_records": sum(a["event"] == "credentials.denied" for a in records),
            "denied_answers_403": sum(r["kind"] == "credentials (denied)" and r["status"] == 403 for r in results),
        },
        "memory": {
            "rss_start_kib": rss_start, "rss_end_kib": rss_end, "rss_peak_kib": max(k for _, k in samples),
            "growth": round(growth, 4), "samples": samples,
        },
        "server_cpu_seconds": round(raw["server_cpu_seconds"], 1),
        "server_log_levels": log_levels(RUN / "serve.log"),
        "proxy": raw["proxy"],
    }


def log_levels(path):
    """How many of the server's JSON log lines there are at each level."""
    levels = Counter()
    for line in path.read_text().splitlines():
        try:
            levels[json.loads(line)["level"]] += 1
        except (ValueError, KeyError, TypeError):
            levels["(not JSON)"] += 1
    return dict(sorted(levels.items()))


def brief(r):
    """A request as the report lists it."""
    return {k: r[k] for k in ("kind", "user", "status", "code", "request_id")} | {
        "at_s": round(r["began"], 2), "latency_ms": round((r["ended"] - r["began"]) * 1000, 1)
    }


def git_commit():
    """The checkout's commit, with `-dirty` when tracked files differ from it."""
    head = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short=12", "HEAD"],
                          capture_output=True, text=True).stdout.strip() or "unknown"
    dirty = subprocess.run(
        ["git", "-C", str(ROOT), "diff", "--quiet", "HEAD", "--", "crates", "Cargo.toml", "Cargo.lock"]
    ).returncode
    return head + ("-dirty" if dirty else "")


def cpu_model():
    """The machine's CPU, as /proc/cpuinfo names it."""
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def markdown(s):
    """The report as Markdown."""
    run, m, b, a, mem = s["run"], s["machine"], s["build"], s["audit"], s["memory"]
    w = run["fault_window"]
    lines = [
        "# cooper soak",
        "",
        f"Measured by `scripts/soak.py` (`make soak`) on {run['started']}: {m['cpu']}, {m['cores']} cores "
        f"(load average {', '.join(map(str, m['load_average_at_end']))} at the end); Python {m['python']}; "
        f"cooper's **{b['profile']}** build (`{b['binary']}`) of commit `{b['commit']}`. Every AWS call "
        "goes through a fault proxy to moto on loopback, so latencies are mostly moto's.",
        "",
        f"Reproduce: `make soak` (5 minutes), or `make soak SOAK_SECONDS=60`; the driver is "
        f"`scripts/soak.py` (`--help`: users, rate, workers, fault window and faults, seed).",
        "",
        f"The run: {run['elapsed']} s, {run['users']} users with API tokens (one admin for the admin "
        f"reads), {run['rate']} requests/s from {run['workers']} workers (slots missed while cooper is slow "
        f"are sent as soon as a worker is free: a surge after the window), seed {run['seed']}. "
        f"Fault window {w['from']}–{w['to']} s: every AWS call delayed {run['fault_delay_seconds']} s, "
        f"{run['fault_rate']:.0%} of them answered 500 or 503 by the proxy without reaching moto (so a "
        "failed write never lands; the SDK's standard retries, three attempts, absorb most of them). "
        "Per-user rate limit "
        f"{run['rate_limit_per_user_minute']}/min (the default); users are taken in turn, so a 429 is not "
        "expected, and would count as an expected refusal, not an error. Memory: warm-up "
        f"{run['warmup_seconds']:.0f} s.",
        "",
        "## Goals",
        "",
        "| goal | target | measured | |",
        "|---|---|---|---|",
    ]
    for g in s["goals"]:
        lines.append(f"| {g['goal']} | {g['target']} | {g['measured']} | {'met' if g['met'] else '**not met**'} |")
    lines += [
        "",
        "## Requests",
        "",
        f"{s['requests']} requests ({s['throughput_per_second']}/s); {s['unexpected_answers']} answers "
        "other than the kind's expected ones (200; 403 `not_granted` for the denied kind; 429).",
        "",
        "| kind | requests | answers | p50 ms | p99 ms | p50 ms outside window | p99 ms outside window |",
        "|---|---:|---|---:|---:|---:|---:|",
    ]
    for name, k in s["kinds"].items():
        statuses = ", ".join(f"{st}: {n}" for st, n in k["statuses"].items())
        lines.append(
            f"| {name} | {k['requests']} | {statuses} | {k['p50_ms']} | {k['p99_ms']} | "
            f"{k['p50_ms_outside_window']} | {k['p99_ms_outside_window']} |"
        )
    lines += ["", "Answers other than 200, by status (0: no answer), in the fault window or outside it, and "
              "whether the kind expects them:", "", "| status | phase | | count |", "|---|---|---|---:|"]
    lines += [f"| {e['status']} | {e['phase']} | {e['kind']} | {e['count']} |" for e in s["errors_by_status"]]
    lines += ["", "The same by cooper's JSON error `code`:", "",
              "| code | status | phase | | count |", "|---|---|---|---|---:|"]
    lines += [
        f"| `{e['code']}` | {e['status']} | {e['phase']} | {e['kind']} | {e['count']} |" for e in s["errors_by_code"]
    ]
    lines += [
        "",
        "## Audit",
        "",
        f"Read from moto's audit table after the run (a Scan by the driver; the run's users, its time range): "
        + ", ".join(f"`{e}` {n}" for e, n in a["events"].items()) + ".",
        f"Successful issuances (200 to credentials and console requests): {a['successful_issuances']}; "
        f"`credentials.issued` and `console.issued` records: {a['issued_records']}; "
        f"issuances without a record: {len(a['issuances_without_record'])}; records without a 200: "
        f"{len(a['records_without_issuance'])}. Denied requests answered 403: {a['denied_answers_403']}; "
        f"`credentials.denied` records: {a['denied_records']}.",
    ]
    for r in a["records_without_issuance"]:
        lines.append(f"- record `{r['request_id']}` ({r['event']}), answer: {json.dumps(r['answer'])}")
    for r in a["issuances_without_record"]:
        lines.append(f"- issuance without a record: {json.dumps(r)}")
    lines += [
        "",
        "## Memory and CPU",
        "",
        f"`cooper serve`'s VmRSS: {mem['rss_start_kib'] / 1024:.1f} MiB after warm-up, "
        f"{mem['rss_end_kib'] / 1024:.1f} MiB at the end ({mem['growth']:+.1%}), peak "
        f"{mem['rss_peak_kib'] / 1024:.1f} MiB; {len(mem['samples'])} samples (all in soak.json), "
        "about every 30 s (seconds: MiB): "
        + ", ".join(f"{t:g}: {k / 1024:.1f}" for t, k in every_30s(mem["samples"])) + ".",
        f"Server CPU time over the run: {s['server_cpu_seconds']} s. Its log lines by level: "
        + ", ".join(f"{k} {v}" for k, v in s["server_log_levels"].items()) + f" (in `.run/soak/serve.log`).",
        "",
        "The AWS calls through the proxy: " + ", ".join(
            f"{PROXY_COUNTS.get(k, k)} {v}" for k, v in sorted(s["proxy"].items())
        ) + ".",
    ]
    for title, key in (("5xx outside the fault window", "five_xx_outside_window"),
                       ("5xx in the window other than a 503 with a code", "five_xx_inside_window_not_503_with_code")):
        if s[key]:
            lines += ["", f"## {title}", ""] + [f"- {json.dumps(r)}" for r in s[key]]
    return "\n".join(lines) + "\n"


def every_30s(samples):
    """The first sample, one about every 30 s after it, and the last."""
    kept, due = [], 0.0
    for t, kib in samples[:-1]:
        if t >= due:
            kept.append((t, kib))
            due = t + 29.5
    return kept + samples[-1:]


# ----------------------------------------------------------------------------- main
def main():
    """Parse the flags, run the soak, write and print the report; exit 1 if a goal is missed."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    flag = parser.add_argument
    flag("--seconds", type=int, default=300, help="how long the load runs (300)")
    flag("--users", type=int, default=40, help="users, each with an API token (40)")
    flag("--rate", type=float, default=12.0, help="requests a second (12)")
    flag("--workers", type=int, default=12, help="requests in flight at most (12)")
    flag("--fault-from", type=float, default=0.4, help="fault window start, share of the run (0.4)")
    flag("--fault-to", type=float, default=0.6, help="fault window end, share of the run (0.6)")
    flag("--fault-delay", type=float, default=0.3, help="seconds added to each AWS call in the window (0.3)")
    flag("--fault-rate", type=float, default=0.2, help="share of AWS calls failed in the window (0.2)")
    flag("--sample-every", type=float, default=5.0, help="seconds between memory samples (5)")
    flag("--seed", type=int, default=20261205, help="seed of the mix and the faults")
    flag("--cooper", default=os.environ.get("COOPER_BIN", str(ROOT / "target" / "debug" / "cooper")),
         help="the cooper binary ($COOPER_BIN, else target/debug/cooper)")
    flag("--out", default=str(ROOT / "docs" / "bench"), help="where soak.md and soak.json go")
    flag("--render", action="store_true", help="only rewrite soak.md from soak.json")
    args = parser.parse_args()
    out = Path(args.out)
    if args.render:
        (out / "soak.md").write_text(markdown(json.loads((out / "soak.json").read_text())))
        return
    if not 0 <= args.fault_from < args.fault_to <= 1:
        parser.error("the fault window must satisfy 0 <= --fault-from < --fault-to <= 1")
    cooper = Path(args.cooper).resolve()
    if not cooper.exists():
        sys.exit(f"{cooper} is missing: run `make soak`, which builds it")

    # A SIGTERM (or Ctrl-C) unwinds through the `finally`s that stop moto, the proxy and the server.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    RUN.mkdir(parents=True, exist_ok=True)
    raw = soak(args, cooper, sys.executable)
    (RUN / "requests.json").write_text(json.dumps(raw["results"]) + "\n")
    summary = summarize(raw, args, cooper)
    out.mkdir(parents=True, exist_ok=True)
    (out / "soak.json").write_text(json.dumps(summary, indent=2, ensure_ascii=False) + "\n")
    report = markdown(summary)
    (out / "soak.md").write_text(report)
    print(report)
    missed = [g["goal"] for g in summary["goals"] if not g["met"]]
    for goal in missed:
        print(f"soak: goal missed: {goal}", file=sys.stderr)
    sys.exit(1 if missed else 0)


if __name__ == "__main__":
    main()
