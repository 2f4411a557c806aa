"""moto's standalone server on 127.0.0.1: the local stand-in for every AWS service cooper uses.

Prints the port it listens on as its first line of output, then serves until it is stopped. With
--exit-with-parent it also stops when its standard input closes, which happens when the process
that started it exits, however it exits: a test run never leaves a server behind.

DynamoDB requests are served one at a time. moto applies a TransactWriteItems by copying the
tables it touches and putting the copies back if a condition fails; two requests on different
threads can then undo each other's writes (or bring back a cancelled one), which DynamoDB never
does: its transactions are atomic and isolated. Serving DynamoDB requests in turn restores that
guarantee; every other service is still served concurrently.
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


class DynamoDbInTurn:
    """WSGI middleware: DynamoDB requests (their X-Amz-Target names the API) hold one lock."""

    def __init__(self, app):
        self.app = app
        self.lock = threading.Lock()

    def __call__(self, environ, start_response):
        if not environ.get("HTTP_X_AMZ_TARGET", "").startswith("DynamoDB_"):
            return self.app(environ, start_response)
        with self.lock:
            # The whole response is produced inside the lock.
            return list(self.app(environ, start_response))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, default=0, help="port to listen on (0: any free port)")
    parser.add_argument("--exit-with-parent", action="store_true", help="stop when stdin closes")
    args = parser.parse_args()

    app = DynamoDbInTurn(DomainDispatcherApplication(create_backend_app))
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
