"""S6, the router's training: from the clusters to `EDGESLM_HOME/router/router.json`, which `serve`
reads (edgeslm/router.py) to send model "auto" requests to a task adapter or to the teacher.

Owns fitting and measuring the router: a multinomial logistic regression (scikit-learn) on the
request-side features of the curated calls' training split (text embedding + system-prompt hash),
one class per cluster; its accuracy and confident share on the held-out split; and drift, the share
of new calls the current router is unsure about.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from edgeslm import router as runtime

SYSTEM_WEIGHT = 0.25
THRESHOLD = 0.8  # below this top-class probability a request goes to the teacher


def _x(examples: list[dict], systems: list[str], vectors: np.ndarray | None = None) -> np.ndarray:
    if vectors is None:
        vectors = runtime.embed([runtime.user_text(e["messages"]) for e in examples])
    return runtime.features(vectors, [runtime.system_hash(e["messages"]) for e in examples], systems, SYSTEM_WEIGHT)


def train(examples: list[dict], labels: list[int], classes: list[dict], train_idx: list[int], held_idx: list[int],
          threshold: float = THRESHOLD, vectors: np.ndarray | None = None) -> tuple[dict, dict]:
    """(the router spec, its held-out metrics). `classes[i]` describes cluster i: {"cluster", "label",
    "promoted", "base", "task", "reason"}; `labels` are the clusters of `examples`."""
    from sklearn.linear_model import LogisticRegression

    systems = sorted({runtime.system_hash(e["messages"]) for e in examples})
    x = _x(examples, systems, vectors)
    y = np.asarray(labels)
    k = len(classes)
    coef, intercept = np.zeros((k, x.shape[1])), np.full(k, -1e4)  # a class absent from training never wins
    seen = sorted(set(y[train_idx].tolist()))
    if len(seen) == 1:
        intercept[seen[0]] = 0.0
    else:
        model = LogisticRegression(C=10.0, max_iter=2000).fit(x[train_idx], y[train_idx])
        w, b = model.coef_, model.intercept_
        if len(seen) == 2:  # scikit-learn keeps one row for two classes; as softmax it is ±half of it
            w, b = np.vstack([-w[0] / 2, w[0] / 2]), np.array([-b[0] / 2, b[0] / 2])
        coef[model.classes_], intercept[model.classes_] = w, b
    spec = {"version": 1, "created": time.time(), "embedder": "all-MiniLM-L6-v2", "threshold": threshold,
            "systems": systems, "system_weight": SYSTEM_WEIGHT, "classes": classes,
            "coef": coef.tolist(), "intercept": intercept.tolist()}
    return spec, measure(spec, x[held_idx], y[held_idx])


def _probabilities(spec: dict, x: np.ndarray) -> np.ndarray:
    r = runtime.Router.__new__(runtime.Router)
    r.classes, r.coef, r.intercept = spec["classes"], np.asarray(spec["coef"]), np.asarray(spec["intercept"])
    return r.probabilities(x)


def measure(spec: dict, x: np.ndarray, y: np.ndarray) -> dict:
    if not len(x):
        return {"n": 0, "accuracy": None, "confident": None, "accuracy_confident": None}
    p = _probabilities(spec, x)
    pred, conf = p.argmax(axis=1), p.max(axis=1) >= spec["threshold"]
    return {"n": int(len(x)), "accuracy": float((pred == y).mean()), "confident": float(conf.mean()),
            "accuracy_confident": float((pred[conf] == y[conf]).mean()) if conf.any() else None,
            "predicted": pred.tolist()}


def drift(path: Path, examples: list[dict]) -> dict:
    """How the router saved at `path` sees `examples` (calls since it was trained): the share it is
    unsure about. None when there is no router yet."""
    if not Path(path).is_file() or not examples:
        return {"unsure": None, "n": len(examples)}
    r = runtime.Router(path)
    p = r.scores([e["messages"] for e in examples])
    return {"unsure": float((p.max(axis=1) < r.threshold).mean()), "n": len(examples)}


def save(spec: dict, path: Path) -> Path:
    """Written whole or not at all: `serve` re-reads the router when the file changes."""
    from edgeslm.pipeline.cluster import save as save_json

    return save_json(spec, path)
