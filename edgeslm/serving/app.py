"""The FastAPI app: thin handlers over the engine. Blocking work (model loads, prompt preparation)
runs in the thread pool; generation runs on the model's worker thread, so /health and
/v1/models answer while a completion is decoding."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
import time
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, Response, StreamingResponse
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel, ValidationError
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException

from edgeslm.engine import Engine
from edgeslm.errors import BackendError, EdgeError, NotFound, WorkerGone
from edgeslm.privacy import Redactor, Restorer, redact_message
from edgeslm.router import Route, RouterCache
from edgeslm.serving import status
from edgeslm.serving.logs import AccessLog
from edgeslm.serving.metrics import Metrics
from edgeslm.wire import embeddings as embeddings_wire
from edgeslm.wire import errors, translate
from edgeslm.wire.embeddings import EmbeddingsRequest
from edgeslm.wire.messages import CountRequest, Messages, MessagesRequest
from edgeslm.wire.middleware import Guard
from edgeslm.wire.protocol import ChatCompletionRequest, ChatMessage
from edgeslm.wire.responses import Kept, Responses, ResponsesRequest
from edgeslm.wire.upstream import Upstream

log = logging.getLogger("edgeslm.serving")
WEB = Path(__file__).resolve().parents[1] / "web"


def _body_of(model: str) -> dict:
    """A route that reads its body itself (validated off the event loop): the docs still show its schema."""
    return {"requestBody": {"required": True, "content": {"application/json": {"schema": {
        "$ref": f"#/components/schemas/{model}"}}}}}


_FORMATS: dict[str, type[BaseModel]] = {"ChatCompletionRequest": ChatCompletionRequest, "ResponsesRequest": ResponsesRequest,
                                        "MessagesRequest": MessagesRequest, "CountRequest": CountRequest,
                                        "EmbeddingsRequest": EmbeddingsRequest}


def _redacted(req: ChatCompletionRequest, redact) -> ChatCompletionRequest:
    """The request with its personal data replaced, by the very function S2 curates with."""
    messages = [redact_message(m.model_dump(exclude_none=True), redact) for m in req.messages]
    return req.model_copy(update={"messages": [ChatMessage.model_validate(m) for m in messages]})


def create_app(engine: Engine) -> FastAPI:
    app = FastAPI(title="edgeslm", version=translate.FINGERPRINT)
    app.state.engine = engine
    st = engine.settings
    app.mount("/web", StaticFiles(directory=WEB), name="web")
    app.add_middleware(Guard, allowed_hosts=allowed_hosts(st), api_key=api_key(st), max_body_bytes=st.max_body_bytes,
                       settings=st)
    metrics = app.state.metrics = Metrics(engine)
    app.add_middleware(AccessLog, sink=metrics.request)  # outermost: refusals get an id and a line too
    capture = None
    if st.capture:
        from edgeslm.store.capture import CaptureStore

        capture = CaptureStore(st.capture_db, key_env=st.capture_key_env, retention_days=st.capture_retention_days)
    app.state.capture = capture
    routers = RouterCache(st.router_path, st.route_threshold)
    kept = Kept(st.responses_kept)  # responses a later request may continue (previous_response_id)
    upstream = (Upstream(st.upstream, st.upstream_api_key_env, forward_client_auth=st.upstream_forward_client_auth)
                if st.upstream else None)

    async def record(req: ChatCompletionRequest, headers, started: float, body: dict, adapter: str | None,
                     route: Route | None = None) -> None:
        """S1: the finished call goes to the capture store (a durable write, off the event loop)."""
        from edgeslm.store.capture import client_id

        call = {"created": started, "source": "serve", "client": client_id(headers), "model": body.get("model"),
                "adapter": adapter, "latency_s": time.time() - started,
                "finish_reason": (body.get("choices") or [{}])[0].get("finish_reason"),
                "request": req.model_dump(mode="json", exclude_none=True), "response": body,
                "route": dataclasses.asdict(route) if route else None}
        try:
            assert capture is not None  # record() runs only when capturing
            await run_in_threadpool(capture.add, call)
            metrics.capture_writes.inc()
        except Exception:
            log.exception("could not capture a call")

    @app.exception_handler(EdgeError)
    async def edge_error(request: Request, e: EdgeError):
        return errors.to_response(e, request.url.path)

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, e: RequestValidationError):
        return errors.invalid(e.errors(), request.url.path)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, e: StarletteHTTPException):
        code = {404: "not_found", 405: "method_not_allowed"}.get(e.status_code, "http_error")
        return errors.shaped_response(request.url.path, e.status_code, str(e.detail), "invalid_request_error", None, code)

    @app.exception_handler(Exception)
    async def unexpected(request: Request, e: Exception):
        log.exception("unexpected error")
        return errors.shaped_response(request.url.path, 500, f"internal error: {type(e).__name__}", "server_error", None, "internal_error")

    @app.get("/health")
    async def health():
        """200 while every resident model's worker is alive; 503 naming the dead ones otherwise."""
        workers = engine.loaded()
        dead = {w.name: w.dead for w in workers if w.dead}
        body = {"status": "error" if dead else "ok", "models": [w.name for w in workers],
                "slots": {w.name: w.busy() for w in workers}}
        if dead:
            body["dead"] = dead
        return JSONResponse(body, status_code=503 if dead else 200)

    @app.get("/", include_in_schema=False)
    async def page():
        """The web page: a playground and the server's status (static files in the package)."""
        return FileResponse(WEB / "index.html")

    @app.get("/v1/status")
    async def status_json():
        return await run_in_threadpool(status.status, engine, metrics)

    @app.get("/v1/status/qualify/{name}.png", include_in_schema=False)
    async def qualify_png(name: str):
        path = await run_in_threadpool(status.qualify_chart, st.home, name)
        if path is None:
            raise NotFound(f"no qualify report '{name}'", code="report_not_found")
        return FileResponse(path, media_type="image/png")

    @app.get("/metrics")
    async def prometheus():
        """Prometheus text format (serving/metrics.py)."""
        data, ctype = await run_in_threadpool(metrics.render)
        return Response(data, media_type=ctype)

    @app.get("/v1/models")
    async def models():
        return {"object": "list", "data": await run_in_threadpool(status.model_list, engine)}  # (status.py)

    async def routed(req: ChatCompletionRequest, request: Request, started: float, fmt):
        """S6: model "auto" goes to the task's promoted adapter, or to the teacher when the router is
        unsure or the task has none (to the default model, no adapter, when no --upstream is set)."""
        router = await run_in_threadpool(routers.get)
        if router is None:
            route = Route(None, None, 0.0, None, None, False, "no router yet (run edgeslm convert run)")
        else:
            route = await run_in_threadpool(router.route, [m.model_dump() for m in req.messages])
        if route.local:
            if route.task is None:
                return await local(req, request, started, route.base, None, route, fmt=fmt)
            # the adapter learned from curated calls, personal values replaced by fakes: it gets the request
            # the same way, and the real values go back into its answer
            redact = Redactor(surrogates=True)
            clean = await run_in_threadpool(_redacted, req, redact)
            return await local(clean, request, started, route.base, route.task, route, Restorer(redact), req, fmt)
        if upstream is None:
            route.reason += "; no --upstream teacher set, answered by the default model"
            return await local(req, request, started, None, None, route, fmt=fmt)
        metrics.upstream.inc()
        body = req.model_dump(mode="json", exclude_none=True)
        body["model"] = st.upstream_model or body["model"]

        async def on_answer(answer: dict) -> None:
            if capture is not None:
                await record(req, request.headers, started, answer, None, route)

        hdrs = {"x-edgeslm-route": route.header()}
        if isinstance(fmt, translate.Chat):
            return await upstream.chat(body, request.headers, on_answer, hdrs)
        # another format: the teacher's whole answer, translated (and replayed as events when streamed)
        body["stream"] = False
        body.pop("stream_options", None)
        answer = await upstream.chat(body, request.headers, on_answer, hdrs)
        payload = json.loads(bytes(answer.body))
        if answer.status_code != 200:
            problem = payload.get("error") if isinstance(payload, dict) else None
            problem = problem if isinstance(problem, dict) else {}
            return errors.shaped_response(request.url.path, answer.status_code, str(problem.get("message", "the teacher failed")),
                          str(problem.get("type", "server_error")), problem.get("param"), problem.get("code"))
        if not req.stream:
            return JSONResponse(fmt.answer(payload), headers=hdrs)
        writer = fmt.writer(translate.new_id(), str(payload.get("model", "")),
                            (payload.get("usage") or {}).get("prompt_tokens", 0))
        events = [writer.start()] + [writer.event(ev) for ev in translate.replay(payload)] + [writer.end(None, payload)]
        return StreamingResponse(iter(events), media_type="text/event-stream", headers=hdrs)

    async def parsed(request: Request, make):
        """The format object for the body the guard parsed (validation runs off the event loop too), or
        the 400 for a body that does not validate."""
        try:
            return await run_in_threadpool(make, request.state.json)
        except ValidationError as e:
            return errors.invalid(e.errors(), request.url.path)

    async def serve_as(fmt, request: Request, started: float):
        if isinstance(fmt, JSONResponse):
            return fmt
        req = fmt.chat
        if req.model == "auto" and not req.adapter:
            return await routed(req, request, started, fmt)
        base, task = engine.split(req.model, req.adapter)
        return await local(req, request, started, base, task, fmt=fmt)

    @app.post("/v1/chat/completions", openapi_extra=_body_of("ChatCompletionRequest"))
    async def chat(request: Request):
        started = time.time()
        fmt = await parsed(request, lambda b: translate.Chat(ChatCompletionRequest.model_validate(b)))
        return await serve_as(fmt, request, started)

    @app.post("/v1/responses", openapi_extra=_body_of("ResponsesRequest"))
    async def responses(request: Request):
        """OpenAI's Responses API, served as a chat completion (wire/responses.py)."""
        started = time.time()
        fmt = await parsed(request, lambda b: Responses(ResponsesRequest.model_validate(b), kept))
        return await serve_as(fmt, request, started)

    @app.post("/v1/messages", openapi_extra=_body_of("MessagesRequest"))
    async def messages(request: Request):
        """Anthropic's Messages API, served as a chat completion (wire/messages.py)."""
        started = time.time()
        fmt = await parsed(request, lambda b: Messages(MessagesRequest.model_validate(b)))
        return await serve_as(fmt, request, started)

    @app.post("/v1/embeddings", openapi_extra=_body_of("EmbeddingsRequest"))
    async def embeddings(request: Request):
        """Vectors from the shipped MiniLM, or from a catalog GGUF named by id (wire/embeddings.py)."""
        try:
            req = await run_in_threadpool(EmbeddingsRequest.model_validate, request.state.json)
        except ValidationError as e:
            return errors.invalid(e.errors(), request.url.path)
        model = await run_in_threadpool(engine.embedder, req.model)
        tokens = await run_in_threadpool(embeddings_wire.tokens_of, req, model, st.max_messages)
        vectors = await run_in_threadpool(model.embed, tokens)
        n = sum(map(len, tokens))
        request.state.access.update(model=model.name, prompt_tokens=n)
        metrics.embedded(model.name, n)
        return await run_in_threadpool(embeddings_wire.answer, req, model, vectors, n)

    @app.post("/v1/messages/count_tokens", openapi_extra=_body_of("CountRequest"))
    async def count_tokens(request: Request):
        """The prompt tokens a Messages request would be billed: rendered and tokenized as it would be."""
        fmt = await parsed(request, lambda b: Messages(CountRequest.model_validate(b)))
        if isinstance(fmt, JSONResponse):
            return fmt
        req = fmt.chat
        base, _ = engine.split(None if req.model == "auto" else req.model, req.adapter)
        messages, spec, _ = await run_in_threadpool(translate.to_internal, req, engine.settings)
        worker = await run_in_threadpool(engine.worker, base)
        return {"input_tokens": len(await run_in_threadpool(worker.preparer.prompt_tokens, messages, spec))}

    async def local(req: ChatCompletionRequest, request: Request, started: float, base: str | None,
                    task: str | None, route: Route | None = None, restore=None, original=None, fmt=None):
        fmt = fmt or translate.Chat(req)
        messages, spec, params = await run_in_threadpool(translate.to_internal, req, engine.settings)
        logged = original or req
        headers = {"x-edgeslm-route": route.header()} if route else {}
        loop = asyncio.get_running_loop()
        events: asyncio.Queue = asyncio.Queue()
        for attempt in (1, 2):  # a worker unloaded between lookup and submit: once more, on its successor
            worker = await run_in_threadpool(engine.worker_for, base, task)
            try:
                label = await run_in_threadpool(worker.preparer.task_for, task)  # the adapter it runs under (or the default)
                job = await run_in_threadpool(worker.prepare, messages, spec, params,
                                              _emitter(loop, events), task)
                worker.submit(job)
                break
            except WorkerGone:  # while preparing or submitting: the same retry
                if attempt == 2:
                    raise
        rid = translate.new_id()
        access = request.state.access
        access.update(model=worker.entry.id, adapter=label or "-")

        def account(g) -> None:
            access.update(prompt_tokens=g.usage.prompt_tokens, completion_tokens=g.usage.completion_tokens,
                          finish=g.finish_reason)
            metrics.generation(worker.entry.id, g)

        if not req.stream:
            try:
                checked = time.monotonic()
                while True:
                    try:
                        ev = await asyncio.wait_for(events.get(), timeout=0.5)
                    except TimeoutError:
                        ev = None
                    if time.monotonic() - checked >= 0.5:  # events flow while it decodes: look anyway
                        checked = time.monotonic()
                        if await request.is_disconnected():
                            return  # the client hung up: finally cancels the job; nobody reads an answer
                    if ev is None:
                        continue
                    if ev[0] == "done":
                        account(ev[1])
                        body = translate.completion(ev[1], rid)
                        if restore is not None:
                            restore.completion(body)
                        if capture is not None:
                            await record(logged, request.headers, started, body, label, route)
                        return JSONResponse(fmt.answer(body), headers=headers)
                    if ev[0] == "error":
                        raise ev[1]
            finally:
                job.cancelled.set()  # no-op when done; stops decoding if the client went away
        writer = fmt.writer(rid, worker.entry.id + (f"@{label}" if label else ""), len(job.prompt))

        async def stream():
            try:
                yield writer.start()
                while True:
                    ev = await events.get()
                    if ev[0] == "done":
                        account(ev[1])
                        body = translate.completion(ev[1], rid)
                        if restore is not None:
                            restore.completion(body)
                            for key in list(restore.buffers):
                                rest = restore.flush(key, in_json=key != "text")
                                if rest:
                                    yield writer.event(("text", rest) if key == "text" else ("args", key[1], rest))
                        if capture is not None:  # durable before the client sees the end
                            await record(logged, request.headers, started, body, label, route)
                        yield writer.end(ev[1], body)
                        return
                    if ev[0] == "error":
                        yield failed(ev[1])
                        return
                    if restore is not None and ev[0] in ("text", "args"):
                        key = "text" if ev[0] == "text" else ("args", ev[1])
                        frag = restore.feed(key, ev[-1], in_json=ev[0] != "text")
                        ev = (*ev[:-1], frag)
                        if not frag:
                            continue
                    yield writer.event(ev)
            except Exception as e:  # noqa: BLE001 - the 200 has gone out: the error goes in the stream
                log.exception("stream failed")
                yield failed(e if isinstance(e, EdgeError) else BackendError(
                    f"the stream failed ({type(e).__name__}); the server log has the details"))
            finally:
                job.cancelled.set()

        def failed(e: EdgeError) -> str:
            """The error event of a stream that fails after its 200: the access line and /metrics count
            the error's status, not the 200 that went out first."""
            status, etype = errors.status_of(e)
            access.update(status=status, error=e.code)
            return writer.error(status, etype, e.message, e.code, e.param)

        return StreamingResponse(stream(), media_type="text/event-stream",
                                 headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no", **headers})

    def openapi() -> dict:
        """FastAPI's schema, with the request models the routes validate by hand."""
        if app.openapi_schema is None:
            from fastapi.openapi.utils import get_openapi

            doc = get_openapi(title=app.title, version=app.version, routes=app.routes)
            schemas = doc.setdefault("components", {}).setdefault("schemas", {})
            for name, cls in _FORMATS.items():
                model = cls.model_json_schema(ref_template="#/components/schemas/{model}")
                schemas.update(model.pop("$defs", {}))
                schemas[name] = model
            app.openapi_schema = doc
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
    return app


def _emitter(loop: asyncio.AbstractEventLoop, events: asyncio.Queue):
    """A job's emit: events from the worker thread into this request's queue on the event loop."""
    def emit(ev: tuple) -> None:
        loop.call_soon_threadsafe(events.put_nowait, ev)
    return emit


def api_key(st) -> str | None:
    """The key clients must send, from the variable --api-key-env names (checked at start-up)."""
    import os

    return os.environ.get(st.api_key_env) or None if st.api_key_env else None


def allowed_hosts(st) -> list[str]:
    """The Host names this server answers: the allow-list, plus the address it is bound to."""
    hosts = [h.strip() for h in st.allowed_hosts.split(",") if h.strip()]
    if st.host not in ("0.0.0.0", "::", ""):
        hosts.append(f"[{st.host}]" if ":" in st.host else st.host)
    return hosts
