"""The router in front of an exported engine: a request for model "auto" is routed as `edgeslm
serve` routes it (the same Router over the exported router.json) and forwarded to the engine with the
chosen task adapter's LoRA name as its model; every other request is forwarded unchanged. The answer
says where it went in `x-edgeslm-route`.

It stands where clients reach it, so it is guarded as `serve` is (wire/middleware.Guard: its own client
key, allowed hosts, body and request limits, the same error JSON). A client's credentials never go on:
the engine and the teacher get the keys named by --engine-key-env and --teacher-key-env, or none. A
request routed to a task adapter is redacted exactly as `serve` redacts it (the adapter learned from
curated calls with personal values replaced) and the answer's values are restored, streamed or not.

    python -m edgeslm.export.front --export DIR --engine http://127.0.0.1:8000/v1 [--teacher URL]
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

import httpx
from fastapi import FastAPI, Request
from fastapi.responses import Response, StreamingResponse

from edgeslm.config import Settings, get_settings
from edgeslm.privacy import Redactor, Restorer, redact_message
from edgeslm.router import Router
from edgeslm.wire.middleware import LOOPBACK, Guard
from edgeslm.wire.upstream import error


def create_app(export: Path, engine: str, teacher: str | None = None, model_format: str = "{task}", *,
               api_key: str | None = None, engine_key: str | None = None, teacher_key: str | None = None,
               allowed_hosts: list[str] | None = None, settings: Settings | None = None) -> FastAPI:
    manifest = json.loads((export / "export.json").read_text())
    router = Router(export / "router" / "router.json") if (export / "router" / "router.json").is_file() else None
    client = httpx.AsyncClient(timeout=httpx.Timeout(600, connect=10))
    st = settings or get_settings()
    app = FastAPI(title="edgeslm export front")
    app.add_middleware(Guard, allowed_hosts=allowed_hosts or ["localhost", "127.0.0.1", "[::1]", "::1"],
                       api_key=api_key, max_body_bytes=st.max_body_bytes, settings=st)

    def pick(body: dict) -> tuple[str, str, bool]:
        """(upstream base URL, route description, routed to a task adapter) for a request, rewriting its
        model when routed."""
        if body.get("model") != "auto":
            return engine, "passed through", False
        route = router.route(body.get("messages") or []) if router else None
        if route is not None and route.local and route.base == manifest["model"] and route.task in manifest["adapters"]:
            body["model"] = model_format.format(base=manifest["model"], task=route.task)
            return engine, route.header(), True
        if teacher:
            body.pop("model", None)
            return teacher, route.header() if route else "no router: teacher", False
        task = manifest.get("default_adapter")
        body["model"] = (model_format.format(base=manifest["model"], task=task) if task in manifest["adapters"]
                         else manifest["served_model_name"])
        return engine, (route.header() if route else "no router") + "; base model (no teacher configured)", False

    @app.get("/health")
    async def health():
        return {"status": "ok", "engine": engine}

    @app.api_route("/v1/{path:path}", methods=["GET", "POST"])
    async def forward(path: str, request: Request) -> Response:
        raw = await request.body()
        upstream, how, restore = engine, "passed through", None
        if request.method == "POST" and path == "chat/completions":
            body = request.state.json  # parsed and checked by the guard
            upstream, how, routed = pick(body)
            if routed:
                redact = Redactor(surrogates=True)  # as curation wrote what the adapter learned from
                body["messages"] = [redact_message(m, redact) if isinstance(m, dict) else m
                                    for m in body.get("messages") or []]
                restore = Restorer(redact)
            raw = json.dumps(body).encode()
        key = teacher_key if upstream == teacher else engine_key
        headers = {k: v for k, v in request.headers.items() if k.lower() in ("content-type", "accept")}
        if key:
            headers["authorization"] = f"Bearer {key}"
        req = client.build_request(request.method, f"{upstream.rstrip('/')}/{path}", content=raw, headers=headers,
                                   params=request.query_params)
        try:
            resp = await client.send(req, stream=True)
        except httpx.HTTPError as e:
            return error(502, f"the upstream at {upstream} cannot be reached ({type(e).__name__})", "upstream_unreachable")
        out = {"content-type": resp.headers.get("content-type", "application/json"), "x-edgeslm-route": how}
        if out["content-type"].startswith("text/event-stream"):
            async def body_iter():
                try:
                    if restore is None:
                        async for chunk in resp.aiter_raw():
                            yield chunk
                        return
                    async for line in resp.aiter_lines():
                        yield _restored_line(line, restore) + "\n"
                finally:
                    await resp.aclose()
            return StreamingResponse(body_iter(), status_code=resp.status_code, headers=out)
        data = await resp.aread()
        await resp.aclose()
        if restore is not None and resp.status_code == 200:
            data = _restored_body(data, restore)
        return Response(data, status_code=resp.status_code, headers=out)

    return app


def _restored_body(data: bytes, restore: Restorer) -> bytes:
    try:
        body = json.loads(data)
        restore.completion(body)
    except (ValueError, KeyError, IndexError, TypeError):
        return data
    return json.dumps(body).encode()


def _restored_line(line: str, restore: Restorer) -> str:
    """One SSE line of a routed stream with the redacted values put back (held while a fake or placeholder may
    still be arriving; what is held comes out with the chunk that ends the choice)."""
    if not line.startswith("data: ") or line.strip() == "data: [DONE]":
        return line
    try:
        chunk = json.loads(line[6:])
    except ValueError:
        return line
    for choice in chunk.get("choices") or []:
        delta = choice.get("delta") or {}
        end = choice.get("finish_reason") is not None
        if isinstance(delta.get("content"), str) or (end and "text" in restore.buffers):
            delta["content"] = restore.feed("text", delta.get("content") or "") + (restore.flush("text") if end else "")
        for tc in delta.get("tool_calls") or []:
            fn, k = tc.get("function") or {}, ("args", tc.get("index", 0))
            if isinstance(fn.get("arguments"), str):
                fn["arguments"] = restore.feed(k, fn["arguments"], in_json=True)
        if end:
            for k in [k for k in restore.buffers if k != "text"]:
                rest = restore.flush(k, in_json=True)
                if rest:
                    delta.setdefault("tool_calls", []).append({"index": k[1], "function": {"arguments": rest}})
        choice["delta"] = delta
    return "data: " + json.dumps(chunk)


def main(argv: list[str] | None = None) -> None:
    import uvicorn

    p = argparse.ArgumentParser(prog="python -m edgeslm.export.front", description=__doc__.split("\n\n")[0])
    p.add_argument("--export", type=Path, required=True, help="the folder `edgeslm export` wrote")
    p.add_argument("--engine", required=True, help="the engine's OpenAI base URL, e.g. http://127.0.0.1:8000/v1")
    p.add_argument("--teacher", help="where requests the router does not keep local go (an OpenAI base URL)")
    p.add_argument("--model-format", default="{task}", help="the engine's model name for an adapter ({base}, {task})")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8080)
    p.add_argument("--api-key-env", help="environment variable holding the key clients must send as "
                   "'Authorization: Bearer KEY' (required to listen beyond this machine)")
    p.add_argument("--engine-key-env", help="environment variable holding the engine's API key (default: none sent)")
    p.add_argument("--teacher-key-env", help="environment variable holding the teacher's API key (default: none sent)")
    p.add_argument("--allowed-hosts", default="localhost,127.0.0.1,[::1],::1",
                   help="comma-separated Host names the front answers; '*' answers any")
    a = p.parse_args(argv)
    keys = {}
    for flag, var in (("--api-key-env", a.api_key_env), ("--engine-key-env", a.engine_key_env),
                      ("--teacher-key-env", a.teacher_key_env)):
        if var and not os.environ.get(var):
            p.error(f"{flag} {var}: that environment variable is not set")
        keys[flag] = os.environ.get(var) if var else None
    if a.host not in LOOPBACK and not keys["--api-key-env"]:
        p.error(f"--host {a.host} is reachable beyond this machine: give --api-key-env VAR (clients then send "
                "'Authorization: Bearer <value of VAR>')")
    hosts = [h.strip() for h in a.allowed_hosts.split(",") if h.strip()]
    uvicorn.run(create_app(a.export, a.engine, a.teacher, a.model_format, api_key=keys["--api-key-env"],
                           engine_key=keys["--engine-key-env"], teacher_key=keys["--teacher-key-env"],
                           allowed_hosts=hosts), host=a.host, port=a.port)


if __name__ == "__main__":
    main()
