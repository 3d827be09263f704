"""The router in front of an exported engine: a request for model "auto" is routed as `edgeslm
serve` routes it (the same Router over the exported router.json) and forwarded to the engine with the
chosen task adapter's LoRA name as its model; every other request is forwarded unchanged. The answer
says where it went in `x-edgeslm-route`.

    python -m edgeslm.export.front --export DIR --engine http://127.0.0.1:8000/v1 [--teacher URL]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import httpx
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse

from edgeslm.router import Router


def create_app(export: Path, engine: str, teacher: str | None = None, model_format: str = "{task}") -> FastAPI:
    manifest = json.loads((export / "export.json").read_text())
    router = Router(export / "router" / "router.json") if (export / "router" / "router.json").is_file() else None
    client = httpx.AsyncClient(timeout=httpx.Timeout(600, connect=10))
    app = FastAPI(title="edgeslm export front")

    def pick(body: dict) -> tuple[str, str]:
        """(upstream base URL, route description) for a request, rewriting its model when routed."""
        if body.get("model") != "auto":
            return engine, "passed through"
        route = router.route(body.get("messages") or []) if router else None
        if route is not None and route.local and route.base == manifest["model"] and route.task in manifest["adapters"]:
            body["model"] = model_format.format(base=manifest["model"], task=route.task)
            return engine, route.header()
        if teacher:
            body.pop("model", None)
            return teacher, route.header() if route else "no router: teacher"
        task = manifest.get("default_adapter")
        body["model"] = (model_format.format(base=manifest["model"], task=task) if task in manifest["adapters"]
                         else manifest["served_model_name"])
        return engine, (route.header() if route else "no router") + "; base model (no teacher configured)"

    @app.api_route("/v1/{path:path}", methods=["GET", "POST"])
    async def forward(path: str, request: Request) -> Response:
        raw = await request.body()
        upstream, how = engine, "passed through"
        if request.method == "POST" and path == "chat/completions":
            try:
                body = json.loads(raw)
            except ValueError:
                return JSONResponse({"error": {"message": "the body is not JSON", "type": "invalid_request_error",
                                               "param": None, "code": "invalid_json"}}, status_code=400)
            upstream, how = pick(body)
            raw = json.dumps(body).encode()
        headers = {k: v for k, v in request.headers.items() if k.lower() in ("authorization", "content-type", "accept")}
        req = client.build_request(request.method, f"{upstream.rstrip('/')}/{path}", content=raw, headers=headers,
                                   params=request.query_params)
        resp = await client.send(req, stream=True)
        out = {"content-type": resp.headers.get("content-type", "application/json"), "x-edgeslm-route": how}
        if out["content-type"].startswith("text/event-stream"):
            async def body_iter():
                try:
                    async for chunk in resp.aiter_raw():
                        yield chunk
                finally:
                    await resp.aclose()
            return StreamingResponse(body_iter(), status_code=resp.status_code, headers=out)
        data = await resp.aread()
        await resp.aclose()
        return Response(data, status_code=resp.status_code, headers=out)

    return app


def main(argv: list[str] | None = None) -> None:
    import uvicorn

    p = argparse.ArgumentParser(prog="python -m edgeslm.export.front", description=__doc__.split("\n\n")[0])
    p.add_argument("--export", type=Path, required=True, help="the folder `edgeslm export` wrote")
    p.add_argument("--engine", required=True, help="the engine's OpenAI base URL, e.g. http://127.0.0.1:8000/v1")
    p.add_argument("--teacher", help="where requests the router does not keep local go (an OpenAI base URL)")
    p.add_argument("--model-format", default="{task}", help="the engine's model name for an adapter ({base}, {task})")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8080)
    a = p.parse_args(argv)
    uvicorn.run(create_app(a.export, a.engine, a.teacher, a.model_format), host=a.host, port=a.port)


if __name__ == "__main__":
    main()
