"""A stand-in HTTP peer for the hosted LLM or GPU engine that cannot run here: a real server on a free
loopback port that answers every POST with `respond(headers, body)` -> (payload, content type) and
records what it was sent."""

from __future__ import annotations

import contextlib
import json
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@contextlib.contextmanager
def stand_in(respond: Callable[[dict, dict], tuple[bytes, str]]):
    """Yields (base URL http://127.0.0.1:PORT, the list of (lower-cased headers, JSON body) received)."""
    seen: list = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            raw = self.rfile.read(int(self.headers.get("content-length", 0)))
            headers, body = {k.lower(): v for k, v in self.headers.items()}, json.loads(raw or b"{}")
            seen.append((headers, body))
            out, ctype = respond(headers, body)
            self.send_response(200)
            self.send_header("content-type", ctype)
            self.send_header("content-length", str(len(out)))
            self.end_headers()
            self.wfile.write(out)

        def log_message(self, *args):
            pass

    srv = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{srv.server_address[1]}", seen
    finally:
        srv.shutdown()
