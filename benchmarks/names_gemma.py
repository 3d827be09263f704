"""Issue 24, item 6: S2's person-name detector (edgeslm/names.py), trained and judged. A probe on the
embedded model's own hidden states (Gemma 3 270M, cased and multilingual, where MiniLM is neither) and each
word's shape; no list of names when it runs.

    pip install names-dataset     # training only, not a dependency of edgeslm: the names it draws
    python -m benchmarks.names_gemma [--sentences 2000] [--real 1000] [--cache FILE.pkl] [--export]

Training sentences are benchmarks/names_probe.py's templates, plus places named after people (negatives:
"Book a ride to <name> Airport"), with names drawn from names-dataset (MIT; 730k first and 980k last names
from 105 countries) by country, **leaving out every name token of the eval file**, and 1,000 Seal-Tools
requests whose lower-case words are negatives. Judged on benchmarks/data/names_eval.jsonl (300 requests,
233 names, written by a helper who saw none of this project's lists; 100 hard negatives: brands, streets
and places named after people). Features per word (edgeslm.names.features): the mean and last token
state of layers 6 and 12, the word's shape; the next word's state and both neighbours' shapes. A
128-unit MLP; `--export` writes its weights where edgeslm.names reads them.

Exploration runs, 2026-12-03 (2,000 + 1,000 sentences, features 26 min on one busy core): recall 0.931,
precision 0.939 at p >= 0.5 with name-list and word-frequency features; 0.927 / 0.964 without them (the
hidden states do the work; MiniLM's probe: 0.876 / 0.752), which is what ships: nothing to look up when
it runs. Misses: names that are words or places (Summer, Hope, Georgia, Dallas, Brooklyn, "Paris
Hilton") and some full names; false positives: titles (Dr, Dra) and Spanish or Portuguese words. What
it can show: that the detector finds names no list of ours holds (the eval's names are left out of
training). What it cannot: the eval is one helper's 300 requests.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import pickle
import random
import re
import time
from pathlib import Path

import numpy as np

from benchmarks import names_probe as P

EVAL = "benchmarks/data/names_eval.jsonl"
LAYERS = (6, 12)
PLACES = ["Airport", "International Airport", "Street", "Avenue", "Square", "Park", "Bridge", "University", "Hospital",
          "Center", "Foundation", "Prize", "Award", "Stadium", "Station", "Boulevard", "Memorial", "Library", "Hall"]
NEGATIVES = ["Book a ride to {p} {pl}", "How do I get to {p} {pl}?", "Meet me at {p} {pl} at 5", "Is {p} {pl} open today?",
             "Deliver to 12 {p} {pl}", "Find a hotel near the {p} {pl}", "Avenida {p} 1200, please", "Rua {p} 45"]


class Lists:
    """names-dataset's first and last names by country (the 3,000 most common of each), to draw from."""

    def __init__(self, leave_out: set[str]):
        import names_dataset

        folder = os.path.join(os.path.dirname(names_dataset.__file__), "v3")
        self.first = pickle.load(gzip.open(os.path.join(folder, "first_names.pkl.gz")))
        self.last = pickle.load(gzip.open(os.path.join(folder, "last_names.pkl.gz")))
        self.by_country: dict[str, tuple[list[str], list[str]]] = {}
        for i, table in enumerate((self.first, self.last)):
            for word, entry in table.items():
                if word.isalpha() and len(word) > 1 and word.lower() not in leave_out:
                    for country, rank in (entry.get("rank") or {}).items():
                        if rank <= 3000:
                            self.by_country.setdefault(country, ([], []))[i].append(word)
        self.countries = sorted(c for c, (f, la) in self.by_country.items() if f and la)

    def name(self, rng: random.Random) -> str:
        first, last = self.by_country[rng.choice(self.countries)]
        k = rng.random()
        if k < 0.3:
            return rng.choice(first)
        if k < 0.8:
            return f"{rng.choice(first)} {rng.choice(last)}"
        if k < 0.88:
            return f"{rng.choice(first)} {rng.choice(P.PARTICLE)} {rng.choice(last)}"
        if k < 0.94:
            return f"{rng.choice(first)} {rng.choice(last)}-{rng.choice(last)}"
        return rng.choice(last)


def sentence(rng: random.Random, lists: Lists) -> tuple[str, list[str]]:
    r, names = rng.random(), []
    if r < 0.55:
        text, lower = rng.choice(P.TEMPLATES_P), rng.random() < 0.15
        for key in ("{n}", "{n2}", "{s}"):
            if key in text:
                value = lists.name(rng).split()[-1] if key == "{s}" else lists.name(rng)
                value = value.lower() if lower else value
                names.append(value)
                text = text.replace(key, value, 1)
    elif r < 0.7:
        text = rng.choice(NEGATIVES).replace("{p}", lists.name(rng)).replace("{pl}", rng.choice(PLACES))
    else:
        text = rng.choice(P.TEMPLATES_N)
    text = text.format(city=rng.choice(P.CITIES), city2=rng.choice(P.CITIES), thing=rng.choice(P.THINGS),
                       thing2=rng.choice(P.THINGS), month=rng.choice(P.MONTHS), title=rng.choice(P.TITLES))
    return (text[0].lower() + text[1:] if rng.random() < 0.3 else text), names


def featurize(texts: list[str], finder) -> list[tuple[list, np.ndarray]]:
    """Each text's words and their features, as edgeslm.names computes them when it runs."""
    from edgeslm import names

    out = []
    for n, text in enumerate(texts):
        if n % 250 == 0:
            print(f"  features {n}/{len(texts)}", flush=True)
        states, offsets = finder.states(text)
        out.append(names.features(text, states, offsets))
    return out


def found(e: dict, got: list[str]) -> tuple[int, int, int]:
    """(true positives, false positives, misses) of one eval request: a span counts where it is a name
    or holds one or is held by one (a title left on, "Dr Ana Ruiz", is still the name found)."""
    want = e["names"]
    tp = sum(any(g == w or g in w or w in g for w in want) for g in got)
    return tp, len(got) - tp, sum(not any(g == w or g in w or w in g for g in got) for w in want)


def main() -> None:
    import torch
    from sklearn.neural_network import MLPClassifier

    from edgeslm import names

    ap = argparse.ArgumentParser()
    ap.add_argument("--sentences", type=int, default=2000)
    ap.add_argument("--real", type=int, default=1000)
    ap.add_argument("--cache", help="features are read from / written to this pickle")
    ap.add_argument("--export", action="store_true", help=f"write the probe's weights to {names.WEIGHTS}")
    a = ap.parse_args()
    torch.set_num_threads(1)
    evals = [json.loads(line) for line in open(EVAL)]
    leave_out = {w.lower() for e in evals for n in e["names"] for w in re.findall(r"[^\W\d_]+", n)}
    lists = Lists(leave_out)
    rng = random.Random(0)
    train = [sentence(rng, lists) for _ in range(a.sentences)]
    real = P.real_queries(a.real, rng)
    t0 = time.time()
    if a.cache and os.path.exists(a.cache):
        feats, feats_eval = pickle.load(open(a.cache, "rb"))
    else:
        finder = names.Finder(weights=Path("/nonexistent"))
        feats = featurize([t for t, _ in train] + real, finder)
        feats_eval = featurize([e["text"] for e in evals], finder)
        if a.cache:
            pickle.dump((feats, feats_eval), open(a.cache, "wb"))
    print(f"features in {time.time() - t0:.0f} s")
    x = np.concatenate([f for _, f in feats])
    y = np.concatenate([P.labels(t, ws, n) for (t, n), (ws, _) in zip(train, feats, strict=False)]
                       + [np.zeros(len(ws), int) for ws, _ in feats[len(train):]])
    # a real request's capitalized words may be names: only its lower-case ones are taken as negatives
    lower = [np.array([not t[s:e][:1].isupper() for s, e in ws], bool) for t, (ws, _) in zip(real, feats[len(train):], strict=True)]
    keep = np.concatenate([np.ones(len(ws), bool) for ws, _ in feats[:len(train)]] + lower)
    clf = MLPClassifier((128,), max_iter=300, early_stopping=True, random_state=0).fit(x[keep], y[keep])
    probe = names.Probe.__new__(names.Probe)
    probe.w1, probe.b1 = clf.coefs_[0].astype(np.float32), clf.intercepts_[0].astype(np.float32)
    probe.w2, probe.b2 = clf.coefs_[1].astype(np.float32), clf.intercepts_[1].astype(np.float32)
    tp = fp = fn = 0
    for e, (ws, f) in zip(evals, feats_eval, strict=True):
        got = [e["text"][s:t] for s, t in names.spans(e["text"], ws, probe(f))] if len(ws) else []
        a_, b_, c_ = found(e, got)
        tp, fp, fn = tp + a_, fp + b_, fn + c_
    total = sum(len(e["names"]) for e in evals)
    print(f"recall {1 - fn / total:.3f}  precision {tp / max(1, tp + fp):.3f}  ({total} names, {len(evals)} requests)")
    if a.export:
        names.WEIGHTS.parent.mkdir(parents=True, exist_ok=True)
        np.savez_compressed(names.WEIGHTS, w1=probe.w1.astype(np.float16), b1=probe.b1, w2=probe.w2, b2=probe.b2)
        print(f"wrote {names.WEIGHTS} ({names.WEIGHTS.stat().st_size / 2**20:.1f} MiB)")


if __name__ == "__main__":
    main()
