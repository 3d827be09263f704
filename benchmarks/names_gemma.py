"""Issue 24, item 6, the second candidate for S2 person names: a probe on the embedded model's own
hidden states (Gemma 3 270M, cased and multilingual, where MiniLM is neither), with two public word
lists as features: the names-dataset package (MIT; 730k first and 980k last names from 105 countries,
with their rank per country) and wordfreq's word frequencies (en, es, fr, de).

    pip install names-dataset wordfreq        # not dependencies of edgeslm: this is an experiment
    python -m benchmarks.names_gemma [--sentences 2000] [--real 1000] [--cache FILE.pkl] [--drop-lists]

Training sentences are benchmarks/names_probe.py's templates, plus places named after people (negatives:
"Book a ride to <name> Airport"), with names drawn from names-dataset by country, **leaving out every
name token of the eval file**, and 1,000 Seal-Tools requests whose lower-case words are negatives.
Judged on benchmarks/data/names_eval.jsonl (300 requests, 233 names, written by a helper; 100 hard
negatives), as names_probe.py judges. Features per word: the mean and last token state of layers 6 and
12, the word's shape, its best rank as a first and a last name, its frequency as a word; the next word's
state, and both neighbours' shape and list features. A 128-unit MLP.

Exploration runs, 2026-12-03 (the same features and probe; their sentence sampler drew the {s} surname
from the last-name lists rather than from a drawn name, and the pools were built the same way; 2,000 +
1,000 sentences, features 26 min on one busy core): recall 0.931, precision 0.939 at p >= 0.5 with the
lists; 0.927 / 0.964 without them (--drop-lists): the hidden states do the work (MiniLM's probe: 0.876 /
0.752). This script's own first full run was stopped for CPU; run it to confirm. Misses: names that are
words or places (Summer, Hope, Georgia, Dallas, Brooklyn, "Paris Hilton") and some full names; false
positives: titles (Dr, Dra) and Spanish or Portuguese words. Still short of the issue's 0.99 / 0.95, so
not wired into privacy.find. What it can show: that the detector finds names no list of ours holds
(the eval's names are left out of training). What it cannot: the eval is one helper's 300 requests.
"""

from __future__ import annotations

import argparse
import gzip
import json
import math
import os
import pickle
import random
import re
import time

import numpy as np

from benchmarks import names_probe as P

EVAL = "benchmarks/data/names_eval.jsonl"
LAYERS = (6, 12)
PLACES = ["Airport", "International Airport", "Street", "Avenue", "Square", "Park", "Bridge", "University", "Hospital",
          "Center", "Foundation", "Prize", "Award", "Stadium", "Station", "Boulevard", "Memorial", "Library", "Hall"]
NEGATIVES = ["Book a ride to {p} {pl}", "How do I get to {p} {pl}?", "Meet me at {p} {pl} at 5", "Is {p} {pl} open today?",
             "Deliver to 12 {p} {pl}", "Find a hotel near the {p} {pl}", "Avenida {p} 1200, please", "Rua {p} 45"]


class Lists:
    """names-dataset's ranks and wordfreq's frequencies, as features of a word."""

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

    @staticmethod
    def _best(table: dict, word: str) -> tuple[float, float, float]:
        entry = table.get(word) or table.get(word.capitalize())
        if entry is None:
            return 0.0, 0.0, 0.0
        rank = min(entry["rank"].values()) if entry.get("rank") else None
        return 1.0, (1 - math.log(rank) / math.log(1e5)) if rank else 0.0, len(entry.get("country") or {}) / 20

    def features(self, word: str) -> np.ndarray:
        import wordfreq

        out = np.zeros(10, np.float32)
        for part in [p for p in re.split(r"[-’']", word) if p] or [word]:
            out[:3] = np.maximum(out[:3], self._best(self.first, part))
            out[3:6] = np.maximum(out[3:6], self._best(self.last, part))
        out[6:] = [wordfreq.zipf_frequency(word.lower(), lang) / 8 for lang in ("en", "es", "fr", "de")]
        return out

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


def featurize(texts: list[str], lists: Lists) -> list[tuple[list, np.ndarray]]:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from edgeslm.config import Settings
    from edgeslm.store.dequantized import checkpoint
    from edgeslm.store.registry import Catalog

    st = Settings()
    cat = Catalog(st)
    folder = checkpoint(cat.ensure_local(cat.get("default")), st.cache)
    tok = AutoTokenizer.from_pretrained(folder)
    model = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32).eval()
    out = []
    with torch.no_grad():
        for n, text in enumerate(texts):
            if n % 250 == 0:
                print(f"  features {n}/{len(texts)}", flush=True)
            enc = tok(text, return_offsets_mapping=True, return_tensors="pt")
            offsets = enc.pop("offset_mapping")[0].tolist()
            states = model(**enc, output_hidden_states=True).hidden_states
            h = torch.cat([states[layer][0] for layer in LAYERS], -1).numpy()
            ws = P.words(text)
            rows = []
            for i, (a, b) in enumerate(ws):
                idx = [j for j, (x, y) in enumerate(offsets) if y > x and x < b and y > a]
                state = np.concatenate([h[idx].mean(0), h[idx[-1]]]) if idx else np.zeros(2 * h.shape[1], np.float32)
                w = text[a:b]
                before = text[ws[i - 1][0]:ws[i - 1][1]] if i else ""
                after = text[ws[i + 1][0]:ws[i + 1][1]] if i + 1 < len(ws) else ""
                first = i == 0 or text[max(0, a - 2):a].strip() in (".", "!", "?", ":")
                shape = [w[:1].isupper(), w.isupper() and len(w) > 1, w.islower(), first, len(w) / 10, before[:1].isupper(),
                         after[:1].isupper(), "-" in w, w.lower() in P.PARTICLES, text[b:b + 2] in ("'s", "’s")]
                rows.append(np.concatenate([state, np.asarray(shape, np.float32), lists.features(w)]))
            d = 2 * h.shape[1]
            x = np.stack(rows) if rows else np.zeros((0, d + 20), np.float32)
            if len(x):  # the next word's state (a causal model's states see only the left), both neighbours' words
                pad = np.zeros((1, x.shape[1]), np.float32)
                nxt, prev = np.concatenate([x[1:], pad]), np.concatenate([pad, x[:-1]])
                x = np.concatenate([x, nxt[:, :d], nxt[:, d:], prev[:, d:]], 1)
            else:
                x = np.zeros((0, 2 * d + 60), np.float32)
            out.append((ws, x))
    return out


def main() -> None:
    from sklearn.neural_network import MLPClassifier

    ap = argparse.ArgumentParser()
    ap.add_argument("--sentences", type=int, default=2000)
    ap.add_argument("--real", type=int, default=1000)
    ap.add_argument("--cache", help="features are read from / written to this pickle")
    ap.add_argument("--drop-lists", action="store_true", help="ablation: without the name and word-frequency lists")
    a = ap.parse_args()
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
        feats = featurize([t for t, _ in train] + real, lists)
        feats_eval = featurize([e["text"] for e in evals], lists)
        if a.cache:
            pickle.dump((feats, feats_eval), open(a.cache, "wb"))
    print(f"features in {time.time() - t0:.0f} s")
    x = np.concatenate([f for _, f in feats])
    y = np.concatenate([P.labels(t, ws, n) for (t, n), (ws, _) in zip(train, feats, strict=False)]
                       + [np.zeros(len(ws), int) for ws, _ in feats[len(train):]])
    lower = [np.array([not t[s:e][:1].isupper() for s, e in ws], bool) for t, (ws, _) in zip(real, feats[len(train):], strict=True)]
    keep = np.concatenate([np.ones(len(ws), bool) for ws, _ in feats[:len(train)]] + lower)
    cols = np.ones(x.shape[1], bool)
    if a.drop_lists:
        d = (x.shape[1] - 60) // 2
        for start in (d + 10, 2 * d + 30, 2 * d + 50):
            cols[start:start + 10] = False
    clf = MLPClassifier((128,), max_iter=300, early_stopping=True, random_state=0).fit(x[keep][:, cols], y[keep])
    tp = fp = fn = 0
    for e, (ws, f) in zip(evals, feats_eval, strict=True):
        p = clf.predict_proba(f[:, cols])[:, 1] if len(f) else []
        got, want = P.spans(e["text"], ws, p, 0.5), e["names"]
        tp += sum(any(g == w or g in w or w in g for w in want) for g in got)
        fp += sum(not any(g == w or g in w or w in g for w in want) for g in got)
        fn += sum(not any(g == w or g in w or w in g for g in got) for w in want)
    total = sum(len(e["names"]) for e in evals)
    print(f"recall {1 - fn / total:.3f}  precision {tp / max(1, tp + fp):.3f}  ({total} names, {len(evals)} requests)")


if __name__ == "__main__":
    main()
