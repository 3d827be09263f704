"""What the web page's status view shows, as one JSON document (GET /v1/status): the models in the
store and what each resident one is doing, the adapters, recent decode speed, the newest `qualify`
verdict and the newest `convert` report. Reports are read as files from the store, never by importing
the code that wrote them. Also the model list of GET /v1/models."""

from __future__ import annotations

import json
from pathlib import Path

from edgeslm.decoding import sampler
from edgeslm.errors import EdgeError
from edgeslm.store.adapters import AdapterStore
from edgeslm.store.gguf_io import read_metadata


def _newest(folder: Path, pattern: str) -> Path | None:
    files = sorted(folder.glob(pattern), key=lambda p: (p.stat().st_mtime, p.name)) if folder.is_dir() else []
    return files[-1] if files else None


def _qualify(home: Path) -> dict | None:
    path = _newest(home / "reports" / "qualify", "*.json")
    if path is None:
        return None
    try:
        r = json.loads(path.read_text())
    except (OSError, ValueError):
        return {"name": path.stem, "error": "unreadable"}
    v = r.get("verdict") or {}
    return {"name": path.stem, "created": r.get("created"), "overall": v.get("overall"), "device": v.get("device"),
            "profile": v.get("profile"), "criteria": v.get("criteria"),
            "chart": f"/v1/status/qualify/{path.stem}.png" if path.with_suffix(".png").is_file() else None}


def _convert(home: Path) -> dict | None:
    path = home / "pipeline" / "report" / "report.json"
    try:
        r = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return {"created": r.get("created"), "calls": (r.get("curate") or {}).get("calls"),
            "tasks": [{"task": t.get("task"), "promoted": t.get("promoted"), "reason": t.get("why") or t.get("reason")}
                      for t in r.get("tasks") or []]}


def qualify_chart(home: Path, name: str) -> Path | None:
    """The PNG of a qualify report by name (only names of files that are there: no path walks out)."""
    folder = home / "reports" / "qualify"
    match = [p for p in folder.glob("*.png") if p.stem == name] if folder.is_dir() else []
    return match[0] if match else None


def status(engine, metrics) -> dict:
    st, cat = engine.settings, engine.catalog
    loaded: dict = {}  # a model is loaded when it or its folded copy is (the copy serves its default requests)
    for w in sorted(engine.loaded(), key=lambda w: w.folded is not None):
        loaded.setdefault(w.entry.id, w)
    copies = {w.entry.id: w.name for w in engine.loaded() if w.folded is not None}
    models = []
    for e in cat.entries:
        if e.id not in loaded and not cat.is_local(e):
            continue
        row: dict = {"id": e.id, "loaded": e.id in loaded, "default_adapter": e.default_adapter or None,
                     "folded_copy": copies.get(e.id)}
        w = loaded.get(e.id)
        if w is not None:
            row.update(requests=w.busy(), slots=st.parallel, n_ctx=w.backend.n_ctx, dead=w.dead,
                       kv_cells_used=w.backend.used_cells() if w.backend.capabilities.prefix_share else None)
        models.append(row)
    adapters = [{"base": a.base, "task": a.task, "source": a.manifest.get("source")}
                for a in AdapterStore(st.adapters_dir).all()]
    return {"models": models, "adapters": adapters, "decode_tokens_per_s": metrics.recent_speed(),
            "qualify": _qualify(st.home), "convert": _convert(st.home)}


def model_list(engine) -> list[dict]:
    """/v1/models: the local models and their adapters, each with the sampling defaults a request that
    names it and leaves the fields out gets (`sampling`), and where each value comes from."""
    cat, store = engine.catalog, AdapterStore(engine.settings.adapters_dir)
    workers = {w.entry.id: w for w in engine.loaded()}  # the model or its folded copy: the same metadata
    entries = [e for e in cat.entries if e.id in workers or cat.is_local(e)]
    meta = {e.id: workers[e.id].backend.metadata if e.id in workers
            else (read_metadata(cat.path_of(e)) if e.format == "gguf" else {}) for e in entries}

    def card(name: str, adapters: list, entry) -> dict:
        values, origin = sampler.effective({}, sampler.layers(adapters, entry, meta[entry.id]))
        return {"id": name, "object": "model", "created": 0, "owned_by": "edgeslm",
                "loaded": entry.id in workers, "sampling": values, "sampling_from": origin}

    data = []
    for e in entries:  # a request naming the model runs under its default adapter, when it has one
        try:
            default = [store.get(e.id, e.default_adapter, e.sha256)] if e.default_adapter and store.has(
                e.id, e.default_adapter) else []
        except EdgeError:  # a damaged adapter is reported when a request meets it
            default = []
        data.append({**card(e.id, default, e), "aliases": e.aliases})
    by_id = {e.id: e for e in entries}
    data += [{**card(f"{a.base}@{a.task}", [a], by_id[a.base]), "aliases": [], "adapter": a.task,
              "parent": a.base} for a in store.all() if a.base in by_id]
    return data
