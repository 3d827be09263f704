"""The request lean (decoding/copying.py): which tokens it lifts, to which tool a call's name leans, and the
sampler applying it. What it reads of the request and how tools rank: tests/test_said.py. The real model
under it: tests/test_everyday.py; its choice: benchmarks/bfcl_dev.py --lean."""

import re
from types import SimpleNamespace

import numpy as np

from edgeslm.decoding import described, said
from edgeslm.decoding.canon import WINDOW, Splits
from edgeslm.decoding.constraints import call_openers, comma_tokens
from edgeslm.decoding.copying import FIT_CENTER, FIT_WIDTH, MID_NAME, SLOT, SURE, SURE_ONE, TOP, WHOLE, Copier, Leans
from edgeslm.decoding.ending import ENUM_SAID, NAMED_SHARE
from edgeslm.decoding.parsing import CallParser
from edgeslm.decoding.said import Ranking, relevance, slots
from edgeslm.decoding.sampler import Sampler
from edgeslm.decoding.tools import ENVELOPES
from edgeslm.types import Message, ToolSpec

PIECES = ["Lis", "bon", "bondo", '"', '",', "isbon", " Portugal", ",", "Heath", "row", "field", "\\u00e9",
          "Porto", '"}', "get", "_weather", "track", "_parcel", "get_weather", '_parcel"']
SOURCE = "What's the weather in Lisbon, Portugal?\nHeathrow: delayed"
TOOLS = [ToolSpec("track_parcel", "Where a parcel is now.", {}), ToolSpec("get_weather", "Weather in a city.", {}),
         ToolSpec("get_time", "The local time in a city.", {})]


def copier(copy_bias=2.0, source=SOURCE, tool_bias=0.0):
    return Copier(source, lambda t: PIECES[t].encode() if t < len(PIECES) else b"qq", Leans(copy_bias, tool_bias),
                  Ranking(relevance(source, TOOLS)))


def test_only_string_values_of_the_arguments_are_followed():
    c = copier()
    c.feed('{"city')
    assert not c.copying  # a key
    c.feed('": "Lis')
    assert c.copying and c.args.value == "Lis"
    c.feed('bon", "days": 2, "tags": ["a')
    assert c.copying and c.args.value == "a"  # a string in an array is a value
    c.feed('"], "where": {"name": "x')
    assert c.copying and c.args.value == "x"
    c.feed('", "k')
    assert not c.copying  # a key of the nested object
    c.feed('": "a\\"b')
    assert not c.copying  # an escaped value is not compared with the request
    c.begin()
    c.feed('{"city": "')
    assert c.copying and c.args.value == ""
    assert not copier(copy_bias=0).copying and not copier(source="").copying


def test_it_lifts_what_extends_a_span_of_the_request_or_closes_a_whole_one():
    c = copier()
    lifted = lambda value: {PIECES[t] for t in range(len(PIECES)) if (c.begin(), c.feed('{"c": "' + value), c.lifts(t))[2]}  # noqa: E731
    # a span starts at a word ("isbon", "," and " Portugal" do not; "Porto" is in no span)
    assert lifted("") == {"Lis", "Heath"}
    assert lifted("Lis") == {"bon"}  # "bondo" leaves the request; a quote here ends mid-word
    assert lifted("Lisbon") == {'"', '",', '"}', ","}  # closes on a whole word, or goes on as the request does
    assert lifted("Lisbon,") == {" Portugal"}  # a value does not end on the comma
    assert lifted("Heath") == {"row"}  # not "field"


def test_only_allowed_tokens_the_bias_can_make_the_best_are_lifted():
    c = copier(source="What's the weather in Lisbon, Portugal or Porto?")  # no place held with its region (said.regions)
    c.feed('{"c": "Lisbon,')  # not inside a name (test_inside_a_name_the_lean_is_stronger)
    logits = np.full(len(PIECES) + 40, -5.0, dtype=np.float32)
    logits[len(PIECES):len(PIECES) + 5] = 1.0  # unrelated tokens, more than 2 above every piece
    assert c.boost(logits, None) is None
    logits[6] = -0.5  # " Portugal": within 2 of the best
    ids, amounts = c.boost(logits, None)
    assert list(ids) == [6] and list(amounts) == [2.0]
    logits[6] = -5.0
    allowed = np.ones(len(logits), dtype=bool)
    allowed[len(PIECES):] = False  # the best allowed is now a piece (all at -5): " Portugal" contends again
    assert list(c.boost(logits, allowed)[0]) == [6]
    allowed[6] = False
    assert c.boost(logits, allowed) is None  # the grammar's say comes first
    logits[:] = -5.0
    logits[len(PIECES):len(PIECES) + TOP + 5] = 1.0
    logits[6] = 0.9  # among more than TOP contenders, only the TOP most likely lean
    assert c.boost(logits, None) is None
    logits[6] = 1.5
    assert list(c.boost(logits, None)[0]) == [6]


def test_inside_a_name_the_lean_is_stronger():
    c = copier()
    c.feed('{"c": "Heath')  # 5 letters into "Heathrow"
    assert c.mid_name()
    logits = np.full(len(PIECES) + 4, -5.0, dtype=np.float32)
    logits[10] = 0.0  # "field": 4 above "row", beyond copy_bias, within MID_NAME times it
    logits[9] = -4.0
    ids, amounts = c.boost(logits, None)
    assert list(ids) == [9] and list(amounts) == [MID_NAME * 2.0]
    for value, inside in [("Lis", True), ("Lisbon", False), ("Li", False), ("Lisbon, Portugal", False)]:
        c.begin()
        c.feed('{"c": "' + value)
        assert c.mid_name() == inside, value  # whole words, and the first letters of a name, lean as before
    lower = copier(source="convert 3 tablespoons, temperatures")
    lower.feed('{"c": "tables')
    assert lower.mid_name()  # a word cut short, 5 letters before its end
    lower.begin()
    lower.feed('{"c": "temperature')
    assert not lower.mid_name()  # a common word's stem may be what the call wants ("temperature" of "temperatures")


def test_the_first_calls_name_leans_to_the_relevant_tool():
    c = copier(copy_bias=0.0, tool_bias=3.0)
    logits = np.zeros(len(PIECES), dtype=np.float32)
    allowed = np.zeros(len(PIECES), dtype=bool)
    allowed[[14, 16, 18]] = True  # "get", "track", "get_weather"
    ids, amounts = c.boost(logits, allowed, naming="")
    # "get" leads to get_weather too; no other tool holds a word of the request: the lean is as sure as it
    # gets, for a request of one clause SURE_ONE (SURE where it has several: the next test)
    sure = 3.0 * (1 + SURE_ONE)
    assert dict(zip(ids.tolist(), amounts.tolist(), strict=True)) == {14: sure, 18: sure}
    allowed[:] = False
    allowed[[15, 3]] = True  # after "get": "_weather" or a closing quote (no tool named "get")
    ids, amounts = c.boost(logits, allowed, naming="get")
    assert ids.tolist() == [15]
    c.begin()  # the first call's name is written: later calls choose on their own
    assert c.boost(logits, allowed, naming="get") is None
    # the nearer the next tool, the less sure the lean: 3 at a tie, 3 * (1 + SURE_ONE) with the rest at 0
    near = Copier(SOURCE, lambda t: b"x", Leans(tool=3.0), Ranking({"get_weather": 1.0, "get_time": 0.6, "track_parcel": 0.1}))
    assert near.tool_bias == 3.0 * (1 + SURE_ONE * 0.4)
    assert Copier(SOURCE, lambda t: b"x", Leans(tool=3.0), Ranking({"get_weather": 1.0, "get_time": 1.0})).tool_bias == 3.0
    # no telling word in the request, or one tool: no lean
    assert Copier("Hello", lambda t: b"x", Leans(tool=3.0), Ranking(relevance("Hello", TOOLS))).tool_bias == 0.0
    assert Copier(SOURCE, lambda t: b"x", Leans(tool=3.0), Ranking(relevance(SOURCE, TOOLS[1:2]))).tool_bias == 0.0


def test_a_later_calls_name_leans_to_the_tool_of_the_clause_still_due():
    """After the first call, the clause none of whose own values a call has written ranks the tools; the
    first call keeps the whole request's ranking. Where every clause is served: no lean."""
    parts = ((frozenset({"lisbon"}), {"get_weather": 1.0, "track_parcel": 0.0}),
             (frozenset({"1z999"}), {"get_weather": 0.0, "track_parcel": 1.0}))
    c = Copier("What's the weather in Lisbon, and where is my parcel 1Z999 now?", lambda t: PIECES[t].encode() if t < len(PIECES)
               else b"qq", Leans(tool=3.0), Ranking({"get_weather": 1.0, "track_parcel": 0.0}, 0.5, parts))
    logits = np.zeros(len(PIECES), dtype=np.float32)
    allowed = np.zeros(len(PIECES), dtype=bool)
    allowed[[14, 16]] = True  # "get", "track"
    ids, amounts = c.boost(logits, allowed, naming="")
    assert ids.tolist() == [14] and amounts.tolist() == [3.0 * (1 + SURE)]  # several clauses: SURE, not SURE_ONE
    c.begin("get_weather")
    c.feed('{"city": "Lisbon"}')
    ids, amounts = c.boost(logits, allowed, naming="")
    assert ids.tolist() == [16] and amounts.tolist() == [3.0 * (1 + SURE)]
    c.begin("track_parcel")
    c.feed('{"id": "1Z999"}')
    assert c.due() == {} and c.boost(logits, allowed, naming="") is None


def test_the_parser_says_when_a_name_is_being_written():
    p = CallParser(ENVELOPES["hermes"])
    p.feed("<tool_call>\n")
    assert p.naming is None
    p.feed('{"name": "get_')
    assert p.naming == "get_"
    p.feed('weather", "arguments": {"c')
    assert p.naming is None


def test_the_sampler_applies_the_lift_and_gives_the_buffer_back():
    logits = np.array([0.0, 2.0, 1.5, -1.0], dtype=np.float32)
    before = logits.copy()
    s = Sampler(0.0, 1.0, 0)
    assert s.sample(logits, None) == 1
    assert s.sample(logits, None, (np.array([2]), np.array([1.0]))) == 2  # 1.5 + 1 beats 2.0
    assert s.sample(logits, None, (np.array([2]), np.array([0.4]))) == 1  # too little to tip it
    assert np.array_equal(logits, before)
    s = Sampler(0.0, 1.0, 0, repetition_penalty=4.0, recent=lambda n: [1])
    assert s.sample(logits, None, (np.array([3]), np.array([1.0]))) == 2 and np.array_equal(logits, before)


def test_the_tokens_that_begin_a_call_are_found_in_the_vocabulary():
    table = [b"<", b"<tool", b"<tool_call>", b" <tool", b"\n", b"<b>", b"\xff<tool_call>", b"None", b"<tool_call>\n{"]
    ids = call_openers(SimpleNamespace(table=table), ENVELOPES["hermes"], {6: b"<tool_call>"})
    # a bare whitespace token or "<b>" begins no call; the marker as a control token does
    assert ids.tolist() == [0, 1, 2, 3, 6, 8]
    table = [b",", b', "', b"\n,", b"a,", b"}", b" , ", b'",', b'" }', b'"a', b"a}", b'"}}']
    # what goes on to another argument or closes the arguments, after a value or closing a string first
    assert comma_tokens(SimpleNamespace(table=table)).tolist() == [0, 1, 2, 4, 5, 6, 7, 10]


def test_the_first_token_leans_to_a_call_as_far_as_the_request_fits_a_tool():
    openers = np.array([2, 5])

    def lean(fit, call_bias=2.0):
        got = Copier(SOURCE, lambda t: b"x", Leans(call=call_bias), Ranking({}, fit), openers=openers).open()
        if got is None:
            return None
        assert got[0].tolist() == [2, 5] and len(set(got[1].tolist())) == 1
        return float(got[1][0])

    assert lean(FIT_CENTER + FIT_WIDTH) == 2.0 and lean(0.95) == 2.0  # clipped at call_bias
    assert lean(FIT_CENTER - FIT_WIDTH) == -2.0 and lean(-0.2) == -2.0  # far from every tool: toward text
    assert abs(lean(FIT_CENTER + FIT_WIDTH / 2) - 1.0) < 1e-9
    assert lean(FIT_CENTER) is None  # no lean either way
    assert lean(0.9, call_bias=0.0) is None and lean(None) is None  # off, or ranked by words (no fit)
    s = Sampler(0.0, 1.0, 0)
    logits = np.array([0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 2.5], dtype=np.float32)  # 6: the refusal's first token
    assert s.sample(logits, None, Copier(SOURCE, lambda t: b"x", Leans(call=2.0), Ranking({}, 0.6), openers=openers).open()) == 2
    assert s.sample(logits, None, Copier(SOURCE, lambda t: b"x", Leans(call=2.0), Ranking({}, 0.1), openers=openers).open()) == 6


def test_another_call_leans_in_as_far_as_the_requests_values_are_unused():
    source = "Find all primes between 50 and 150. Then the fibonacci series up to 150 in Rome."
    END = 6  # the end of the turn
    choice = np.zeros(8, dtype=bool)
    choice[[2, END]] = True  # where the response may end: the separator (2) or the end

    def lean(written, more_bias=4.0, allowed=choice):
        c = Copier(source, lambda t: b"x", Leans(more=more_bias))
        c.begin("fibonacci")
        c.feed(written)
        got = c.ending.more(allowed, [END])
        return None if got is None else (got[0].tolist(), round(float(got[1][0]), 4))

    assert lean('{"n": 150') is None  # the arguments are not closed yet
    assert lean('{"n": 150}') == ([2], round(4.0 * 2 / 3, 4))  # 50 and Rome unused, 150 used
    assert lean('{"n": 150, "city": "Rome", "from": 50}') is None  # every value used: no lean
    assert lean('{"n": 150}', more_bias=0.0) is None
    going_on = choice.copy()
    going_on[END] = False
    assert lean('{"n": 150}', allowed=going_on) is None  # the response may not end here: no choice to tip
    assert lean('{"n": 150}', allowed=None) is None  # no grammar: nothing says what goes on to a call
    c = Copier(source, lambda t: b"x", Leans(more=4.0))
    c.begin("primes")
    c.feed('{"from": 50, "to": 150}')
    c.begin("fibonacci")  # a new call: not closed until its arguments are
    assert c.ending.more(choice, [END]) is None
    s = Sampler(0.0, 1.0, 0)
    logits = np.array([0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 2.0, 0.0], dtype=np.float32)
    c.feed('{"n": 150}')
    assert s.sample(logits, None, c.ending.more(choice, [END])) == 2  # Rome unused: 1 + 4/3 over 2.0


def test_another_call_leans_in_while_the_request_names_a_tool_not_called_yet():
    source = "Most points scored in a single game, in a single season and in a career in the NBA?"
    tools = [ToolSpec(n, "", {}) for n in ("most_points_single_game", "most_points_single_season",
                                            "most_points_career", "most_assists_single_game")]
    choice = np.zeros(4, dtype=bool)
    choice[[2, 3]] = True  # the separator (2) or the end (3)

    def lean(*called, offered=tools):
        c = Copier(source, lambda t: b"x", Leans(more=10.0), tools=offered)
        for name in called:
            c.begin(name)
            c.feed('{"league": "NBA"}')
        got = c.ending.more(choice, [3])
        return None if got is None else float(got[1][0])

    # "season" and "career" are said and still uncalled; "assists" is not said
    assert lean("most_points_single_game") == 10.0 * NAMED_SHARE
    assert lean("most_points_single_game", "most_points_single_season") == 10.0 * NAMED_SHARE
    assert lean("most_points_single_game", "most_points_single_season", "most_points_career") is None
    # a word that two tools' names hold tells nothing ("career" below); one tool offered: nothing to name
    assert lean("most_points_single_game", "most_points_single_season", offered=tools[:3] + [
        ToolSpec("most_rebounds_career", "", {})]) is None
    assert lean("most_points_single_game", offered=tools[:1]) is None


def test_a_later_calls_name_leans_to_a_tool_the_request_names_that_no_call_has_used():
    """Where every clause holds a written value ("NBA" in all three), the tools the request names by a word of their own
    that no call has used rank the next call's name; a called one gets nothing, though its words were said too."""
    source = "Most points scored in a single game, in a single season and in a career in the NBA?"
    tools = [ToolSpec(n, "", {}) for n in ("most_points_single_game", "most_points_single_season", "most_points_career")]
    pieces = {1: b"most_points_single", 2: b"most_points_career"}
    c = Copier(source, lambda t: pieces.get(t, b"qq"), Leans(tool=3.0, more=10.0), Ranking({}), tools=tools)
    allowed = np.zeros(3, dtype=bool)
    allowed[[1, 2]] = True
    for name in ("most_points_single_game", "most_points_single_season"):
        c.begin(name)
        c.feed('{"league": "NBA"}')
    ids, amounts = c.boost(np.zeros(3, dtype=np.float32), allowed, naming="")
    assert ids.tolist() == [2] and amounts.tolist() == [3.0 * (1 + SURE)]
    c.begin("most_points_career")
    c.feed('{"league": "NBA"}')
    assert c.boost(np.zeros(3, dtype=np.float32), allowed, naming="") is None


def test_a_value_leans_to_the_span_the_request_ties_to_its_parameter():
    text = "Prepare the statement for grantee 'JohnDoe' in the session `JDBC_session`, then the launcher path '/usr/bin/x'."
    at = lambda name: sorted(text[i:i + 4] for i in slots(text, name))  # noqa: E731
    assert "JDBC" in at("session") and "John" not in at("session")  # the value holds the name's word
    assert "John" in at("grantee") and "/usr" in at("launcher") and "/usr" not in at("grantee")  # words just before
    assert at("colour") == []
    said = "Convert 5 cups in the unit 'ml' for the `brain_region`"
    tied = [said[i:i + 2] for i in sorted(slots(said, "unit"))]
    assert "ml" in tied and "un" not in tied  # "unit" itself is no value of `unit`
    assert slots(said, "brain_region") == set()
    # a `to_`/`from_` parameter: the word after "to", "into", "in" / "from"; after "in" letters only (session 44: a units
    # student wrote "serving" of "750 kilojoules per serving; convert that to kilocalories")
    units = "750 kilojoules per serving; convert that to kilocalories, from me in 2 ways"
    assert [units[i:i + 4] for i in sorted(slots(units, "to_unit"))] == ["kilo"] and slots(units, "unit") == set()
    assert [s[i:i + 5] for s in ["Fly from Paris to Rome"] for i in sorted(slots(s, "from_city"))] == ["Paris"]
    assert [s[i:i + 4] for s in ["Fly from Paris to Rome"] for i in sorted(slots(s, "to_city"))] == ["Rome"]
    # the name's own word inside a name ties the name's start, and no later word (val multiple_79: "New York" was written, tied
    # by "Museum" three words before it)
    moma = "Find art exhibitions for the upcoming month in the Museum of Modern Art, New York."
    assert [moma[i:i + 6] for i in sorted(slots(moma, "museum_name"))] == ["Museum"]
    pieces = {1: b"John", 2: b"JDBC", 3: b"zz"}
    c = Copier(text, lambda t: pieces.get(t, b"qq"), Leans(copy=2.0))
    logits = np.zeros(5, dtype=np.float32)
    logits[1] = 1.0  # the model's choice, JohnDoe, a copy_bias ahead of JDBC_session
    c.feed('{"session": "')
    ids, amounts = c.boost(logits, None)
    lift = dict(zip(ids.tolist(), amounts.tolist(), strict=True))
    assert lift == {1: 2.0, 2: 2.0 * SLOT}  # both spans of the request; the tied one SLOT times
    assert Sampler(0.0, 1.0, 0).sample(logits, None, (ids, amounts)) == 2
    c.feed('JDBC_session", "owner": "')  # a parameter the request ties nothing to: its quotes no call holds
    ids, amounts = c.boost(logits, None)
    assert dict(zip(ids.tolist(), amounts.tolist(), strict=True)) == {1: 2.0 * SLOT, 2: 2.0}
    c.feed('JohnDoe", "path": "')  # and none once a call holds them (the launcher's '/usr/bin/x' is tied)
    ids, amounts = c.boost(logits, None)
    assert dict(zip(ids.tolist(), amounts.tolist(), strict=True)) == {1: 2.0, 2: 2.0}


def test_a_quote_no_call_holds_is_a_value_found_below_the_junk_and_not_cut():
    """What a user puts in quotes: at a string value's first token where the request ties nothing to the
    parameter, its first token leans SLOT times copy_bias, even below TOP flatter junk tokens; closed
    inside the quotes, the value would be cut."""
    src = "Send 89.90 EUR to BE68 and put 'Abo Fitness Jänner, Graz' as the payment reference"
    pieces = {t: f"j{t}".encode() for t in range(40)}
    pieces.update({40: b"Abo", 41: b'"', 42: b" Fitness", 43: b'",'})
    c = Copier(src, lambda t: pieces.get(t, b"qq"), Leans(copy=2.0))
    logits = np.full(44, 10.0, dtype=np.float32)
    logits[:40] += np.linspace(1.0, 0.5, 40)  # 40 junk pieces just ahead of "Abo"
    c.feed('{"iban": "BE68", "reference": "')
    ids, amounts = c.boost(logits, None)
    assert dict(zip(ids.tolist(), amounts.tolist(), strict=True)).get(40) == 2.0 * SLOT
    assert c.cuts("Abo Fitness Jänner") and c.cuts("Abo") and not c.cuts("Abo Fitness Jänner, Graz")
    c.feed("Abo")
    logits[:40], logits[41], logits[43] = 0.0, 12.0, 12.0  # the model would close on "Abo"
    ids, amounts = c.boost(logits, None)
    lift = dict(zip(ids.tolist(), amounts.tolist(), strict=True))
    assert lift[41] == lift[43] == -2.0 * MID_NAME * SLOT and lift[42] == 2.0 * MID_NAME  # on, the close shunned


def test_a_value_does_not_close_inside_a_run_of_capitalized_words():
    c = Copier("How hot in Salt Lake City? Then Rio de Janeiro, Paris, France and Ho Chi Minh City.",
               lambda t: {1: b'"', 2: b" City", 3: b' City"', 4: b'",'}.get(t, b"qq"), Leans(copy=2.0))
    assert c.cuts("Salt Lake") and c.cuts("Rio") and c.cuts("Ho Chi Minh") and c.cuts("Salt")
    assert not c.cuts("Salt Lake City") and not c.cuts("Paris") and not c.cuts("Rio de Janeiro") and not c.cuts("hot")
    # after "in", "for" ...: a place's region, then no more places (issue 23: "Tel Aviv, Israel" stays whole; session 44)
    region = Copier("Forecast for Tel Aviv, Israel, fahrenheit. Meet Anna, Bob. Weather in Oslo, Bergen and Rome.",
                    lambda t: b"qq", Leans(copy=2.0))
    assert region.cuts("Tel Aviv") and not region.cuts("Tel Aviv, Israel") and not region.cuts("Anna") and not region.cuts("Oslo")
    saint = Copier("Weather for St. John's, Newfoundland in degrees", lambda t: b"qq", Leans(copy=2.0))
    assert saint.cuts("St. John") and saint.cuts("St. John's") and not saint.cuts("St. John's, Newfoundland")
    c.feed('{"city": "Salt Lake')
    logits = np.array([0.0, 3.0, 1.0, 0.5, 2.5], dtype=np.float32)  # the model would close on "Salt Lake"
    ids, amounts = c.boost(logits, None)
    lift = dict(zip(ids.tolist(), amounts.tolist(), strict=True))
    assert 1 not in lift and 4 not in lift and lift[2] == lift[3] == 2.0 * MID_NAME
    assert Sampler(0.0, 1.0, 0).sample(logits, None, (ids, amounts)) == 2


GO_ON = {1: b",", 2: b"}", 3: b'",', 4: b' ,"', 5: b'"}'}  # go on or close, after a value or a string


def _lean(tool, source, written, allowed=None, **bias):
    c = Copier(source, lambda t: GO_ON.get(t, b"x"), Leans(**bias), tools=[tool], commas=np.array(sorted(GO_ON)))
    c.begin(tool.name)
    c.feed(written)
    got = c.ending.more_args(np.ones(6, dtype=bool) if allowed is None else allowed)
    return None if got is None else (got[0].tolist(), got[1].tolist())


def test_another_argument_leans_in_while_an_unwritten_parameter_matches_what_the_request_says():
    dist = ToolSpec("calculate_distance", "Distance between two bodies.", {"type": "object", "properties": {
        "body1": {"type": "string"}, "body2": {"type": "string"},
        "unit": {"type": "string", "description": "Unit of the distance, e.g. miles or km."},
        "precise": {"type": "boolean", "description": "Whether to be precise."}}})

    def lean(source, written, allowed=None, arg_bias=3.0):
        return _lean(dist, source, written, allowed, arg=arg_bias)

    asked = "What's the distance in miles from the Earth to the Moon?"
    assert lean(asked, '{"body1": "Earth", "body2": "Moon"') == ([1, 4], [3.0, 3.0])  # "miles": the unit's description
    assert lean(asked, '{"body1": "Earth", "body2": "Moon"', arg_bias=0.0) is None
    assert lean(asked, '{"body1": "Earth", "body2": "Moon", "unit": "miles"') is None  # written
    assert lean("Distance from the Earth to the Moon?", '{"body1": "Earth", "body2": "Moon"') is None  # nothing beyond
    assert lean(asked, '{"body1": "Earth", "body2": ') is None  # a value is due, not a choice to close
    # inside a string (`",` goes on) where the value ends a phrase of the request, not part way into one
    assert lean(asked, '{"body1": "Earth", "body2": "Moon') == ([3], [3.0])
    assert lean("The distance in miles from Earth to the Moon base?", '{"body1": "Earth", "body2": "Moon') is None
    assert lean(asked, '{"body1": "Earth", "body2": ["Moon"') is None  # inside an array
    allowed = np.zeros(6, dtype=bool)
    allowed[4] = True
    assert lean(asked, '{"body1": "Earth", "body2": "Moon"', allowed) == ([4], [3.0])  # what the grammar allows
    assert lean(asked, '{"body1": "Earth", "body2": 12', allowed) == ([4], [3.0])  # after a number too


def test_an_enum_value_the_request_says_leans_harder_to_its_parameter():
    """ENUM_SAID: an unwritten parameter one of whose enum values the request says whole ("cheap", and
    "ticket_price" said as "ticket price") gets arg_bias times ENUM_SAID; a word of its description, once."""

    concert = ToolSpec("concert_search", "Find concerts.", {"type": "object", "properties": {
        "genre": {"type": "string"}, "city": {"type": "string"},
        "price_range": {"type": "string", "enum": ["free", "cheap", "ticket_price"], "description": "Price range of tickets."}}})
    written = '{"genre": "jazz", "city": "Oslo"'
    assert _lean(concert, "A jazz concert in Oslo with cheap tickets", written, arg=2.0) == ([1, 4], [2.0 * ENUM_SAID] * 2)
    assert _lean(concert, "A jazz concert in Oslo by ticket price", written, arg=2.0) == ([1, 4], [2.0 * ENUM_SAID] * 2)
    assert _lean(concert, "A jazz concert in Oslo, tickets under 20", written, arg=2.0) == ([1, 4], [2.0, 2.0])  # "tickets"
    assert _lean(concert, "A jazz concert in Oslo, cheap", written + ', "price_range": "cheap"', arg=2.0) is None  # written
    # short or letterless values are said by every request ("in", "2"); an empty one is never looked for
    odd = ToolSpec("book", "Book.", {"type": "object", "properties": {"city": {"type": "string"},
                   "unit": {"type": "string", "enum": ["in", "2", ""], "description": "Unit."}}})
    assert _lean(odd, "A room in Oslo for 2, ", '{"city": "Oslo"', arg=2.0) is None
    assert said.said_enums("Cheap seats in Oslo, ", {"t": {"p": {"cheap", ""}, "q": {"in"}}}) == {"t": {"p": {"cheap"}}}
    assert said.said_enums("Mornings work best", {"t": {"w": {"morning", "evening"}}}) == {"t": {"w": {"morning"}}}
    # a value the description quotes counts as one (val simple_python_173: "Find state law cases" and judicial_system
    # "(e.g. 'federal', 'state')"; the default left it out, then wrote "federal", 5 logits above "state")
    law = {"properties": {"topic": {"type": "string"}, "judicial_system": {
        "type": "string", "description": "The judicial system (e.g. 'federal', 'state'). Default is 'all'."}}}
    assert described.examples(law) == {"judicial_system": {"federal", "state", "all"}}
    assert described.examples({"properties": {"f": {"description": "A function matching on the 'department' field."}}}) == {}
    assert described.examples({"properties": {"u": {"description": "The unit ('Celsius' or 'Fahrenheit')."}, "c": {
        "description": "Options include: 'civil', 'criminal'"}}}) == {"u": {"Celsius", "Fahrenheit"}, "c": {"civil", "criminal"}}
    cases = ToolSpec("law_case_search", "Law cases.", law)
    assert _lean(cases, "Find state law cases about land disputes", '{"topic": "land disputes"', arg=2.0) == ([1, 4], [2.0 * ENUM_SAID] * 2)
    vocab = ["federal", "state", "st", '"']
    c = Copier("Find state law cases about land disputes", lambda t: vocab[t].encode(), Leans(copy=2.0, arg=2.0), tools=[cases])
    c.begin("law_case_search")
    c.feed('{"topic": "land disputes", "judicial_system": "')
    got = dict(zip(*(a.tolist() for a in c.boost(np.array([20.0, 15.0, 14.0, 0.0]), None)), strict=True))
    assert got[1] == got[2] == 2.0 * MID_NAME * SLOT and got.get(0, 0.0) == 0.0
    # not an enum's value: the grammar holds the choice to its values and the model weighs them (seed 2's e-mail gate went 0.85 ->
    # 0.78 with the hold: "Inbox item from ... it's a payment reminder" filed to "inbox", "billing" 1.3 above it)
    mail = ToolSpec("triage_email", "File an e-mail.", {"properties": {"folder": {"type": "string", "enum": ["inbox", "billing"]}}})
    vocab = ["in", "billing", '"']
    c = Copier("Inbox item from a@b.co - it's a payment reminder.", lambda t: vocab[t].encode(), Leans(copy=2.0, arg=2.0), tools=[mail])
    c.begin("triage_email")
    c.feed('{"folder": "')
    got = c.boost(np.array([26.7, 28.0, 0.0]), None)
    assert got is None or max(got[1]) < 2.0 * MID_NAME * SLOT
    # a list's items' enum too, though the tool's own description holds its words (the default closed museum_info after the city,
    # val multiple_78); not an enum value said only inside a value written ("history" of "Natural History Museum")
    museum = ToolSpec("museum_info", "Museum timings, exhibitions and history.", {"type": "object", "properties": {
        "museum": {"type": "string"}, "city": {"type": "string"},
        "features": {"type": "array", "items": {"type": "string", "enum": ["timings", "exhibitions", "history"]}}}})
    written = '{"museum": "Natural History Museum", "city": "London"'
    assert _lean(museum, "Natural History Museum in London: timings and exhibitions", written, arg=2.0) == ([1, 4], [2.0 * ENUM_SAID] * 2)
    assert _lean(museum, "Natural History Museum in London", written, arg=2.0) is None



def test_a_key_leans_toward_an_unwritten_parameter_whose_enum_value_the_request_says():
    """Seed 2's weather student wrote "days" first for "seven day outlook please, in Fahrenheit" (the keys tied at 24.2): the grammar
    writes keys in the schema's order, so no place was left for "unit". While a top-level key is written, the pieces toward such a
    parameter get max(left_bias, arg_bias x ENUM_SAID); not where no enum value is said, nor once the parameter is written."""
    vocab = ["days", "unit", "u", 'unit"', "day", "city", "it"]
    weather = ToolSpec("get_weather", "Weather.", {"type": "object", "properties": {
        "city": {"type": "string"}, "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]}, "days": {"type": "integer"}}})

    def keys(source, written, **bias):
        c = Copier(source, lambda t: vocab[t].encode(), Leans(copy=4.0, **bias), tools=[weather])
        c.begin("get_weather")
        c.feed(written)
        got = c.ending.keys(np.ones(len(vocab), dtype=bool))
        return None if got is None else dict(zip(got[0].tolist(), got[1].tolist(), strict=True))

    said = "Oslo: seven day outlook please, in Fahrenheit"
    assert keys(said, '{"city": "Oslo", "', left=6.0) == {1: 6.0, 2: 6.0, 3: 6.0}
    assert keys(said, '{"city": "Oslo", "', arg=3.0) == {1: 3.0 * ENUM_SAID, 2: 3.0 * ENUM_SAID, 3: 3.0 * ENUM_SAID}
    assert keys(said, '{"city": "Oslo", "un', left=6.0) == {6: 6.0}  # "it" goes on from "un" to "unit"
    assert keys("Oslo: seven day outlook please", '{"city": "Oslo", "', left=6.0) is None
    assert keys(said, '{"city": "Oslo", "unit": "fahrenheit", "', left=6.0) is None
    assert keys(said, '{"city": "Oslo", "', left=6.0) and keys(said, '{"city": "Oslo', left=6.0) is None  # a value, not a key


def test_a_phrase_ends_at_punctuation_and_a_space_or_a_joining_word():
    assert said.phrase_end("From New York to Boston", "New York") and said.phrase_end("Rooms in Oslo? Yes", "Oslo")
    assert said.phrase_end("It was 'Deposit'. Then", "Deposit") and said.phrase_end("Weather in Oslo", "Oslo")
    assert not said.phrase_end("A king size bed", "king") and not said.phrase_end("Mail john.smith@acme.com", "john")
    assert not said.phrase_end("Send report.pdf now", "report") and not said.phrase_end("Gifts from Macy's store", "Macy")
    assert not said.phrase_end("The Bank of America branch", "Bank") and not said.phrase_end("Oslo", "")
    # a time word or a joining one added in session 46 ("Temperature in Yokohama right now, Fahrenheit": a student left the unit out)
    assert said.phrase_end("Temperature in Yokohama right now", "Yokohama") and said.phrase_end("London including timings", "London")
    assert not said.phrase_end("The Right Bank", "The") and not said.phrase_end("Yokohama rightly", "Yokohama")


def test_the_call_lean_leans_on_the_users_turn_only():
    """The request's fit reaches the job on the user's turn; after a tool's result whether to answer or
    call again is the model's own (with the lean it would call the same tool again)."""
    from edgeslm.decoding.said import Ranking
    from edgeslm.preparation import Preparer
    from edgeslm.types import OutputSpec, SamplingParams, ToolCall

    p = Preparer.__new__(Preparer)  # only what _ranking reads: no model is needed to rank
    p.entry, p.backend = SimpleNamespace(sampling=None), SimpleNamespace(metadata={})
    p.rank = lambda asked, tools: Ranking({t.name: 1.0 for t in tools}, 0.6)
    spec = OutputSpec("tools", TOOLS[1:2])
    asked = [Message("user", "Weather in Oslo?")]
    answered = asked + [Message("assistant", None, [ToolCall("c1", "get_weather", '{"city": "Oslo"}')]),
                        Message("tool", "3C", tool_call_id="c1")]
    lean = SamplingParams(max_tokens=8, call_bias=4.0)
    assert p._ranking(asked, spec, lean, []).fit == 0.6
    assert p._ranking(answered, spec, lean, []).fit is None
    assert p._ranking(asked, spec, SamplingParams(max_tokens=8), []) == Ranking({})  # no lean asked: not ranked
    assert p._ranking(asked, OutputSpec("tools", TOOLS[1:2], tool_choice="none"), lean, []) == Ranking({})


def test_after_a_result_the_answer_shuns_declared_refusals_and_the_result_block():
    """What an answer to a tool's result leans away from (Preparer._shun; generation.Run leans by
    call_bias): only after a tool's result, only when the model may answer in text. The real model's
    answers are tested in tests/test_agents.py; the tokenizer here splits on spaces."""
    from edgeslm.decoding.tools import Envelope
    from edgeslm.preparation import Preparer
    from edgeslm.types import OutputSpec, ToolCall

    p = Preparer.__new__(Preparer)
    words: dict[str, int] = {}
    p.backend = SimpleNamespace(tokenize=lambda text, add_bos, special: [words.setdefault(w, len(words)) for w in text.split()])
    p.envelope = Envelope("hermes", "<tool_call>\n", "\n</tool_call>", "\n", "arguments", "")
    tools = SimpleNamespace(manifest={"refusals": ["No tool fits.", "", 7]})
    spec = OutputSpec("tools", TOOLS[1:2])
    asked = [Message("user", "Weather in Oslo?")]
    answered = asked + [Message("assistant", None, [ToolCall("c1", "get_weather", '{"city": "Oslo"}')]),
                        Message("tool", "3C", tool_call_id="c1")]
    got = p._shun(answered, spec, [tools])
    assert got == [[words["No"], words["tool"], words["fits."]], [words["<tool_response>"]]]
    assert p._shun(asked, spec, [tools]) == []  # the user's turn: a refusal may be right
    assert p._shun(answered, OutputSpec("tools", TOOLS[1:2], tool_choice="required"), [tools]) == []
    assert p._shun(answered, spec, [SimpleNamespace(manifest={"refusals": "No."})]) == [[words["<tool_response>"]]]


def test_the_arguments_lean_to_close_when_the_request_has_nothing_left_for_another():
    """close_bias: where the arguments may close, going on leans out and closing leans in when no unwritten
    parameter shares a word with the request and every value it states is written; not otherwise. Inside a
    string (Gemma closes it and goes on in one token, `",`) only once the value is a whole span of the request."""
    weather = ToolSpec("get_weather", "Current weather for a city.", {"type": "object", "properties": {
        "city": {"type": "string"}, "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
        "days": {"type": "integer", "minimum": 1, "maximum": 7}}, "required": ["city"]})

    def lean(source, written, close_bias=2.0, arg_bias=0.0):
        return _lean(weather, source, written, close=close_bias, arg=arg_bias)

    cold = "Is it cold in Buenos Aires right now?"
    assert lean(cold, '{"city": "Buenos Aires"') == ([1, 4, 2], [-2.0, -2.0, 2.0])  # nothing said of unit or days
    assert lean(cold, '{"city": "Buenos Aires') == ([3, 5], [-2.0, 2.0])  # `",` away, `"}` toward
    assert lean(cold, '{"city": "Buenos Ai') is None  # part way into a word of the request
    assert lean(cold, '{"city": "Buenos Aires", "unit": "fahrenheit') == ([3, 5], [-2.0, 2.0])  # an enum value is whole
    assert lean(cold, '{"city": "Buenos Aires", "unit": "fahren') is None
    assert lean(cold, '{"city": "Buenos Aires"', close_bias=0.0) is None  # off
    shut = np.array([True, True, False, True, True, False])  # the grammar allows no close: a required value is due
    assert _lean(weather, cold, '{"city": "Buenos Aires', shut, close=2.0) is None  # going on is forced, not pushed
    hot = "Temperature in Hanoi in celsius, please."
    assert lean(hot, '{"city": "Hanoi"') is None  # "celsius": the unit's
    assert lean(hot, '{"city": "Hanoi", "unit": "celsius"') == ([1, 4, 2], [-2.0, -2.0, 2.0])
    assert lean("Oslo, next 3", '{"city": "Oslo"') is None  # a value (3) not written yet
    assert lean("Weather in Oslo for 3 days", '{"city": "Oslo"', arg_bias=3.0) == ([1, 4], [3.0, 3.0])  # "days": in


def test_another_argument_leans_in_while_the_requests_address_or_time_is_left():
    """left_bias: where the arguments may close, going on leans in while a parameter is unwritten and an
    e-mail address or clock time of the request is in no call, in any of its forms; it takes close_bias's
    place then. Inside a string only where the value is a whole span of the request or a typed form."""
    event = ToolSpec("create_event", "Create a calendar event", {"type": "object", "properties": {
        "title": {"type": "string"}, "date": {"type": "string"}, "time": {"type": "string"},
        "attendee": {"type": "string"}}, "required": ["title", "date"]})

    def lean(source, written, left_bias=2.0, close_bias=5.0):
        return _lean(event, source, written, left=left_bias, close=close_bias)

    invite = "Make an event named Board prep for 2026-11-03 and send an invite to priya@northwind.io"
    assert lean(invite, '{"title": "Board prep", "date": "2026-11-03"') == ([1, 4], [2.0, 2.0])
    assert lean(invite, '{"title": "Board prep", "date": "2026-11-03') == ([3], [2.0])  # `",` in a string
    assert lean(invite, '{"title": "Board prep", "date": "2026-11-03"', left_bias=0.0) == \
        ([1, 4, 2], [-5.0, -5.0, 5.0])  # off: close_bias as before (the address is no `said.values` value)
    assert lean(invite, '{"title": "Board prep", "attendee": "priya@northwind.io", "date": "2026-11-03"') == \
        ([1, 4, 2], [-5.0, -5.0, 5.0])  # written
    sushi = "new calendar item - Sushi night, 2026-12-19, 7:30 PM"
    assert lean(sushi, '{"title": "Sushi night", "date": "2026-12-19"') == ([1, 4], [2.0, 2.0])
    assert lean(sushi, '{"title": "Sushi night", "date": "2026-12-19", "time": "19:30') is None  # its 24-hour form
    assert lean(sushi, '{"title": "Sushi night", "date": "2026-12-19", "time": "17:30"') == ([1, 4], [2.0, 2.0])
    assert lean(sushi, '{"title": "Sushi night", "date": "2026-12-19", "time": "07:30"') == ([1, 4], [2.0, 2.0])  # morning
    assert lean(sushi, '{"title": "Sushi night", "when": "2026-12-19T19:30:00"') is None  # in an ISO time
    assert lean(invite, '{"title": "Board prep", "attendee": "priya@northwind.io.uk"') == ([1, 4], [2.0, 2.0])
    full = '{"title": "Sushi night", "date": "2026-12-19", "time": "19:30", "attendee": "x"'
    assert lean("Sushi night 2026-12-19 7:30 PM, dial +37 2 33 67 35 0", full) is None  # nothing unwritten
    assert lean("Sushi night on 2026-12-19", '{"title": "Sushi night", "date": "2026-12-19"', close_bias=0.0) is None
    note = "Board prep on 2026-11-03? Note: bring the Q3 deck"  # a label's value, as a quote
    assert lean(note, '{"title": "Board prep", "date": "2026-11-03"') == ([1, 4], [2.0, 2.0])
    assert lean(note, '{"title": "Board prep", "date": "2026-11-03", "attendee": "bring the Q3 deck"') == \
        ([1, 4, 2], [-5.0, -5.0, 5.0])
    # in a string, only where the value ends a phrase (a student went on after "Board" of "Board offsite prep", session 43)
    assert lean("Make an event named Board offsite prep, invite priya@northwind.io", '{"title": "Board') is None
    money = ToolSpec("send_money", "Send money", {"properties": {"iban": {}, "amount": {}, "currency": {"enum": ["USD", "EUR"]},
                                                                  "reference": {}}})
    memo = "Could you wire $12,400 to NL91ABNA0417164300? Memo: Q2 consulting fees"  # "USD" is in no phrase of it, and cuts none
    assert _lean(money, memo, '{"iban": "NL91ABNA0417164300", "amount": 12400, "currency": "USD', left=2.0) == ([3], [2.0])
    # an unwritten parameter's enum value said whole is left too: seed 0's weather student left out "En grados Celsius"
    weather = ToolSpec("get_weather", "Weather", {"properties": {"city": {}, "unit": {"enum": ["celsius", "fahrenheit"]}}})
    spanish = "¿Qué tiempo hará en Valparaíso los próximos 3 días? En grados Celsius, por favor."
    assert _lean(weather, spanish, '{"city": "Valparaíso"', left=2.0, close=5.0) == ([1, 4], [2.0, 2.0])
    assert _lean(weather, spanish, '{"city": "Valparaíso", "unit": "celsius"', left=2.0, close=5.0) is None  # written


def test_a_code_the_request_ends_on_is_closed_though_junk_stands_far_above_the_quote():
    """A student at "... order K-58213" (no full stop) put its closing quote 9 logits below junk and wrote
    "K-582138213eded": at a code that stands whole where a message ends, or where a lowercase word goes on after a code of
    CODE characters or more (said.ends_code), the tokens that close it lean MID_NAME x SLOT times copy_bias (MID_NAME alone
    until session 42, when a seed's student still ran "1290387" on into "129038778779"), found below TOP junk tokens too.
    A name there, or a code with more text after it, leans as before."""
    pieces = {t: f"j{t}".encode() for t in range(40)}
    pieces.update({40: b'"}', 41: b'",', 42: b"8", 43: b'"'})
    logits = np.full(44, 20.0, dtype=np.float32)
    logits[:40] += np.linspace(1.0, 0.5, 40)  # 40 junk pieces far ahead of the quote
    logits[40:44] = [11.0, 10.0, 19.0, 9.5]  # within 12 of the best, as students' copy_bias 4 reaches

    def lift(source, value):
        c = Copier(source, lambda t: pieces.get(t, b"qq"), Leans(copy=4.0))
        c.feed('{"order_id": "' + value)
        got = c.boost(logits, None)
        return {} if got is None else dict(zip(got[0].tolist(), got[1].tolist(), strict=True))

    for source in ("Where's my package? Order number is K-58213", "status of K-58213?!\nthanks"):
        got = lift(source, "K-58213")
        assert got[40] == got[41] == got[43] == 4.0 * MID_NAME * SLOT and 42 not in got, source
    assert lift("Where's my package? Order number is K-58213, from May", "K-58213") == {}
    assert lift("Where's my package? Order number is K-58213 from May", "K-58213")[41] == 4.0 * MID_NAME * SLOT  # prose after it
    assert lift("Where's my package? Order number is K-582 from May", "K-582") == {}  # too short to be sure it is whole
    assert set(lift("Where's my package? Order number is K-58213", "K-5821").values()) == {-36.0}  # closed, it cuts the code
    assert lift("Weather in Oslo", "Oslo") == {}  # a name: the closing quote is within reach, or a name runs on


def test_a_number_leans_toward_one_the_request_states_in_a_form_a_call_writes():
    """A student wrote 201 for "2k" (its "1" 1.3 above "0"): while a JSON number is written, the tokens that
    go on toward 2000 or close it on a stated number get +copy_bias. Its first digit is the model's own
    choice (which number goes where), and a number the request does not state gets no lean."""
    pieces = {0: b"0", 1: b"1", 2: b",", 3: b"}", 4: b"2", 5: b" "}
    c = Copier("pls transfer 2k GBP to AT611904300234573201", lambda t: pieces.get(t, b"qq"), Leans(copy=2.0))
    logits = np.array([25.4, 26.7, 17.6, 15.0, 17.4, 10.0], dtype=np.float32)
    c.feed('{"iban": "AT611904300234573201", "amount": ')
    assert not c.counting and c.args.number is None
    c.feed("2")
    assert c.counting and c.args.number == "2"
    c.feed("0")
    ids, amounts = c.boost(logits, None)
    # "0" toward 2000, not "1"; two digits into a stated number and not one yet, MID_NAME times copy_bias
    assert dict(zip(ids.tolist(), amounts.tolist(), strict=True)) == {0: 2.0 * MID_NAME}
    c.feed("00")
    logits[2] = 26.0  # "2000": closing it is lifted
    assert 2 in c.boost(logits, None)[0].tolist()
    c.feed(", ")
    assert c.args.number is None and not c.counting
    c.feed('"n": [7')
    assert c.args.number == "7" and c.boost(logits, None) is None  # 7 is stated nowhere
    c.feed('], "x": "1')
    assert c.args.number is None and c.copying  # digits inside a string are the string's


def test_a_number_is_not_closed_one_digit_into_a_stated_one_nor_run_on_past_a_whole_one():
    """Seed 1's cart student wrote 1 of "eleven tennis balls" (the close 8 logits above "1", and the close lean on it), and its
    transfer student 75000 of "seventy-five US dollars" ("0" 4.4 above closing). One digit into a stated number no call holds,
    and not one itself, the number goes on by MID_NAME times copy_bias and the arguments may not close yet; a stated number
    that no stated one goes on from closes by as much."""
    pieces = {0: b"0", 1: b"1", 2: b"}}", 3: b","}
    tool = ToolSpec("add_to_cart", "Add an item to the cart.", {"properties": {"item": {}, "quantity": {}}})
    c = Copier("hey can u put eleven tennis balls in my cart", lambda t: pieces.get(t, b"qq"), Leans(copy=4.0, close=5.0),
               tools=[tool], commas=np.array([2, 3]))
    c.begin("add_to_cart")
    c.feed('{"item": "tennis balls", "quantity": 1')
    assert c.ending.short_of("1") and not c.ending.may_close
    logits = np.array([10.8, 12.8, 20.8, 12.0], dtype=np.float32)
    assert dict(zip(*(a.tolist() for a in c.boost(logits, None)), strict=True)) == {1: 4.0 * MID_NAME}
    c.feed("1")
    assert 2 in c.boost(logits, None)[0].tolist() and c.ending.may_close
    c = Copier("buy 11 eggs and 1 pan", lambda t: pieces.get(t, b"qq"), Leans(copy=4.0))
    c.feed('{"quantity": 11, "n": 1')
    assert not c.ending.short_of("1")  # 1 is stated, and 11 is written
    c = Copier("put a ripe pear and 12 limes in my cart", lambda t: pieces.get(t, b"qq"), Leans(copy=4.0))
    c.feed('{"item": "ripe pear", "quantity": 1')  # "a" counts 1 here: closing on it is lifted, as going on toward 12 is
    assert not c.ending.short_of("1") and set(c.boost(np.array([20.0, 20.0, 20.0, 20.0], dtype=np.float32), None)[0]) == {2, 3}
    c = Copier("Send seventy-five US dollars to NO9386011117947", lambda t: pieces.get(t, b"qq"), Leans(copy=4.0))
    c.feed('{"iban": "NO9386011117947", "amount": 75')
    logits = np.array([25.4, 16.5, 0.0, 21.0], dtype=np.float32)
    assert dict(zip(*(a.tolist() for a in c.boost(logits, None)), strict=True)) == {3: 4.0 * MID_NAME}


def test_a_value_its_description_glosses_by_a_word_the_request_says_is_leaned_to_and_closed():
    """Val multiple_46: "Sort this list of names in ascending order" and `order` "This can be 'asc' for ascending order, or 'desc'
    for descending order.": the default wrote "ascending". A value so glossed counts as said (described.glossed): at its first
    token it gets the hold, and written whole it closes at the hold (the request's "ascending" would run it on)."""
    schema = {"properties": {"elements": {"type": "array"}, "order": {
        "type": "string", "description": "The order. This can be 'asc' for ascending order, or 'desc' for descending order."}}}
    assert described.glossed("Sort this list in ascending order", schema) == {"order": {"asc"}}
    assert described.glossed("Sort this list in asc order", schema) == described.glossed("Sort it", schema) == {}  # said, unsaid
    units = {"properties": {"u": {"description": "The unit: Celsius ('C') or Fahrenheit ('F')."}}}
    assert described.glossed("Rome in celsius please", units) == {"u": {"C"}}
    vocab = ["asc", "ascending", "ending", '"', '",', '"}']
    c = Copier("Sort this list of names in ascending order: ['Sam', 'Alice']", lambda t: vocab[t].encode(), Leans(copy=2.0, arg=2.0),
               tools=[ToolSpec("sort_list", "Sort a list.", schema)])
    c.begin("sort_list")
    c.feed('{"elements": ["Sam", "Alice"], "order": "')
    hold = 2.0 * MID_NAME * SLOT
    got = dict(zip(*(a.tolist() for a in c.boost(np.array([10.0, 20.0, 0.0, 0.0, 0.0, 0.0]), None)), strict=True))
    assert got[0] == hold and got.get(1, 0.0) < hold
    c.feed("asc")
    got = dict(zip(*(a.tolist() for a in c.boost(np.array([0.0, 0.0, 20.0, 10.0, 10.0, 10.0]), None)), strict=True))
    assert min(got[3], got[4], got[5]) >= hold and got.get(2, 0.0) < hold


def test_three_digits_into_a_stated_number_the_next_digit_gets_the_hold():
    """Seed 2's transfer student closed 34000 of "¥340,000", the close 22 logits above "0" (convert's dev requests, session 47).
    Three digits or more into a stated number, and none itself, the digit that goes on toward it gets the hold; fewer, MID_NAME."""
    pieces = {0: b"0", 1: b",", 2: b"}"}
    c = Copier("Please wire ¥340,000 to DE75512108001245126199", lambda t: pieces.get(t, b"qq"), Leans(copy=4.0))
    c.feed('{"iban": "DE75512108001245126199", "amount": 34000')
    logits = np.array([3.0, 25.9, 10.0], dtype=np.float32)
    assert dict(zip(*(a.tolist() for a in c.boost(logits, None)), strict=True)) == {0: 4.0 * MID_NAME * SLOT}
    c = Copier("Please wire ¥340,000 to DE75512108001245126199", lambda t: pieces.get(t, b"qq"), Leans(copy=4.0))
    c.feed('{"amount": 34')
    logits = np.array([20.0, 25.9, 10.0], dtype=np.float32)
    assert dict(zip(*(a.tolist() for a in c.boost(logits, None)), strict=True)) == {0: 4.0 * MID_NAME}


def test_a_compound_unit_is_copied_whole():
    """Units students wrote "miles" of "how many nautical miles is 42 kilometers" ("n" 8.5 behind) and "fluid" of "8 fluid ounces"
    (convert's dev requests, session 47). At a value's first token whose best begins a compound unit's last word, the tokens that
    begin the compound get the hold; a value is not closed on its qualifier, and goes on into the unit at the hold."""
    vocab = ["n", "naut", "ical", " miles", "miles", '"', '",', "kil", "ometers", "fluid", " ounces", "x"]
    tok = {p: i for i, p in enumerate(vocab)}
    tool = ToolSpec("convert_units", "Convert.", {"properties": {"value": {}, "from_unit": {}, "to_unit": {}}})
    hold = 4.0 * MID_NAME * SLOT

    def boost(text, written, top):
        c = Copier(text, lambda t: vocab[t].encode(), Leans(copy=4.0), tools=[tool], tokenize=lambda s: [tok[p] for p in _split(s, vocab)])
        c.begin("convert_units")
        c.feed(written)
        logits = np.zeros(len(vocab), dtype=np.float32)
        for p, x in top.items():
            logits[tok[p]] = x
        return {vocab[t]: a for t, a in zip(*(a.tolist() for a in c.boost(logits, None)), strict=True)}

    up = boost("how many nautical miles is 42 kilometers", '{"value": 42, "from_unit": "kilometers", "to_unit": "',
               {"miles": 35.9, "n": 27.4, "naut": 20.0})
    assert up["naut"] == hold and up.get("n", 0.0) < hold and up["miles"] < hold  # the first token of the request's own split
    up = boost("how many miles is 42 kilometers", '{"value": 42, "from_unit": "kilometers", "to_unit": "', {"miles": 35.9, "n": 27.4})
    assert "n" not in up  # no compound
    up = boost("Recipe says 8 fluid ounces of milk", '{"value": 8, "from_unit": "fluid', {'",': 26.0, " ounces": 20.7})
    assert up['",'] == -hold and up[" ounces"] == hold



def test_a_label_begun_at_a_later_word_is_begun_at_its_start():
    """Seed 2's transfer student began "— Verwendungszweck: Rechnung 2027-044 Tischlerei Huber" at "Tischlerei" ("Re" far behind
    even with the tied span's SLOT lean; a request of my own, session 48). At a value's first token whose best begins a later word
    of the label or quote tied to the parameter, and no word elsewhere, the first token of the request's split of it gets the hold."""
    vocab = ["T", "Tisch", "Rec", "R", "hnung", '"', "x", " Tisch"]
    tok = {p: i for i, p in enumerate(vocab)}
    tool = ToolSpec("send_money", "Send.", {"properties": {"iban": {}, "reference": {}}})
    hold = 4.0 * MID_NAME * SLOT
    text = "Send 1.500 € to AT483200000012345864 — Verwendungszweck: Rechnung Tischlerei"
    c = Copier(text, lambda t: vocab[t].encode(), Leans(copy=4.0), tools=[tool], tokenize=lambda s: [tok[p] for p in _split(s, vocab)])
    c.begin("send_money")
    c.feed('{"iban": "AT483200000012345864", "reference": "')
    logits = np.zeros(len(vocab), dtype=np.float32)
    logits[[0, 1, 2, 3]] = [17.5, 17.0, 5.0, 9.0]
    up = {vocab[t]: a for t, a in zip(*(a.tolist() for a in c.boost(logits, None)), strict=True)}
    assert up["Rec"] == hold and up.get("R", 0.0) < hold and up.get("T", 0.0) < hold
    assert Sampler(0.0, 1.0, 0).sample(logits, None, (np.array([tok[p] for p in up]), np.array(list(up.values())))) == tok["Rec"]


def test_a_stated_negative_numbers_sign_is_written():
    """Two seeds' students wrote 40 of "-40 celsius in fahrenheit?" (the first character is the model's own choice). At a value's
    first token, where the model's best begins the digits of a stated negative number no call holds, and of no other stated
    number, the tokens that begin it with its sign get the hold; elsewhere, or once written, nothing."""
    pieces = {0: b"4", 1: b"-", 2: b'"', 3: b"5", 4: b"-4"}
    c = Copier("-40 celsius in fahrenheit?", lambda t: pieces.get(t, b"qq"), Leans(copy=4.0))
    logits = np.array([30.0, 12.0, 20.0, 10.0, 5.0], dtype=np.float32)
    c.feed('{"value": ')
    assert c.signing and dict(zip(*(a.tolist() for a in c.boost(logits, None)), strict=True)) == {1: 36.0, 4: 36.0}
    c.feed("-40")
    assert not c.signing and c.counting
    c.feed(', "x": ')
    assert c.boost(logits, None) is None  # -40 is written
    c = Copier("-40 celsius or 45 fahrenheit", lambda t: pieces.get(t, b"qq"), Leans(copy=4.0))
    c.feed('{"value": ')
    assert c.boost(logits, None) is None  # "4" begins 45 too: which number is the model's
    c.feed('"')
    assert not c.signing


def test_the_one_stated_number_no_call_holds_leans_at_a_values_first_digit():
    """BFCL val's simple_python_194: "the top three plants" for `num_results` ("Default is 5"), 5 ahead of 3 by 0.2. At a value's
    first token, where the model's best digits begin no stated number and one stated number alone is in no call, the tokens that
    begin it get copy_bias; not where two are left (which one is the model's), nor where its best begins one."""
    pieces = {0: b"5", 1: b"3", 2: b"1", 3: b"2"}
    logits = np.array([23.8, 23.6, 20.0, 19.0], dtype=np.float32)
    c = Copier("What are the top three plants for a hill slope?", lambda t: pieces.get(t, b"qq"), Leans(copy=2.0))
    c.feed('{"slope_type": "hill", "num_results": ')
    assert c.signing and dict(zip(*(a.tolist() for a in c.boost(logits, None)), strict=True)) == {1: 2.0}
    c = Copier("Between 2012 and 2015, top three", lambda t: pieces.get(t, b"qq"), Leans(copy=2.0))
    c.feed('{"from": 2012, "n": ')
    assert c.boost(logits, None) is None  # 2015 and 3 are both left
    c = Copier("Between 2012 and 2015, top three", lambda t: pieces.get(t, b"qq"), Leans(copy=2.0))
    c.feed('{"from": 2012, "n": 3, "to": ')  # 2015 alone is left
    assert c.boost(np.array([10.0, 9.0, 8.0, 23.0], dtype=np.float32), None) is None  # "2" begins it: the model's own
    assert dict(zip(*(a.tolist() for a in c.boost(np.array([23.8, 9.0, 8.0, 22.5], dtype=np.float32), None)), strict=True)) == {3: 2.0}
    for text, written in (("Plan a 2k run", '{"distance": 2000, "laps": '),  # 2k is written, as 2000 (not "2" left)
                          ("Remind me on 2024-05-12", '{"date": "2024-05-12", "laps": ')):  # a date's parts are no numbers left
        c = Copier(text, lambda t: pieces.get(t, b"qq"), Leans(copy=2.0))
        c.feed(written)
        assert c.boost(np.array([23.8, 9.0, 8.0, 22.5], dtype=np.float32), None) is None


def test_a_value_is_not_closed_inside_a_label_a_code_or_the_last_clause_its_parameter_opens():
    """Seed 1's transfer student closed "Q2" of "Memo: Q2 consulting fees", "Concert" of ", reference Concert tickets Berlin" and
    "LI21 0881 0000 2324 013A" of "... 013A A" far above going on. Closed there, the value would cut what the user set apart: the
    closing pieces get -hold (copy x MID_NAME x SLOT) and the lean reads from the best of the rest."""
    pieces = {0: b'"}}', 1: b'",', 2: b" tickets", 3: b" consulting", 4: b" A"}
    hold = 4.0 * MID_NAME * SLOT
    for source, written, on in [("Please send 250 euros to DE89, reference Concert tickets Berlin", "Concert", 2),
                                ("Could you wire $12,400 to NL91ABNA0417164300? Memo: Q2 consulting fees", "Q2", 3),
                                ("Transfer 2,345.60 CHF to LI21 0881 0000 2324 013A A", "LI21 0881 0000 2324 013A", 4)]:
        c = Copier(source, lambda t: pieces.get(t, b"qq"), Leans(copy=4.0))
        c.feed('{"reference": "' + written)
        logits = np.array([25.2, 24.0, 20.9, 20.0, 20.0], dtype=np.float32)
        lift = dict(zip(*(a.tolist() for a in c.boost(logits, None)), strict=True))
        assert lift[0] == lift[1] == -hold and lift[on] == 4.0 * MID_NAME, source
    c = Copier("Please send 250 euros to DE89, reference Concert tickets Berlin", lambda t: pieces.get(t, b"qq"), Leans(copy=4.0))
    c.feed('{"note": "Concert')  # another parameter: the clause is not its value
    assert c.boost(np.array([25.2, 24.0, 20.9, 0, 0], dtype=np.float32), None)[1].min() > 0


def test_a_time_or_date_leans_toward_the_form_a_call_writes():
    """A student wrote "14:00" for "at noon" ("4" 4 logits above "2"): the copy lean copies a request's times
    and dates in the forms calls write them (said.forms) as it copies the request's words."""
    pieces = {0: b"1", 1: b"2", 2: b"4", 3: b'"', 4: b"-"}
    c = Copier("Lunch on 2 Feb 2027 at noon", lambda t: pieces.get(t, b"qq"), Leans(copy=4.0))
    c.feed('{"time": "1')
    ids, _ = c.boost(np.array([0.0, 31.3, 35.2, 0.0, 0.0], dtype=np.float32), None)
    assert ids.tolist() == [1]
    c.feed('2:00", "date": "2027')
    ids, _ = c.boost(np.array([0.0, 0.0, 0.0, 30.0, 29.0], dtype=np.float32), None)
    assert 4 in ids.tolist()  # on to 2027-02-02 (or closed on the year, a whole word of the request)


def test_of_two_lifted_pieces_one_the_others_start_the_one_that_ends_a_word_wins_a_tie():
    """The cart student's logits put "aja" and "ajas" at 35.5 each after "c" of "cuatro cajas de galletas":
    both keep the value a span, and a tie broke either way between runs. The piece that ends a word of the
    request where the shorter one stops inside it gets WHOLE more."""
    pieces = {0: b"aja", 1: b"ajas", 2: b"qq"}
    c = Copier("carrito: cuatro cajas de galletas", lambda t: pieces.get(t, b"qq"), Leans(copy=4.0))
    c.feed('{"item": "c')
    ids, amounts = c.boost(np.array([35.5, 35.5, 30.0], dtype=np.float32), None)
    assert dict(zip(ids.tolist(), amounts.tolist(), strict=True)) == {0: 4.0, 1: 4.0 + WHOLE}


def test_a_value_is_copied_along_the_tokenizers_own_split_of_the_request():
    """The weather student wrote "Thessa" (The|ss|a, where "a" led "alon" by 3.8 logits), then closed the
    string far above any piece that went on; and "Brug" (B|rug, where "B" led "Bru" by 0.3). With the
    tokenizer at hand, a piece that a longer one along its own split of the request's word begins with
    (The|ss|alon|iki, Bru|ges) is not lifted, and a next piece of that split is looked for below the TOP
    junk too. A piece that leaves the value off the split's boundaries is not lifted where one on it is: seed 1's cart student
    wrote "pret" of pre|tz|els, then "zel" (pret|zel, 7.4 above "zels") and "pretzel pretzels" (session 43). Before the hold on
    the split's next piece (session 42), "pre" had met "ste" 6.8 logits above "tz" and "pret" was kept."""
    vocab = ["The", "ss", "a", "alon", "iki", '",', "B", "Bru", "rug", "ges", "p", "pre", "pret", "tz", "els"]
    vocab += [f"j{i}" for i in range(TOP + 2)]
    split = {"Thessaloniki": ["The", "ss", "alon", "iki"], "Bruges": ["Bru", "ges"], "pretzels": ["pre", "tz", "els"]}

    def tokenize(text):  # the real tokenizer's split of these words (Gemma 3's, read off llama.cpp)
        return [vocab.index(p) if p in vocab else len(vocab) - 1 for w in text.split(" ") for p in split.get(w, [w])]

    source = "Sunny in Thessaloniki or in Bruges with pretzels"
    # part way into a name, the split's next piece is lifted by the hold (copy x MID_NAME x SLOT) from as far down: the student
    # closed "Thessalon" 12 logits above "iki" (session 42); without the tokenizer, by MID_NAME within reach, as before
    for tok, lifted in [(tokenize, {3: 36.0}), (None, {2: 12.0})]:
        c = Copier(source, lambda t: vocab[t].encode(), Leans(copy=4.0), tokenize=tok)
        c.feed('{"city": "Thess')
        logits = np.full(len(vocab), 20.0, dtype=np.float32)  # TOP junk pieces, above "alon"
        logits[[2, 3, 5]] = 20.3, 16.5, 25.4
        ids, amounts = c.boost(logits, None)
        assert dict(zip(ids.tolist(), amounts.tolist(), strict=True)) == lifted, tok
        c.feed("alon" if tok else "a")
        logits[[4, 5]] = 16.0, 29.0
        got = c.boost(logits, None)
        assert (dict(zip(got[0].tolist(), got[1].tolist(), strict=True)) == {4: 36.0}) if tok else got is None or 4 not in got[0]
    for tok, lifted in [(tokenize, {7: 4.0}), (None, {6: 4.0, 7: 4.0})]:
        c = Copier(source, lambda t: vocab[t].encode(), Leans(copy=4.0), tokenize=tok)
        c.feed('{"city": "')
        logits = np.full(len(vocab), 0.0, dtype=np.float32)
        logits[[6, 7]] = 33.2, 32.9
        ids, amounts = c.boost(logits, None)
        assert dict(zip(ids.tolist(), amounts.tolist(), strict=True)) == lifted, tok
        c.begin()
        c.feed('{"item": "')
        logits[[6, 7, 10, 11, 12]] = 0.0, 0.0, 29.6, 28.8, 29.9
        ids, amounts = c.boost(logits, None)
        assert set(ids.tolist()) == ({11} if tok else {10, 11, 12}), tok


def test_the_split_keeps_a_whole_word_and_the_quote_and_tokenizes_only_short_windows():
    """A helper's review: "e" after "Rom" ends "Rome", a word of the request, though "eo" of Rom|eo goes on
    along "Romeo"'s split: still lifted. How a value closes is not the split's: the request's `report|",`
    does not unlift `"`. A run with no space (compact JSON, a URL) is never tokenized whole, and a tokenizer
    whose pieces do not give the text back (one that adds a space) makes the split say nothing."""
    vocab = ["Rom", "e", "eo", "Rome", '"', '",', "report", "x"]
    split = {"Romeo": ["Rom", "eo"], 'report",': ["report", '",']}
    calls = []

    def tokenize(text):
        calls.append(text)
        return [vocab.index(p) for w in text.split(" ") if w for p in split.get(w, [w] if w in vocab else ["x"])]

    piece = lambda t: vocab[t].encode()  # noqa: E731
    c = Copier("Trip to Rome with Romeo", piece, Leans(copy=4.0), tokenize=tokenize)
    c.feed('{"city": "Rom')
    logits = np.zeros(len(vocab), dtype=np.float32)
    logits[[1, 2]] = 5.0, 3.0
    assert set(c.boost(logits, None)[0].tolist()) == {1, 2}  # "Rome" stays within reach
    c = Copier('Save it as "report", then email Bob', piece, Leans(copy=4.0), tokenize=tokenize)
    c.feed('{"name": "report')
    logits = np.zeros(len(vocab), dtype=np.float32)
    logits[[4, 5]] = 5.0, 4.0
    assert c.splits.next("report") == {5} and 4 in c.boost(logits, None)[0].tolist()
    splits = Splits('{"a":' + "1" * 20000 + "}", tokenize, piece)
    assert splits.next('{"a":' + "1" * 100) == set() and splits.first(7, "{") is False
    assert max(map(len, calls)) <= 2 * WINDOW + 2
    spaced = Splits("Romeo", lambda text: [0, 2] if text == "Romeo" else [], lambda t: (" " + vocab[t]).encode())
    assert spaced.next("Rom") == set()


def test_a_word_goes_on_along_the_split_the_request_writes_it_in_too():
    """Seed 2's transfer student wrote "Cynsz" of "title: Czynsz lipiec" (my own request, session 47): the request's tokens are
    " Cz|yn|sz", the word alone C|zyn|sz, and "Cz", the model's best by 8, was dropped as off the split. A one-word value goes on
    along either split."""
    vocab = [" Cz", "yn", "sz", "C", "zyn", " lip", "iec", "title", ":", "x"]
    tok = {p: i for i, p in enumerate(vocab)}
    splits = Splits("title: Czynsz lipiec", lambda s: [tok[p] for p in _split(s, vocab)],
                    lambda t: vocab[t].encode())
    assert splits.next("Cz") == {tok["yn"]} and splits.next("C") == {tok["zyn"]}
    assert splits.next("Czynsz") == {tok[" lip"]}


def test_a_value_begins_at_a_request_word_the_model_writes_with_the_space_before_it():
    """Seed 2's units student, which never saw "teaspoons" as a value (the gate holds out values, not only calls), wrote " teaspoons"
    (the request's own token for "into teaspoons", space and all) 4 times in its held-out calls and "tasting" 5 times ("t", lifted
    as the start of "teaspoons", then "ast": "te" of te|as|poons stood 4.5 below the best). At a value's first token, a contender
    that is a word of the request with its space is shunned and the first piece of that word's own split takes its place and
    copy_bias more (session 44). A word the request does not hold keeps its space."""
    vocab = ["p", "sp", " teaspoons", "t", "te", "as", "poons", '",', " pints", "."]
    split = {"teaspoons": ["te", "as", "poons"]}

    def tokenize(text):  # Gemma 3's split of these words, read off llama.cpp
        return [vocab.index(p) if p in vocab else len(vocab) - 1 for w in re.findall(r"\w+|\S", text) for p in split.get(w, [w])]

    c = Copier("Please turn 174 ml into teaspoons.", lambda t: vocab[t].encode(), Leans(copy=4.0), tokenize=tokenize)
    c.feed('{"value": 174, "from_unit": "ml", "to_unit": "')
    logits = np.zeros(len(vocab), dtype=np.float32)
    logits[:5] = 29.7, 29.2, 28.5, 27.0, 24.0  # the student's logits there
    logits[8] = 28.0
    lift = dict(zip(*(a.tolist() for a in c.boost(logits, None)), strict=True))
    assert lift[2] < 0 and 8 not in lift  # " pints" is no word of the request: not this lean's
    assert logits[4] + lift[4] == max(logits + np.array([lift.get(t, 0.0) for t in range(len(vocab))]))
    # "t" begins "te", the split's own first piece; "into" ties the word to `to_unit` (said.slots): SLOT times copy_bias
    assert lift[4] == 28.5 - 24.0 + 4.0 * SLOT and 3 not in lift
    c.feed("te")
    assert c.splits.next("te") == {5}
    c = Copier("Please turn 174 ml into spoons.", lambda t: vocab[t].encode(), Leans(copy=4.0), tokenize=tokenize)
    c.feed('{"to_unit": "')
    assert c.boost(logits, None) is None or 2 not in c.boost(logits, None)[0].tolist()


def test_a_currency_the_request_names_by_sign_or_word_leans_to_its_code():
    """Both seeds' transfer students wrote "EUR" of "37.25 quid ... IBAN IE29..." (session 44). At the first token of a top-level
    value whose enum holds the code of the one currency the request names ("quid" GBP, "francos suizos" CHF, "€" EUR), the
    pieces that begin the code get 9 x copy_bias; not where the request names two, nor where the enum lacks it."""
    assert said.currency("37.25 quid, IBAN IE29AIBK93115212345678") == "GBP" and said.currency("850 francos suizos") == "CHF"
    assert said.currency("send 50 EUR and $20") is None and said.currency("pay 300 to DE89") is None
    vocab = ["E", "EUR", "G", "GBP", '"', "x"]
    tool = ToolSpec("send_money", "Send money.", {"properties": {"currency": {"type": "string", "enum": ["EUR", "GBP", "USD"]}}})

    def lift(source, tools=(tool,)):
        c = Copier(source, lambda t: vocab[t].encode(), Leans(copy=4.0, close=5.0), tools=list(tools))
        c.begin("send_money")
        c.feed('{"currency": "')
        logits = np.array([30.0, 29.0, 20.0, 19.0, 0.0, 0.0])
        got = c.boost(logits, None)
        return dict(zip(*(a.tolist() for a in got), strict=True)) if got else {}

    up = lift("I owe my flatmate 37.25 quid for the electricity")
    assert up[2] == up[3] == 4.0 * MID_NAME * SLOT and 0 not in up
    assert 2 not in lift("37.25 quid or 40 EUR")  # two named: no code lean
    assert 2 not in lift("37.25 quid", [ToolSpec("send_money", "Send.", {"properties": {"currency": {"type": "string"}}})])


def test_a_date_goes_whole_into_the_layout_its_parameter_asks_for():
    """The default wrote "date": "1915" for "on March 17, 1915" where the tool asks "in yyyy-mm-dd format", closing on the year (a
    whole word of the request), and "01-2023" for "June01 2023" in mm-dd-yyyy (BFCL dev). Where a top-level parameter's description
    states a layout (or its schema's format is "date"), the request's one date is begun in it, a date part way written goes on in it
    (the hold, 3 x 3 x copy_bias), and closing part way is shunned; not for a parameter that states none."""
    from edgeslm.decoding import clock

    assert clock.layout({"description": "The date, in the format mm-dd-yyyy."}) == "mm-dd-yyyy"
    assert clock.layout({"description": "when, as DD/MM/YYYY"}) == "dd/mm/yyyy" and clock.layout({"format": "date"}) == "yyyy-mm-dd"
    assert clock.layout({"description": "The date."}) is None and clock.layout({"description": "mm-mm-yyyy"}) is None
    assert clock.days("tomorrow, June01 2023.") == [(2023, 6, 1)] and clock.days("Marching 12 2020") == []
    assert clock.written((1915, 3, 17), "mm/dd/yyyy") == "03/17/1915"
    vocab = ["1", "1915", "9", "-", "-03", '"', '",', "March", "x", ".", "0"]
    source = "What was Albert Einstein's contribution to science on March 17, 1915?"

    def lift(written, description="The date of the contribution, in yyyy-mm-dd format.", logits=None):
        tool = ToolSpec("contrib", "Contributions.", {"properties": {"date": {"type": "string", "description": description}}})
        c = Copier(source, lambda t: vocab[t].encode(), Leans(copy=2.0), tools=[tool])
        c.begin("contrib")
        c.feed(written)
        got = c.boost(np.array(logits or [22.7, 20.0, 18.0, 10.0, 9.0, 19.2, 17.2, 17.1, 0.0, 12.0, 5.0]), None)
        return dict(zip(*(a.tolist() for a in got), strict=True)) if got else {}

    hold = 2.0 * MID_NAME * SLOT
    first = lift('{"date": "')
    assert first[0] == first[1] == hold and first.get(7, 0.0) < hold  # "1", "1915" begin 1915-03-17; "March" does not
    on = lift('{"date": "1915')
    assert on[5] == on[6] == -hold and on[3] == on[4] == hold and on.get(9, 0.0) <= 2.0  # not closed on the year, on with "-"
    assert on[5] + 19.2 < on[3] + 10.0
    plain = lift('{"date": "1915', "The date of the contribution.")
    assert plain.get(5, 0.0) > -hold and plain.get(3, 0.0) < hold
    assert lift('{"date": "', "The date of the contribution.").get(1, 0.0) < hold
    assert lift('{"date": "03-17', "The date, in the format mm-dd-yyyy.")[4 - 1] == hold  # "-" on toward 03-17-1915
    # a month's layout (the default wrote 2022-04-04 for "next month (April 2022)" in 'mm-yyyy' format, val simple_python_286)
    assert clock.layout({"description": "Month of the concert in 'mm-yyyy' format."}) == "mm-yyyy"
    assert clock.layout({"description": "as YYYY/MM"}) == "yyyy/mm" and clock.layout({"description": "mm-mm"}) is None
    assert clock.months("next month (April 2022), then Sept. 2023") == [(2022, 4, 0), (2023, 9, 0)]
    assert clock.months("on 2 April 2022 or April 2, 2022") == []  # days, not months
    assert clock.forms("next month (April 2022)", ["mm-yyyy"]) == ["04-2022"] and clock.forms("in April 2022") == []
    assert clock.dates("2 April 2022, May 2023", "yyyy-mm") == [(2022, 4, 2), (2023, 5, 0)]
    assert clock.dates("2 April 2022, May 2023", "yyyy-mm-dd") == [(2022, 4, 2)]


def test_another_argument_leans_in_while_a_stated_number_its_unit_ties_to_a_parameter_is_unwritten():
    """The default closed `{"location": "San Jose"}` for "Find air quality index in San Jose for next three days." (BFCL val):
    "days" is a word of the tool's own description, so it counted for no parameter, and the close lean pushed. A number the request
    states (in digits or words) that no call holds, whose unit is a word of an unwritten parameter, leans to going on (arg_bias);
    not once it is written, nor where its unit matches no parameter."""
    from edgeslm.decoding import amounts

    assert (frozenset({"3"}), "days") in amounts.units("for next three days") and amounts.units("5 more articles")[0][1] == "articles"
    aqi = ToolSpec("air_quality", "Air Quality Index for a location over a number of days.", {"type": "object", "properties": {
        "location": {"type": "string"}, "days": {"type": "integer", "description": "Number of days to retrieve."}}})
    asked = "Find air quality index in San Jose for next three days."
    assert _lean(aqi, asked, '{"location": "San Jose"', arg=2.0, close=5.0) == ([1, 4], [2.0, 2.0])
    weeks = _lean(aqi, "Find air quality index in San Jose for next three weeks.", '{"location": "San Jose"', arg=2.0, close=5.0)
    assert weeks is not None and dict(zip(*weeks, strict=True))[1] == -5.0  # no parameter's unit: the close lean as before
    assert _lean(aqi, asked, '{"location": "San Jose", "days": 3', arg=2.0, close=5.0) == ([1, 4, 2], [-5.0, -5.0, 5.0])  # written


def test_a_place_goes_on_into_its_region_and_a_quote_tied_to_another_parameter_is_not_this_ones():
    """Seed 2's weather student closed "Tel Aviv" of "Forecast for Tel Aviv, Israel, fahrenheit, 6 days" 12 logits above going on,
    then wrote "Tel Aviv, 6" when only pushed (session 45). A place with its region after "in", "for" ... (said.regions) is not closed
    inside, and goes on along the request's own split at the hold (9 x copy_bias); not where the tool asks for the region apart. Its
    transfer student wrote the quote of "with the reference 'Deposit – Flat 12, Leeds'" as the `iban`: at a value's first token, a
    quote tied to another parameter of the tool (said.slots) is not this one's."""
    from types import SimpleNamespace as NS

    from edgeslm.decoding import said

    text = "Forecast for Tel Aviv, Israel, fahrenheit, 6 days"
    assert [text[a:b] for a, b in said.regions(text)] == ["Tel Aviv, Israel"]
    assert said.regions("weather in Oslo, Bergen and Rome") == [] and said.regions("in Rio de Janeiro, Brazil.") == [(3, 25)]
    vocab = ["Tel", " Aviv", ",", " Israel", '",', " f", '"', "x"]
    tok = {p: i for i, p in enumerate(vocab)}

    def lift(written, props=None, logits=None):
        tool = NS(name="get_weather", description="", parameters={"properties": props or {"city": {}, "unit": {}}})
        c = Copier(text, lambda t: vocab[t].encode(), Leans(copy=4.0), tools=[tool],
                   tokenize=lambda s: [tok[p] for p in _split(s, vocab)])
        c.begin("get_weather")
        c.feed(written)
        got = c.boost(np.array(logits or [0.0, 0.0, 12.0, 0.0, 32.8, 25.6, 21.0, 0.0]), None)
        return dict(zip(*(a.tolist() for a in got), strict=True)) if got else {}

    hold = 4.0 * MID_NAME * SLOT
    at = lift('{"city": "Tel Aviv')
    assert at[tok['",']] == -hold and at[tok[","]] >= 12.0  # not closed before the region
    on = lift('{"city": "Tel Aviv,')
    assert on[tok[" Israel"]] == hold and on[tok['",']] == -hold
    assert lift('{"city": "Tel Aviv', {"city": {}, "country": {"description": "The country."}}).get(tok['",'], 0.0) > -hold

    money = NS(name="send_money", description="", parameters={"properties": {"iban": {}, "reference": {}}})
    ask = "Pay GB82WEST12345698765432 £1,050.75 with the reference 'Deposit – Flat 12, Leeds'"
    pieces = ["GB", "Deposit", '"', "x"]
    c = Copier(ask, lambda t: pieces[t].encode(), Leans(copy=2.0), tools=[money])
    c.begin("send_money")
    c.feed('{"iban": "')
    got = c.boost(np.array([20.0, 21.0, 0.0, 0.0]), None)
    up = dict(zip(*(a.tolist() for a in got), strict=True))
    assert up.get(1, 0.0) <= 2.0  # the reference's quote gets no slot lean as the iban
    c.feed('GB82WEST12345698765432", "reference": "')
    got = c.boost(np.array([20.0, 21.0, 0.0, 0.0]), None)
    assert dict(zip(*(a.tolist() for a in got), strict=True))[1] == 2.0 * SLOT  # as the reference, it does


def _split(s, vocab):
    """Greedy longest-piece split of `s` over `vocab` (a stand-in for the tokenizer)."""
    out, i = [], 0
    while i < len(s):
        p = max((p for p in vocab if s.startswith(p, i)), key=len, default=None)
        if p is None:
            i += 1
            continue
        out.append(p)
        i += len(p)
    return out


def test_inside_a_quote_the_split_is_followed_at_the_hold_only_while_it_stays_inside():
    """Held inside a quote, the default went on along the request's own split of "Sword+'" with the piece "+'" at the hold, and
    wrote "Guardian Sword+'" (BFCL dev, session 45): a piece that runs past the quote's end is lifted as anywhere else."""
    text = "What's the power rating for the Weapon 'Guardian Sword+' in the game?"
    vocab = ["Guardian", " Sword", "+'", "+", '",', '+",', "x"]
    tok = {p: i for i, p in enumerate(vocab)}
    c = Copier(text, lambda t: vocab[t].encode(), Leans(copy=2.0), tools=[ToolSpec("stats", "Stats.", {"properties": {"item": {}}})],
               tokenize=lambda s: [tok[p] for p in _split(s, vocab)])
    c.begin("stats")
    c.feed('{"item": "Guardian Sword')
    got = c.boost(np.array([0.0, 0.0, 13.7, 13.9, 17.8, 14.0, 0.0]), None)
    up = dict(zip(*(a.tolist() for a in got), strict=True))
    hold = 2.0 * MID_NAME * SLOT
    assert up.get(tok["+'"], 0.0) < hold and up[tok['",']] == -hold  # not closed inside the quote, nor run past it at the hold
    assert up[tok["+"]] >= 2.0 * MID_NAME  # on inside it as a name is
