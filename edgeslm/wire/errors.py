"""The one table from errors to HTTP: status, OpenAI error type, and the JSON body."""

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


def status_of(e: EdgeError) -> tuple[int, str]:
    for cls, status, etype in _TABLE:
        if isinstance(e, cls):
            return status, etype
    return 500, "server_error"


RETRY_AFTER_S = 1  # what a 503 asks a client to wait: a slot or a worker frees within about that


def to_response(e: EdgeError) -> JSONResponse:
    status, etype = status_of(e)
    headers = {"Retry-After": str(RETRY_AFTER_S)} if status == 503 else None
    return JSONResponse(body(e.message, etype, e.param, e.code), status_code=status, headers=headers)
