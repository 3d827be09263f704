"""The one table from errors to HTTP: status, OpenAI error type, and the JSON body, in OpenAI's shape
or, on Anthropic's routes, in Anthropic's; and the 400 of a body that does not validate."""

from __future__ import annotations

from fastapi.responses import JSONResponse

from edgeslm.errors import (
    BackendError,
    Busy,
    DoesNotFit,
    EdgeError,
    InvalidRequest,
    NotFound,
    Offline,
    ServerFault,
    TooLarge,
    WorkerGone,
)

_TABLE: list[tuple[type[EdgeError], int, str]] = [
    (InvalidRequest, 400, "invalid_request_error"),  # includes ContextTooLong and GrammarError
    (NotFound, 404, "invalid_request_error"),
    (TooLarge, 413, "invalid_request_error"),
    (Busy, 503, "server_error"),
    (WorkerGone, 503, "server_error"),
    (Offline, 503, "server_error"),
    (DoesNotFit, 507, "server_error"),
    (BackendError, 500, "server_error"),
    (ServerFault, 500, "server_error"),
]


def body(message: str, etype: str, param: str | None, code: str | None) -> dict:
    return {"error": {"message": message, "type": etype, "param": param, "code": code}}


# Anthropic's Messages API routes answer errors in Anthropic's shape, with its statuses
ANTHROPIC_PATHS = "/v1/messages"
_ANTHROPIC_TYPES = {400: "invalid_request_error", 401: "authentication_error", 403: "permission_error",
                    404: "not_found_error", 413: "request_too_large", 429: "rate_limit_error", 529: "overloaded_error"}


def anthropic_status(status: int) -> int:
    """Anthropic's status for ours: a busy server, or one with no room for the model, is 529 (overloaded)."""
    return 529 if status in (503, 507) else status


def anthropic_type(status: int) -> str:
    status = anthropic_status(status)
    return _ANTHROPIC_TYPES.get(status, "invalid_request_error" if 400 <= status < 500 else "api_error")


def shaped(path: str, status: int, message: str, etype: str, param: str | None, code: str | None) -> tuple[int, dict]:
    """(status, body) of an error on `path`: OpenAI's shape, or Anthropic's on its routes."""
    if path.startswith(ANTHROPIC_PATHS):
        return anthropic_status(status), {"type": "error", "error": {"type": anthropic_type(status), "message": message}}
    return status, body(message, etype, param, code)


def status_of(e: EdgeError) -> tuple[int, str]:
    for cls, status, etype in _TABLE:
        if isinstance(e, cls):
            return status, etype
    return 500, "server_error"


def _loc(loc: tuple) -> str:
    parts = [p for p in loc if p != "body"]
    out = ""
    for p in parts:
        out += f"[{p}]" if isinstance(p, int) else (f".{p}" if out else str(p))
    return out or "body"


def shaped_response(path: str, status: int, message: str, etype: str, param: str | None, code: str | None) -> JSONResponse:
    """An error in the shape of the route's API (Anthropic's on /v1/messages, OpenAI's elsewhere)."""
    status, payload = shaped(path, status, message, etype, param, code)
    return JSONResponse(payload, status_code=status)


def invalid(problems, path: str = "") -> JSONResponse:
    """A request that does not validate: 400 naming the first field at fault."""
    first = problems[0]
    if first.get("type") == "json_invalid":
        return shaped_response(path, 400, f"request body is not valid JSON: {first.get('msg')}", "invalid_request_error", None,
                      "invalid_json")
    param = _loc(tuple(first.get("loc", ())))
    msg = f"{param}: {first.get('msg')}"
    if first.get("type") == "missing":
        msg = f"{param} is required"
    return shaped_response(path, 400, msg, "invalid_request_error", param, "invalid_value")


RETRY_AFTER_S = 1  # what a 503 asks a client to wait: a slot or a worker frees within about that


def to_response(e: EdgeError, path: str = "") -> JSONResponse:
    status, etype = status_of(e)
    headers = {"Retry-After": str(RETRY_AFTER_S)} if status == 503 else None
    status, payload = shaped(path, status, e.message, etype, e.param, e.code)
    return JSONResponse(payload, status_code=status, headers=headers)
