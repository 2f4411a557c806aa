"""moto's standalone server on 127.0.0.1: the local stand-in for every AWS service cooper uses.

Prints the port it listens on as its first line of output, then serves until it is stopped. With
--exit-with-parent it also stops when its standard input closes, which happens when the process
that started it exits, however it exits: a test run never leaves a server behind.
"""

import argparse
import signal
import sys
import threading

from moto.server import ThreadedMotoServer


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, default=0, help="port to listen on (0: any free port)")
    parser.add_argument("--exit-with-parent", action="store_true", help="stop when stdin closes")
    args = parser.parse_args()

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=args.port, verbose=False)
    server.start()
    print(server.get_host_and_port()[1], flush=True)

    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    if args.exit_with_parent:
        threading.Thread(target=lambda: (sys.stdin.read(), stop.set()), daemon=True).start()
    stop.wait()
    server.stop()


if __name__ == "__main__":
    main()
