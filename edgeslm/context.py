"""The request being handled, for log lines: its id, set by the server (serving/logs.py) and carried
by a prepared job into the worker thread, where the context of the request does not reach."""

from __future__ import annotations

import contextvars

request_id: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="-")
