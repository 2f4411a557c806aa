"""moto's standalone server on 127.0.0.1: the local stand-in for every AWS service cooper uses.

Prints the port it listens on as its first line of output, then serves until it is stopped. With
--exit-with-parent it also stops when its standard input closes, which happens when the process
that started it exits, however it exits: a test run never leaves a server behind.

DynamoDB requests are served one at a time. moto applies a TransactWriteItems by copying the
tables it touches and putting the copies back if a condition fails; two requests on different
threads can then undo each other's writes (or bring back a cancelled one), which DynamoDB never
does: its transactions are atomic and isolated. Serving DynamoDB requests in turn restores that
guarantee; every other service is still served concurrently.

With --concurrent-dynamodb, DynamoDB reads are served concurrently too, with each other and with
writes, and only writes take turns. That is DynamoDB's own model: every write (an UpdateItem's
ADD, a transaction) is atomic, and reads interleave with them. moto's writes are not atomic on
their own: it applies an UpdateItem as an unlocked read-modify-write in Python, and 20 concurrent
ADDs to one item were seen to leave 17. A test of what concurrent requests do to cooper's
read-then-write decisions asks for this mode.
"""

import argparse
import signal
import sys
import threading

from moto.moto_server.werkzeug_app import (
    DomainDispatcherApplication,
    MotoRequestHandler,
    create_backend_app,
)
from werkzeug.serving import make_server


READS = {"GetItem", "BatchGetItem", "Query", "Scan", "DescribeTable", "ListTables"}


class DynamoDbInTurn:
    """WSGI middleware: DynamoDB requests (their X-Amz-Target names the API) hold one lock; with
    `writes_only`, only the ones that write do."""

    def __init__(self, app, writes_only=False):
        self.app = app
        self.lock = threading.Lock()
        self.writes_only = writes_only

    def __call__(self, environ, start_response):
        target = environ.get("HTTP_X_AMZ_TARGET", "")
        if not target.startswith("DynamoDB_"):
            return self.app(environ, start_response)
        if self.writes_only and target.rsplit(".", 1)[-1] in READS:
            return self.app(environ, start_response)
        with self.lock:
            # The whole response is produced inside the lock.
            return list(self.app(environ, start_response))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, default=0, help="port to listen on (0: any free port)")
    parser.add_argument("--exit-with-parent", action="store_true", help="stop when stdin closes")
    parser.add_argument(
        "--concurrent-dynamodb",
        action="store_true",
        help="serve DynamoDB reads concurrently with everything; only writes take turns",
    )
    args = parser.parse_args()

    app = DynamoDbInTurn(
        DomainDispatcherApplication(create_backend_app), writes_only=args.concurrent_dynamodb
    )
    server = make_server(
        "127.0.0.1", args.port, app, threaded=True, request_handler=MotoRequestHandler
    )
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    print(server.server_address[1], flush=True)

    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    if args.exit_with_parent:
        threading.Thread(target=lambda: (sys.stdin.read(), stop.set()), daemon=True).start()
    stop.wait()
    server.shutdown()
    thread.join()


if __name__ == "__main__":
    main()
