"""The HTTP edge's guard, one pure ASGI middleware for every server edgeslm starts (`serve`, `proxy` and
an export's front), so each refuses the same requests with the same error JSON:

- **Host allow-list**: a request whose Host header names another host gets a 421. A page on another
  site can reach 127.0.0.1 through DNS rebinding, but its requests carry that site's name.
- **API key**: with a key, every route needs `Authorization: Bearer KEY` or `x-api-key: KEY` (compared in
  constant time), else a 401; except /health and the web page with its assets (the page has its own key box, and
  every API route it calls stays guarded).
- **Body size**: a body over `max_body_bytes` gets a 413, by Content-Length before it is read, or as
  soon as a chunked body passes the limit.
- **The body's shape**: a POST body is parsed as JSON and checked against the request limits
  (wire/limits.py: depth, text, message, part and tool counts, schema sizes) in a worker thread, so a
  hostile body never blocks the event loop; it must be a JSON object. The parsed body is handed on
  in `scope["state"]["json"]` (`request.state.json`), so no route parses it twice.
Streams pass through untouched.
"""

from __future__ import annotations

import hmac
import json

from starlette.concurrency import run_in_threadpool

from edgeslm.errors import InvalidRequest
from edgeslm.wire import limits
from edgeslm.wire.errors import shaped

LOOPBACK = ("127.0.0.1", "localhost", "::1")  # binding elsewhere needs a client key (serve, proxy, the front)
OPEN_PATHS = ("/health", "/", "/favicon.ico")  # answered without the key (no data behind them)
OPEN_PREFIXES = ("/web/",)


def _refuse(status: int, message: str, code: str, param: str | None = None, etype: str = "invalid_request_error",
            path: str = ""):
    status, shape = shaped(path, status, message, etype, param, code)
    payload = json.dumps(shape).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(payload)).encode())]
    if status == 401:
        headers.append((b"www-authenticate", b"Bearer"))
    return status, headers, payload


def host_name(value: str) -> str:
    """The host part of a Host header ('[::1]:8000' -> '[::1]', 'example.com:80' -> 'example.com')."""
    value = value.strip().lower()
    if value.startswith("["):
        return value[: value.find("]") + 1] if "]" in value else value
    return value.rsplit(":", 1)[0] if value.count(":") == 1 else value


def parse_body(raw: bytes, settings) -> dict:
    """The request body as a JSON object within the request limits; InvalidRequest (400) otherwise."""
    if not raw.strip():
        raise InvalidRequest("the request body is empty; send a JSON object", code="invalid_json")
    try:
        value = json.loads(raw)
    except RecursionError:
        raise InvalidRequest(f"the request body nests JSON deeper than {settings.max_json_depth} levels "
                             "(max_json_depth)", code="json_too_deep") from None
    except (ValueError, UnicodeDecodeError) as e:
        raise InvalidRequest(f"request body is not valid JSON: {e}", code="invalid_json") from None
    if not isinstance(value, dict):
        raise InvalidRequest(f"the request body must be a JSON object, not {type(value).__name__}",
                             code="invalid_json")
    limits.check(value, settings)
    return value


class Guard:
    def __init__(self, app, *, allowed_hosts: list[str], api_key: str | None, max_body_bytes: int,
                 settings=None):
        """`settings`: the request limits (config._Guards); without them bodies are passed on unparsed."""
        self.app, self.api_key, self.max_body = app, api_key, max_body_bytes
        self.settings = settings
        self.any_host = "*" in allowed_hosts
        self.hosts = {h.strip().lower() for h in allowed_hosts if h.strip()}

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}
        path = scope.get("path", "")
        refusal = self._check(scope, headers, path)
        if refusal is None:
            length = headers.get("content-length", "")
            if length.isdigit() and int(length) > self.max_body:
                refusal = _refuse(413, f"the request body is {length} bytes; the limit is {self.max_body} "
                                  "(max_body_bytes)", "request_too_large", path=path)
        if refusal is not None:
            return await self._send(send, *refusal)
        if scope.get("method") not in ("POST", "PUT", "PATCH"):
            return await self.app(scope, receive, send)
        # the body is read here, up to the limit, and handed on whole (the routes read it whole anyway)
        parts, size, more = [], 0, True
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_body:
                return await self._send(send, *_refuse(413, f"the request body is over {self.max_body} bytes "
                                                       "(max_body_bytes)", "request_too_large", path=path))
            parts.append(chunk)
            more = message.get("more_body", False)
        raw = b"".join(parts)
        if self.settings is not None:
            try:
                scope.setdefault("state", {})["json"] = await run_in_threadpool(parse_body, raw, self.settings)
            except InvalidRequest as e:
                return await self._send(send, *_refuse(400, e.message, e.code, e.param, path=path))
        whole = {"type": "http.request", "body": raw, "more_body": False}

        async def replay():
            nonlocal whole
            if whole is not None:
                message, whole = whole, None
                return message
            return await receive()

        await self.app(scope, replay, send)

    def _check(self, scope, headers: dict, path: str):
        host = host_name(headers.get("host", ""))
        if not self.any_host and host and host not in self.hosts:
            return _refuse(421, f"this server does not answer for host '{host}'; allowed: "
                           f"{', '.join(sorted(self.hosts))} (--allowed-hosts)", "host_not_allowed", path=path)
        open_page = scope.get("method") in ("GET", "HEAD") and (path in OPEN_PATHS or path.startswith(OPEN_PREFIXES))
        if self.api_key and not open_page:
            auth = headers.get("authorization", "")
            # Anthropic's clients send the key as x-api-key
            given = auth[7:].strip() if auth[:7].lower() == "bearer " else headers.get("x-api-key", "").strip()
            if not hmac.compare_digest(given.encode(), self.api_key.encode()):
                return _refuse(401, "missing or wrong API key: send 'Authorization: Bearer KEY' (or 'x-api-key: KEY')",
                               "invalid_api_key", path=path)
        return None

    @staticmethod
    async def _send(send, status, headers, payload):
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": payload})
