"""Serve a WSGI app factory with waitress in several processes that share one listening socket.

Usage: python scripts/workers.py [--host H] [--port P] [--workers N] [--threads T] MODULE:FACTORY
       python scripts/workers.py --check [--host H] [--port P]

One waitress process uses one core however many threads it has (the interpreter runs one
thread at a time), so this binds the socket once and forks N workers, each running waitress on
that socket with its own threads; the kernel hands each connection to one of them. The parent
only watches: Ctrl-C, SIGTERM or SIGHUP stop every worker, a worker that dies stops the others,
and workers whose parent is killed outright (kill -9) notice and exit. --check only tells
whether the port is free (exit 1 with one line when it is not) and needs nothing but Python.
"""

import argparse
import errno
import importlib
import os
import signal
import socket
import sys
import threading
import time

STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)
WAIT_SIGNALS = (*STOP_SIGNALS, signal.SIGCHLD)
# A worker gets this long to finish its requests before it is killed.
STOP_TIMEOUT_SECONDS = 10
BACKLOG = 1024


def fail(message):
    print(message, file=sys.stderr, flush=True)
    sys.exit(1)


def bind(host, port):
    """Return a socket listening on host:port; exit with one line when that is impossible."""
    try:
        family, kind, proto, _, address = socket.getaddrinfo(
            host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )[0]
    except socket.gaierror as error:
        fail(f"Cannot listen on {host}: {error.strerror}")
    sock = socket.socket(family, kind, proto)
    # As waitress does: a port whose last connections linger in TIME_WAIT is free.
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(address)
        sock.listen(BACKLOG)
    except OSError as error:
        sock.close()
        if error.errno == errno.EADDRINUSE:
            fail(
                f"Port {port} on {host} is already in use; choose another,"
                f" for example: PORT={port + 1} bash scripts/serve"
            )
        fail(f"Cannot listen on {host} port {port}: {error.strerror}")
    return sock


def url(sock):
    host, port = sock.getsockname()[:2]
    return f"http://[{host}]:{port}/" if ":" in host else f"http://{host}:{port}/"


def load_factory(spec):
    module_name, _, name = spec.partition(":")
    if not module_name or not name:
        fail(f"Expected MODULE:FACTORY, got {spec!r}")
    return getattr(importlib.import_module(module_name), name)


def run_worker(factory, sock, threads, parent_gone):
    """Serve in a forked worker until told to stop or the parent goes; never return."""
    code = 1
    try:
        stopping = []

        # The first stop signal unwinds waitress (it closes cleanly on SystemExit); the
        # parent's SIGTERM after a Ctrl-C must not cut that short. The handler stays in
        # place rather than turning to SIG_IGN, which Python reports as an error when a
        # signal is already on its way.
        def stop(signum, frame):
            if not stopping:
                stopping.append(signum)
                raise SystemExit(0)

        for number in STOP_SIGNALS:
            signal.signal(number, stop)
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        signal.pthread_sigmask(signal.SIG_UNBLOCK, WAIT_SIGNALS)

        def watch_parent():
            # Only the parent holds the pipe's write end: reading returns when it is gone,
            # however it died.
            os.read(parent_gone, 1)
            os.kill(os.getpid(), signal.SIGTERM)

        threading.Thread(target=watch_parent, daemon=True).start()

        import logging

        import waitress

        app = factory()
        logging.basicConfig()  # as waitress-serve does, unless the app configured logging
        waitress.create_server(app, sockets=[sock], threads=threads).run()
        code = 0
    except SystemExit as error:
        code = error.code if isinstance(error.code, int) else 1
    except BaseException:
        import traceback

        traceback.print_exc()
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        # A forked worker must not run the parent's exit handlers.
        os._exit(code)


def describe(status):
    code = os.waitstatus_to_exitcode(status)
    if code < 0:
        return f"was killed by {signal.Signals(-code).name}"
    return f"exited with status {code}"


def stop_workers(workers):
    """SIGTERM every worker still running, wait for them, kill those that do not stop."""
    for pid in workers:
        os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + STOP_TIMEOUT_SECONDS
    while workers and time.monotonic() < deadline:
        for pid in list(workers):
            if os.waitpid(pid, os.WNOHANG)[0]:
                workers.remove(pid)
        time.sleep(0.02)
    for pid in workers:
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)


def serve(spec, sock, count, threads):
    """Fork count workers serving spec on sock; return the exit status once all have stopped."""
    factory = load_factory(spec)  # imported once, before forking, so workers share it
    address = url(sock)
    # The parent takes its signals synchronously (sigwait), never in a handler, so no signal
    # can arrive between two steps and leave a worker behind. SIGCHLD gets a handler that never
    # runs, since a signal whose action is to be ignored may be dropped rather than waited for.
    signal.pthread_sigmask(signal.SIG_BLOCK, WAIT_SIGNALS)
    signal.signal(signal.SIGCHLD, lambda signum, frame: None)
    parent_gone, parent_alive = os.pipe()
    workers = set()
    status = 0
    try:
        sys.stdout.flush()
        sys.stderr.flush()
        for _ in range(count):
            pid = os.fork()
            if pid == 0:
                os.close(parent_alive)
                run_worker(factory, sock, threads, parent_gone)
            workers.add(pid)
        os.close(parent_gone)
        sock.close()
        print(f"Serving on {address} with {count} worker{'' if count == 1 else 's'}", flush=True)
        while True:
            if signal.sigwait(WAIT_SIGNALS) != signal.SIGCHLD:
                break
            pid, wait_status = os.waitpid(-1, os.WNOHANG)
            if pid:
                workers.discard(pid)
                print(f"Worker {pid} {describe(wait_status)}; stopping the others", file=sys.stderr)
                status = 1
                break
    finally:
        stop_workers(workers)
    return status


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("app", nargs="?", help="the app factory, as MODULE:FACTORY")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8080)
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--threads", type=int, default=4, help="waitress threads per worker")
    parser.add_argument("--check", action="store_true", help="only check the port is free")
    args = parser.parse_args(argv)
    if args.workers < 1 or args.threads < 1:
        parser.error("--workers and --threads must be at least 1")
    if not args.check and not args.app:
        parser.error("the app factory (MODULE:FACTORY) is required")
    sock = bind(args.host, args.port)
    if args.check:
        sock.close()
        return 0
    return serve(args.app, sock, args.workers, args.threads)


if __name__ == "__main__":
    sys.exit(main())
