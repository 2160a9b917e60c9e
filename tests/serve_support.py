"""A real ``iepile serve`` (uvicorn on loopback, in a thread) for the service and page tests."""

from __future__ import annotations

import contextlib
import socket
import threading
import time

from iepile.serve.app import create_app


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def served(extractor, options):
    """A real uvicorn server on loopback in a thread, as ``iepile serve`` runs it."""
    import uvicorn

    options.port = free_port()
    app = create_app(extractor, options)
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=options.port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    for _ in range(200):
        if server.started:
            break
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{options.port}", app
    finally:
        server.should_exit = True
        thread.join(30)
