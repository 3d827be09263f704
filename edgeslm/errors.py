"""The typed error tree. Every error edgeslm raises on purpose is one of these.

Each carries `param` (the request field or CLI value at fault, when there is one) and a stable
`code`. The HTTP edge (wire/errors.py) and the CLI map them to statuses and messages in one
place; nothing matches on message text.
"""

from __future__ import annotations


class EdgeError(Exception):
    """Base class. `code` is a stable machine-readable identifier."""

    code = "internal_error"

    def __init__(self, message: str, *, param: str | None = None, code: str | None = None):
        super().__init__(message)
        self.message = message
        self.param = param
        if code is not None:
            self.code = code


class InvalidRequest(EdgeError):
    """The caller sent something we cannot serve as asked (HTTP 400)."""

    code = "invalid_request"


class NotFound(EdgeError):
    """A named model, adapter or file does not exist (HTTP 404)."""

    code = "not_found"


class ContextTooLong(InvalidRequest):
    """The prompt does not fit the model's context window (HTTP 400)."""

    code = "context_length_exceeded"


class GrammarError(InvalidRequest):
    """A schema or grammar cannot be compiled into a constraint (HTTP 400)."""

    code = "invalid_schema"


class DoesNotFit(EdgeError):
    """A model does not fit the memory budget of this machine."""

    code = "does_not_fit"


class BackendError(EdgeError):
    """The inference backend failed (HTTP 500, but with a JSON body and the server keeps serving)."""

    code = "backend_error"


class Offline(EdgeError):
    """A download was needed but the source cannot be reached."""

    code = "offline"


class Busy(EdgeError):
    """The request queue is full (HTTP 503)."""

    code = "server_busy"


class WorkerGone(EdgeError):
    """The model's worker was unloaded between lookup and submit (the server retries once; HTTP 503)."""

    code = "worker_gone"


class TooLarge(EdgeError):
    """The request body is over the server's size limit (HTTP 413)."""

    code = "request_too_large"


class ServerFault(EdgeError):
    """Something on the server's side is broken (a damaged adapter, an unreadable router or capture
    store, a missing optional package): HTTP 500 with a message saying how to fix it. Never the
    caller's fault, so never a 4xx."""

    code = "server_fault"
