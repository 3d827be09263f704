"""S2's person names (edgeslm/names.py) with the shipped probe on the real embedded model: it finds names on
benchmarks/data/names_eval.jsonl (written by a helper; every name in it was left out of the probe's
training, and a third of its requests are hard negatives: brands, streets and places named after people),
and curation replaces a name it found with one fake wherever the name stands again, the call's JSON
arguments included, which the model does not read."""

import json
from pathlib import Path

import pytest

from edgeslm import names, privacy
from edgeslm.config import get_settings

EVAL = Path(__file__).resolve().parent.parent / "benchmarks" / "data" / "names_eval.jsonl"


@pytest.fixture(scope="module")
def finder(tmp_path_factory):
    return names.Finder(get_settings(home=tmp_path_factory.mktemp("home")))


def test_names_no_list_holds_are_found_and_look_alikes_are_not(finder):
    rows = [json.loads(line) for line in EVAL.read_text().splitlines()]
    tp = fp = fn = 0
    for r in rows:
        got = [r["text"][a:b] for a, b in finder.find(r["text"])]
        hit = [any(g in w or w in g for w in r["names"]) for g in got]
        tp, fp = tp + sum(hit), fp + len(hit) - sum(hit)
        fn += sum(not any(g in w or w in g for g in got) for w in r["names"])
    recall, precision = 1 - fn / sum(len(r["names"]) for r in rows), tp / max(tp + fp, 1)
    # measured when the probe was trained (benchmarks/names_gemma.py): see the floor's note in the README;
    # a probe not loaded, features out of step with training, or spans cut wrong fall far below
    assert recall >= 0.9 and precision >= 0.9, (recall, precision)  # 0.948 / 0.957 as shipped (session 31)


def test_a_name_is_replaced_the_same_in_the_request_and_the_call(finder):
    redact = privacy.Redactor(surrogates=True, seed=3, names=finder.find)
    ask = privacy.redact_message({"role": "user", "content": "Send the contract to Thandiwe Mokoena before Friday."}, redact)
    call = privacy.redact_message({"role": "assistant", "content": None, "tool_calls": [{"type": "function", "function": {
        "name": "send", "arguments": json.dumps({"to": "Thandiwe Mokoena", "what": "contract"})}}]}, redact)
    fake = redact.seen[(privacy.NAME, "Thandiwe Mokoena")]
    assert "Thandiwe" not in ask["content"] and fake in ask["content"] and len(fake.split()) == 2
    assert json.loads(call["tool_calls"][0]["function"]["arguments"]) == {"to": fake, "what": "contract"}
    # an answer that writes the fake gets the name back, in text and in JSON
    back = privacy.Restorer(redact)
    assert back(f"Sent to {fake}.") == "Sent to Thandiwe Mokoena."
    assert json.loads(back(json.dumps({"to": fake}), in_json=True)) == {"to": "Thandiwe Mokoena"}
    # a name outside ASCII stands JSON-escaped in the arguments (`Bego\u00f1a`): replaced all the same
    redact = privacy.Redactor(surrogates=True, seed=4, names=finder.find)
    ask = privacy.redact_message({"role": "user", "content": "Put 'Lunch with Begoña Etxebarria' in my calendar."}, redact)
    call = privacy.redact_message({"role": "assistant", "content": None, "tool_calls": [{"type": "function", "function": {
        "name": "create_event", "arguments": json.dumps({"title": "Lunch with Begoña Etxebarria"})}}]}, redact)
    title = json.loads(call["tool_calls"][0]["function"]["arguments"])["title"]
    assert "Begoña" not in ask["content"] and "Begoña" not in title and f"'{title}'" in ask["content"]
    # without a finder, names stay (serve's per-request redaction)
    assert privacy.Redactor(surrogates=True, seed=3)("Send it to Thandiwe Mokoena.") == "Send it to Thandiwe Mokoena."


def test_curation_replaces_names_and_reports_them(finder, tmp_path):
    from edgeslm.pipeline import curate
    from edgeslm.store.capture import CaptureStore

    store = CaptureStore(tmp_path / "calls.db")
    store.add({"source": "serve", "client": "tests", "model": "m", "latency_s": 0.1, "finish_reason": "tool_calls",
               "request": {"messages": [{"role": "user", "content": "Book a table for Oluwaseun Adebayo at 8pm."}],
                           "tools": [{"type": "function", "function": {"name": "book", "parameters": {"type": "object"}}}]},
               "response": {"choices": [{"finish_reason": "tool_calls", "message": {
                   "role": "assistant", "content": None, "tool_calls": [{"id": "1", "type": "function", "function": {
                       "name": "book", "arguments": json.dumps({"name": "Oluwaseun Adebayo", "time": "20:00"})}}]}}]}})
    report = curate.curate(tmp_path / "calls.db", tmp_path / "curated.db", names=finder.find)
    assert report["pii"][privacy.NAME] == 2 and report["not_covered"] == []
    (ex,) = curate.examples(tmp_path / "curated.db")
    fake = json.loads(ex["answer"]["tool_calls"][0]["function"]["arguments"])["name"]
    assert "Oluwaseun" not in json.dumps(ex) and fake in ex["messages"][0]["content"]
    assert curate.curate(tmp_path / "calls.db", tmp_path / "again.db")["not_covered"] == [privacy.NAME]


def test_names_found_are_kept_for_the_next_run(finder):
    """Curation runs again on every `convert run`: a text read before is not read again (only its digest
    and the offsets are kept, in a file private to the user)."""
    text = "Please forward the invoice to Mirela Stoica today."
    first = finder.find(text)
    assert first and "Mirela" in text[first[0][0]:first[0][1]]
    again = names.Finder(finder.settings)
    assert again.find(text) == first and again._model is None  # read back: the model never loaded
    (kept,) = (finder.settings.cache / "names").glob("spans-*.jsonl")
    assert "Mirela" not in kept.read_text() and kept.stat().st_mode & 0o077 == 0


def test_spans_join_particles_and_the_words_a_name_is_sure_of():
    text = "Lunch with Sakura Yamamoto and Ana de la Cruz, then Paris tomorrow"
    ws = names.words(text)
    p = dict.fromkeys(range(len(ws)), 0.0)
    p.update({2: 0.3, 3: 0.9, 5: 0.9, 8: 0.8, 10: 0.3})  # Sakura, Yamamoto, Ana, Cruz, Paris
    got = [text[a:b] for a, b in names.spans(text, ws, [p[i] for i in range(len(ws))])]
    # "Sakura" joins the name the probe is sure of; "de la" joins two name words; "Paris" alone is below
    assert got == ["Sakura Yamamoto", "Ana de la Cruz"]
    p[2] = 0.1  # below JOIN: the name is what the probe found
    assert [text[a:b] for a, b in names.spans(text, ws, [p[i] for i in range(len(ws))])] == ["Yamamoto", "Ana de la Cruz"]
    # a word written otherwise (lower case beside a capitalized name) or after punctuation does not join
    text = "ask maria Lopez, Garcia too"
    ws = names.words(text)
    assert [text[a:b] for a, b in names.spans(text, ws, [0.0, 0.3, 0.9, 0.3, 0.0])] == ["Lopez"]
    # a word between two sure ones joins both into one name (one person, one fake), and particles join
    # nothing across punctuation
    for text, p, want in (("Ana Maria Lopez", [0.9, 0.3, 0.9], ["Ana Maria Lopez"]),
                          ("Maria, de la Cruz", [0.9, 0.0, 0.0, 0.9], ["Maria", "Cruz"]),
                          ("Ana de, Cruz", [0.9, 0.0, 0.9], ["Ana", "Cruz"]),
                          # a name is written one way: lower-case words beside a capitalized one are not in it
                          # (particles between two name words are), a name written all in lower case is whole
                          ("Pon Jürgen en mi calendario", [0.0, 0.9, 0.85, 0.5, 0.5], ["Jürgen"]),
                          ("Ana de la cruz", [0.9, 0.0, 0.0, 0.9], ["Ana"]),
                          ("ask anushka okafor", [0.0, 0.9, 0.9], ["anushka okafor"]),
                          ("Hassan al-Rashid", [0.9, 0.9], ["Hassan al-Rashid"]),  # not all in lower case
                          ("Ask Ana 王伟", [0.0, 0.9, 0.9], ["Ana 王伟"])):  # no case at all
        assert [text[a:b] for a, b in names.spans(text, names.words(text), p)] == want


def test_a_full_name_found_in_one_call_is_replaced_in_another_where_the_model_missed_it(tmp_path):
    """The finder here is a stand-in that finds a name only after "with " (so it misses the second call's):
    what is tested is curation's store-wide pass, not the model, which the tests above exercise."""
    import re

    from edgeslm.pipeline import curate

    def after_with(text):
        return [m.span(1) for m in re.finditer(r"with ([A-Z]\w+(?: [A-Z]\w+)*)", text)]

    _capture(tmp_path / "calls.db", ["Lunch with Mirela Stoica on Friday", "Send Mirela Stoica the notes", "Ask Mirela about it"])
    report = curate.curate(tmp_path / "calls.db", tmp_path / "curated.db", names=after_with)
    texts = [ex["messages"][0]["content"] for ex in curate.examples(tmp_path / "curated.db")]
    assert report["pii"][privacy.NAME] == 2 and not any("Stoica" in t for t in texts)
    assert "Ask Mirela about it" in texts  # one word alone is not carried over: too many words are names too
    assert privacy.with_known(after_with, [])("Send Mirela Stoica") == []
    # where the model found a part of a known name, the whole is replaced; never inside a longer name
    first = privacy.with_known(lambda t: [m.span() for m in re.finditer("Mirela", t)], ["Mirela Stoica", "Jean Luc"])
    assert first("Send Mirela Stoica the notes") == [(5, 18)] and first("Marie-Jean Luc came") == []
    assert first("Mirela Stoica's notes") == [(0, 13)] and first("Jean Luc’s") == [(0, 8)]  # a possessive follows
    assert first("Set 'Mirela Stoica's demo'") == [(5, 18)] and first("‘Mirela Stoica’") == [(1, 14)]  # in quotes
    known = privacy.with_known(lambda t: [], ["Mirela Stoica"])
    assert known("Mirela Stoica'sen") == [] and known("D'Mirela Stoica") == []


def test_a_word_the_probe_is_sure_of_is_replaced_where_it_missed_it(finder, tmp_path):
    """With the real probe: it is sure of "Haverkamp" after a sign-off, finds it in 2 of the 4 requests and
    misses it in the other two (measured when this test was written; the asserts say so if the probe
    changes), so only the store-wide pass replaces it there."""
    from edgeslm.pipeline import curate

    asks = ["Thanks, Haverkamp", "What is 72 square meters in acres? Haverkamp wants to know",
            "How many miles is 139 yards? Asking for Haverkamp.", "Convert 3 cups to ml, Haverkamp here"]
    assert [bool(finder.find(t)) for t in asks] == [True, True, False, False]
    assert [asks[0][a:b] for a, b in finder.sure(asks[0])] == ["Haverkamp"]
    _capture(tmp_path / "calls.db", asks)
    curate.curate(tmp_path / "calls.db", tmp_path / "curated.db", names=finder)
    texts = [ex["messages"][0]["content"] for ex in curate.examples(tmp_path / "curated.db")]
    assert len(texts) == 4 and not any("Haverkamp" in t for t in texts), texts
    # a plain function has no `sure`: only full names are carried (the test above)
    curate.curate(tmp_path / "calls.db", tmp_path / "plain.db", names=finder.find)
    plain = [ex["messages"][0]["content"] for ex in curate.examples(tmp_path / "plain.db")]
    assert "How many miles is 139 yards? Asking for Haverkamp." in plain


def test_a_sure_word_is_carried_only_where_it_is_mostly_taken_for_a_name(tmp_path):
    """A stand-in finder (what is tested is the store-wide rule, not the model): it finds a word after
    "signed " and is sure of it there. "Mirela", found in 1 of 2 requests, is carried; "Brötchen", found in
    1 of 3, is not (a product the model was once sure of)."""
    import re

    from edgeslm.pipeline import curate

    class StandIn:
        def __call__(self, text):
            return [m.span(1) for m in re.finditer(r"signed (\w+)", text)]

        sure = __call__

    _capture(tmp_path / "calls.db", ["signed Mirela", "Ask Mirela", "signed Brötchen", "Add 2 Brötchen", "Brötchen again"])
    curate.curate(tmp_path / "calls.db", tmp_path / "curated.db", names=StandIn())
    texts = [ex["messages"][0]["content"] for ex in curate.examples(tmp_path / "curated.db")]
    assert not any("Mirela" in t for t in texts) and "Add 2 Brötchen" in texts and "Brötchen again" in texts


def _capture(db, asks):
    from edgeslm.store.capture import CaptureStore

    store = CaptureStore(db)
    for asked in asks:
        store.add({"source": "serve", "client": "tests", "model": "m", "latency_s": 0.1, "finish_reason": "stop",
                   "request": {"messages": [{"role": "user", "content": asked}]},
                   "response": {"choices": [{"finish_reason": "stop", "message": {"role": "assistant", "content": "OK"}}]}})
    store.close()
