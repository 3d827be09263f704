"""What the web page's status view shows, as one JSON document (GET /v1/status): the models in the
store and what each resident one is doing, the adapters, recent decode speed, the newest `qualify`
verdict and the newest `convert` report. Reports are read as files from the store, never by importing
the code that wrote them."""

from __future__ import annotations

import json
from pathlib import Path

from edgeslm.store.adapters import AdapterStore


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
    loaded = {w.entry.id: w for w in engine.loaded()}
    models = []
    for e in cat.entries:
        if e.id not in loaded and not cat.is_local(e):
            continue
        row: dict = {"id": e.id, "loaded": e.id in loaded, "default_adapter": e.default_adapter or None}
        w = loaded.get(e.id)
        if w is not None:
            row.update(requests=w.busy(), slots=st.parallel, n_ctx=w.backend.n_ctx, dead=w.dead,
                       kv_cells_used=w.backend.used_cells() if w.backend.capabilities.prefix_share else None)
        models.append(row)
    adapters = [{"base": a.base, "task": a.task, "source": a.manifest.get("source")}
                for a in AdapterStore(st.adapters_dir).all()]
    return {"models": models, "adapters": adapters, "decode_tokens_per_s": metrics.recent_speed(),
            "qualify": _qualify(st.home), "convert": _convert(st.home)}
