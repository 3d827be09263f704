"""What a running server says: a request id on every request (the client's `X-Request-Id` when it sends
a sane one, else a new one), returned in the `x-request-id` header and on every log line written while
the request is handled; one access line per request (method, route, status, model, adapter, tokens in
and out, latency), for streams when the stream ends; and the log format, text or JSON lines.

Loggers, one per layer: edgeslm.serving (this server), edgeslm.access (the access lines),
edgeslm.engine, edgeslm.generation, edgeslm.store...
"""

from __future__ import annotations

import json
import logging
import re
import time
import uuid

from edgeslm.context import request_id

access = logging.getLogger("edgeslm.access")
_SANE = re.compile(r"^[A-Za-z0-9._:-]{1,64}$")


class _WithRequestId(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = getattr(record, "request_id", None) or request_id.get()
        return True


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        out = {"time": round(record.created, 3), "level": record.levelname, "logger": record.name,
               "request_id": getattr(record, "request_id", "-"), "message": record.getMessage()}
        out.update(getattr(record, "fields", {}))
        if record.exc_info:
            out["exc"] = self.formatException(record.exc_info)
        return json.dumps(out, ensure_ascii=False)


def setup(fmt: str = "text", level: int = logging.INFO) -> None:
    """Configure the root handler: `text` (level, logger, request id, message) or `json` (one object a line)."""
    handler = logging.StreamHandler()
    handler.addFilter(_WithRequestId())
    handler.setFormatter(JsonFormatter() if fmt == "json" else
                         logging.Formatter("%(levelname)s %(name)s [%(request_id)s] %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)


class AccessLog:
    """Pure ASGI middleware: assigns the request id and writes the access line when the response ends.
    Handlers add what they know (model, adapter, tokens) to `request.state.access`."""

    def __init__(self, app, sink=None):
        self.app, self.sink = app, sink  # sink(line): also handed every access line (the metrics)

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        given = dict(scope.get("headers", [])).get(b"x-request-id", b"").decode("latin-1")
        rid = given if _SANE.match(given) else uuid.uuid4().hex[:16]
        token = request_id.set(rid)
        scope.setdefault("state", {})["access"] = fields = {}
        started, status = time.perf_counter(), [0]

        async def send_and_log(message):
            if message["type"] == "http.response.start":
                status[0] = message["status"]
                message = {**message, "headers": [*message.get("headers", []), (b"x-request-id", rid.encode())]}
            await send(message)
            if message["type"] == "http.response.body" and not message.get("more_body", False):
                line = {"method": scope.get("method"), "route": scope.get("path"), "status": status[0],
                        "latency_s": round(time.perf_counter() - started, 4), **fields}
                access.info(" ".join(f"{k}={v}" for k, v in line.items()), extra={"request_id": rid, "fields": line})
                if self.sink is not None:
                    self.sink(line)

        try:
            await self.app(scope, receive, send_and_log)
        finally:
            request_id.reset(token)
