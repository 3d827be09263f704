"""What the lean reads of a request (decoding/said.py): its telling words, values, clauses and the text it
copies from; and the ranker (edgeslm/ranking.py) that orders the offered tools by it. The leans built on
them: tests/test_copying.py."""

from types import SimpleNamespace

import numpy as np

from edgeslm.decoding.said import Ranking, clauses, own_values, relevance, source_text, typed, unvalued, values
from edgeslm.types import Message, ToolSpec

TOOLS = [ToolSpec("track_parcel", "Where a parcel is now.", {}), ToolSpec("get_weather", "Weather in a city.", {}),
         ToolSpec("get_time", "The local time in a city.", {})]


def test_tools_rank_by_the_requests_telling_words():
    r = relevance("What's the weather like in Lisbon?", TOOLS)
    assert r == {"track_parcel": 0.0, "get_weather": 1.0, "get_time": 0.0}
    r = relevance("Where is my parcel, and what time is it in Oslo?", TOOLS)
    assert r["track_parcel"] > 0 and r["get_time"] > 0 and r["get_weather"] == 0.0
    # "city" is in two descriptions: it tells less than "local", found in one
    r = relevance("local city", TOOLS)
    assert r["get_time"] == 1.0 and 0 < r["get_weather"] < 1.0
    assert set(relevance("Hello there", TOOLS).values()) == {0.0}


def test_a_request_is_cut_into_clauses_each_with_its_own_values():
    asked = ("What's the air quality in New York for 5 days, weather in LA for 7 days, news about global "
             "warming for 3 days, and air quality in Beijing for 2 days?")
    parts = clauses(asked)
    assert parts == ["What's the air quality in New York for 5 days", "weather in LA for 7 days",
                     "news about global warming for 3 days", "air quality in Beijing for 2 days?"]
    assert own_values(asked, parts) == [{"new york", "5"}, {"la", "7"}, {"3"}, {"beijing", "2"}]
    # a piece under three words stays with its neighbour; a value stated in every clause tells none apart
    assert clauses("Find hotels in San Francisco, CA") == ["Find hotels in San Francisco CA"]
    asked = "Compound interest at 4% for 5 years. Simple interest at 3.5% for 5 years."
    assert own_values(asked, clauses(asked)) == [{"4"}, {"3.5"}]
    assert clauses("Weather in Paris?") == ["Weather in Paris?"]


def test_the_source_is_what_the_user_and_tools_said():
    msgs = [Message("system", "Example: Paris"), Message("user", "Weather in Oslo?"),
            Message("assistant", None), Message("tool", "Oslo: 3C")]
    assert source_text(msgs) == "Weather in Oslo?\nOslo: 3C"


def test_a_requests_values_are_numbers_names_inside_a_sentence_and_quoted_strings():
    assert values("Find all primes between 50 and 150. Then the fibonacci series up to 150.") == ["50", "150"]
    assert values("First, the top 5 cases in the United Kingdom. Second, I have 36 and 48.") == \
        ["5", "36", "48", "united kingdom"]  # sentences' first words and "I" are no names
    assert values('News on "Climate Change", 1,000 items, case \'12345ABC\'') == \
        ["1000", "climate change", "12345abc"]  # a quoted name once; no number out of a word
    assert values("what is the weather like today?") == []


def test_typed_values_are_addresses_and_clock_times_in_the_forms_a_call_holds_them():
    assert typed("new item - Sushi night, 2026-12-19, 7:30 PM") == [frozenset({"19:30", "7:30 pm", "7:30pm"})]
    assert typed("Call at 5:45am with Ana.B@x.co.uk.") == [frozenset({"ana.b@x.co.uk"}),
                                                           frozenset({"5:45", "05:45", "5:45 am", "5:45am"})]
    assert typed("at 9 p.m. or 17:45") == [frozenset({"21:00", "9:00 pm", "9:00pm", "9 pm", "9pm"}),
                                           frozenset({"17:45", "5:45 pm", "5:45pm"})]
    assert typed("12 am, 7.30pm") == [frozenset({"0:00", "00:00", "12:00 am", "12:00am", "12 am", "12am"}),
                                      frozenset({"19:30", "7:30 pm", "7:30pm"})]
    assert typed("from 14:30:00") == [frozenset({"14:30", "2:30 pm", "2:30pm"})]
    assert typed("put 'Abo Fitness Jänner' as the reference") == [frozenset({"abo fitness jänner"})]
    # no clock in a longer run, a date, a phone number, an hour past 23 or "13 pm"; no version for an address
    assert typed("v1.2.3:45, 2026-11-03, +37 2 33 67 35 0, 25:00, 13 pm, 3 amounts, lodash@4.17.21") == []


def test_a_request_without_its_values_keeps_what_it_asks():
    assert unvalued("What time is Dune showing in Gothenburg tonight?") == "What time is showing in tonight?"
    assert unvalued("Convert 'good morning' to French, 12 times.") == "Convert ' ' to , times."
    assert unvalued("Weather in paris?") == "Weather in paris?"  # nothing it can tell from a word


def test_the_ranker_is_warmed_once_and_a_broken_one_ranks_by_words():
    """`serve` loads MiniLM on a thread at start-up (ToolRanker.warm) when the default leans; the
    embedder here is a stand-in (MiniLM itself is exercised by tests/test_everyday.py on the real server)."""
    from edgeslm.ranking import ToolRanker

    loads = []
    ToolRanker(lambda: loads.append(1)).warm()
    assert loads == [1]

    def broken():
        raise OSError("no MiniLM here")

    r = ToolRanker(broken)
    r.warm()
    assert r._broken == "OSError: no MiniLM here"
    assert r("What's the weather in Lisbon?", TOOLS) == Ranking(relevance("What's the weather in Lisbon?", TOOLS))


def test_tool_vectors_outlive_a_restart_and_requests_never_reach_the_disk(tmp_path):
    """A stand-in embedder (its vectors from the text's letters) counts what it embeds: a second ranker on
    the same store (a restarted server) embeds the request only, and only tools' vectors are on disk."""
    from edgeslm.ranking import ToolRanker

    embedded = []

    def vec(tokens):
        v = np.bincount(np.frombuffer(bytes(tokens), dtype=np.uint8) % 8, minlength=8).astype(float)
        return (v / np.linalg.norm(v)).tolist()

    fake = SimpleNamespace(name="fake", dims=8, n_vocab=256, n_ctx=512, tokenize=lambda t: list(t.encode()),
                           embed=lambda batch: [embedded.append(bytes(b).decode()) or vec(b) for b in batch])
    asked = "What's the weather in Lisbon?"
    first = ToolRanker(lambda: fake, tmp_path)(asked, TOOLS)
    # the request is embedded as written and without its values (said.unvalued)
    assert len(embedded) == 2 + len(TOOLS) and len(list(tmp_path.glob("*.f64"))) == len(TOOLS)
    embedded.clear()
    again = ToolRanker(lambda: fake, tmp_path)(asked, TOOLS)
    assert embedded == [asked, unvalued(asked)] and again == first  # the same vectors, read back
    (next(tmp_path.glob("*.f64"))).write_bytes(b"junk")  # a damaged file is embedded again, not an error
    embedded.clear()
    assert ToolRanker(lambda: fake, tmp_path)(asked, TOOLS) == first and len(embedded) == 3


def test_the_ranker_ranks_each_clause_of_a_request_that_asks_for_several_calls():
    """A stand-in embedder (a vector per word family): the clause about parcels ranks track_parcel first,
    the one about the weather get_weather, each with its own values; a one-clause request, or one tool,
    gets no clauses."""
    from edgeslm.ranking import ToolRanker

    families = ("weather", "parcel", "time")

    def vec(tokens):
        text = bytes(tokens).decode().lower()
        v = np.array([1.0 + 5.0 * (f in text) for f in families])
        return (v / np.linalg.norm(v)).tolist()

    fake = SimpleNamespace(name="fake", dims=3, n_vocab=256, n_ctx=512, tokenize=lambda t: list(t.encode()),
                           embed=lambda batch: [vec(b) for b in batch])
    ranker = ToolRanker(lambda: fake)
    got = ranker("What's the weather in Lisbon, and where is my parcel from Oslo?", TOOLS)
    assert [set(own) for own, _ in got.parts] == [{"lisbon"}, {"oslo"}]
    assert [max(r, key=r.get) for _, r in got.parts] == ["get_weather", "track_parcel"]
    assert ranker("What's the weather in Lisbon?", TOOLS).parts == ()
    assert ranker("What's the weather in Lisbon, and where is my parcel from Oslo?", TOOLS[:1]).parts == ()


def test_a_code_the_request_ends_on_or_prose_goes_on_after():
    from edgeslm.decoding.said import ends_code
    assert ends_code("Where's my package? Order number is K-58213", "K-58213")
    assert ends_code("status check: order 1290387.", "1290387")
    assert ends_code("order 1290387 ?\nand thanks", "1290387")
    assert ends_code("order 1290387 from May", "1290387")  # a sentence goes on after a code of 6 characters or more
    assert ends_code("wire £15.5k to GB33BUKB20201555555555 for the house deposit", "GB33BUKB20201555555555")
    assert not ends_code("order 12903 from May", "12903")  # shorter: it may be a part of something
    assert not ends_code("to LI21 0881 0000 2324 013A A please", "LI21 0881 0000")  # a spaced code goes on
    assert not ends_code("to LI21 0881 0000 2324 013A A please", "LI21 0881 0000 2324 013A")  # with a space in it, only at the end
    assert not ends_code("Flat 12 in Leeds", "Flat 12")
    assert not ends_code("order 1290387", "290387")  # not at a word's start
    assert not ends_code("order 1290387", "129038")  # not to the word's end
    assert not ends_code("Weather in Oslo", "Oslo")  # no digit: a name's closing quote is no junk's match
    assert not ends_code("this weekend, Jun.20,2023.\n2023-06-20", "2023")  # it runs on in a date's form
    assert ends_code("from promo@win-big.biz. Deal with it.", "promo@win-big.biz")  # an address whole: no ".biz" more
    assert not ends_code("from promo@win-big.biz. Deal with it.", "promo@win-big")


def test_the_numbers_a_request_states_in_the_forms_a_call_writes_them():
    from edgeslm.decoding.amounts import counts, numbers
    assert numbers("pls transfer 2k GBP to AT611904300234573201") == {"2", "2000"}  # not the IBAN's digits
    assert numbers("Could you wire $12,400?") == {"12400"}
    assert "1520.07" in numbers("Wire 1 520,07 dollars to FR86 6090 9822 5318 7595 1305 075")
    assert not {"60909822", "9822531"} & numbers("FR86 6090 9822 5318 7595 1305 075")  # an IBAN's groups are 4
    assert numbers("€1.250,00 or 1.250 or 2.500.000") == {"1250", "1250.00", "1.250", "1.25", "2500000"}
    assert numbers("at 3% for 1.2 million people") == {"3", "0.03", "1.2", "1200000"}
    # a scale after a currency sign is the amount's: a student wrote 15.5 of "wire £15.5k" (session 44); "a 5k run" may be 5
    assert numbers("wire £15.5k, $1.2 million and €3 k; a 5k run") == {"15500", "1200000", "3000", "5", "5000"}
    assert numbers("the sum of 3,5; 2.50 EUR") == {"3.5", "3", "5", "2.50", "2.5"}  # "3,5": a decimal comma, or a list
    assert numbers("3,5 kg, ¿Cuántos pies son 1,75 metros?") == {"3.5", "1.75"}  # before a word (a unit): one number
    # a minus sign that opens a word: two seeds' students wrote 40 of "-40 celsius" (session 43); not a range or a name's digits
    assert numbers("-40 celsius, at (-5), x=-3, −12 °C, -1.5k") == {"-40", "-5", "-3", "-12", "-1.5", "-1500"}
    assert numbers("3-4 days of COVID-19") == {"3", "4", "19"}
    assert numbers("+1 555 123 4567, 2 500ml, ٣٠٠, 9" + "9" * 40) == {"1", "555", "123", "4567", "2", "500"}
    # "a"/"an" counts 1 as a list's item beside a counted one (seed 0's cart student wrote 12 for "a" of "a ... and 12 ...")
    assert numbers("put a ripe pear and 12 limes in") == {"1", "12"} and numbers("3 figs, an onion") == {"1", "3"}
    assert numbers("a dozen eggs and 2 rolls") == {"12", "2"} and numbers("Find a hotel and book 3 rooms") == {"3"}
    assert numbers("the area of a circle of radius 5") == {"5"} and numbers("2 and a half") == {"2"}
    assert numbers("a dozen eggs, two apples and a 5km run on 12.05.2026") == {"12", "2", "5"}  # no date
    assert numbers("half a dozen eggs") == {"6"}
    assert numbers("twenty napkins, seventy-five dollars, thirty one days, fourteen eggs") == {"20", "75", "31", "14"}
    assert numbers("Book the one on Main St for 4; which one, a one-way fare") == {"4"}  # a pronoun's "one" counts nothing
    assert numbers("one coffee, the two teas") == {"1", "2"}
    # Spanish, a tenth of the conversion workload (a student wrote 1 for "una docena" and "diez"); not "once" (English too)
    assert numbers("Pon una docena de quesos y diez botellas, media docena de pan") == {"12", "10", "6"}
    assert numbers("once a week, dos veces") == {"2"}
    forms = numbers("wire 2k")
    assert counts(forms, "2", "0") and counts(forms, "20", "00") and counts(forms, "2", ",")  # on to 2000, or 2
    assert counts(forms, "2000", "}") and counts(forms, "2000", " }")
    assert not counts(forms, "20", "1") and not counts(forms, "20", ",") and not counts(forms, "2000", "0")
    assert not counts(forms, "2", "k") and not counts(forms, "2", "")


def test_times_and_dates_in_the_forms_a_call_writes_them():
    from edgeslm.decoding.clock import forms
    from edgeslm.decoding.said import ends_code
    assert forms("Please put it on the 2nd of February 2027 at noon") == ["12:00", "2027-02-02"]
    assert forms("dinner at 7:30 PM on Feb 2, 2027") == ["19:30", "2027-02-02"]
    # in Spanish: a student wrote 2027-09-20 of "el 2 de septiembre de 2027" (session 42)
    assert forms("entrega el 2 de septiembre de 2027 por la mañana") == ["2027-09-02"]
    assert forms("el 15 de marzo del 2027") == ["2027-03-15"] and forms("3 de setiembre de 2026") == ["2026-09-03"]
    assert forms("2 de mayo") == [] and forms("de 2027") == []
    # in digits: seed 0's calendar student wrote "2027" of "for 30.04.2027" (session 43); day first where it can only be so
    assert forms("an entry for 30.04.2027.") == ["2027-04-30"] and forms("deliver 18/10/2027 to 5 Main St") == ["2027-10-18"]
    assert forms("on 10/18/2027") == ["2027-10-18"] and forms("on 03/04/2027") == ["2027-04-03", "2027-03-04"]
    assert forms("version 1.2.2027.5, 13/13/2027, 1/2/27") == []
    # no space after the comma (BFCL's "starting from 15th October,2023."): the year is then no code the request ends on
    assert forms("2 nights starting from 15th October,2023.") == ["2023-10-15"]
    assert not ends_code("2 nights starting from 15th October,2023.\n2023-10-15", "2023")
    assert forms("Sept. 3rd, 2026 at midnight") == ["00:00", "2026-09-03"]
    assert forms("lunch at midday") == ["12:00"]
    assert forms("Run 5 marathons 2024, 12 decks 2025, on 2 ſep 2027 or ３ May ２０２７") == []  # no month, no ASCII
    assert forms("this weekend, Jun.20,2023.") == ["2023-06-20"]
    assert forms("meet at 14:30 on 2026-11-06") == []  # held as written
    assert forms("the 45th of May 2026, or May 2026") == []  # no day, no date
    # a time in words: in 24 hours, both halves of the day where it says neither; an hour alone is no time
    assert forms("at half past seven in the evening") == ["19:30"]
    assert forms("a quarter to eleven at night, or a quarter past 9 in the morning") == ["22:45", "09:15", "9:15"]
    assert forms("at ten o'clock") == ["10:00", "22:00"] and forms("add five bananas, 3 days in the fall") == []
    assert forms("Midnight Mass prep, a quarter to eleven at night") == ["22:45"]  # a name, not midnight
    assert forms("Midnight works, or Noon") == ["00:00", "12:00"]


def test_a_date_in_words_is_one_value_in_the_form_a_call_writes_it():
    from edgeslm.decoding.clock import dated
    text = "For the 24th of December 2026, 20 guests, add Midnight Mass prep"
    assert dated(text, values(text)) == ["20", "midnight mass", "2026-12-24"]  # not "december", and "20" is no part of 2026
    text = "Deliver on August 19, 2027 to 742 Evergreen Terrace"
    assert dated(text, values(text)) == ["742", "evergreen terrace", "2027-08-19"]
    assert dated("Book it on 2026-11-03 in Paris", ["2026", "11", "03", "paris"]) == ["2026", "11", "03", "paris"]


def test_a_labelled_value_is_typed():
    from edgeslm.decoding.said import labelled
    memo = "Could you wire $12,400 to NL91ABNA0417164300? Memo: Q2 consulting fees"
    assert [memo[a:b] for a, b in labelled(memo)] == ["Q2 consulting fees"] and frozenset({"q2 consulting fees"}) in typed(memo)
    note = "Send it. Note: leave at the door."
    assert [note[a:b] for a, b in labelled(note)] == ["leave at the door"]
    assert labelled("Please put Kickoff: Project Halcyon on the 2nd at noon") == []  # no label opens a sentence
    assert labelled("Ratio: 3:4 please") == [] and labelled("Ok. Subject: hi\nthanks") == []  # not at the end
    assert labelled("Task: book a flight to Rome.") == []  # the request's only sentence is no value in it
    ref = "Send 3k złoty to PL61 1090 1014, reference: Faktura 7/2027 Łódź"  # a clause's label, lower-case
    assert [ref[a:b] for a, b in labelled(ref)] == ["Faktura 7/2027 Łódź"]
    assert labelled("Meet at the office, 10:30 sharp") == []
    dash = "Send 1.500 € to AT483200000012345864 — Verwendungszweck: Rechnung 2027-044 Tischlerei Huber"  # after a dash too
    assert [dash[a:b] for a, b in labelled(dash)] == ["Rechnung 2027-044 Tischlerei Huber"]
    two = "Please send 30,000 JPY to ES7921000813610123456789, payment reference: Kyoto guesthouse deposit"  # a label of two words
    assert [two[a:b] for a, b in labelled(two)] == ["Kyoto guesthouse deposit"]
    # a label in words that ends the request, its value with a capital (two seeds' transfer students left these out: my own
    # requests, session 47); not words about it
    for text, value in (("Transfer $72.40 to NL02ABNA0123456789 with the note Pizza night split", "Pizza night split"),
                        ("move £600 over to GB33BUKB20201555555555 and label it Car service June", "Car service June"),
                        ("Find a book with the title Harry Potter.", "Harry Potter"),  # and in the second languages (dev)
                        ("Transfiere 850 francos a CH5604835012345678009 con el concepto Alquiler chalet", "Alquiler chalet"),
                        ("Überweise 75 Euro an DE89370400440532013000 mit dem Verwendungszweck Nachhilfe Mathe", "Nachhilfe Mathe")):
        assert [text[a:b] for a, b in labelled(text)] == [value]
    assert labelled("Create an event with a description of the meeting") == labelled("Pay it with the note Rent, and more") == []
    assert labelled("Reserva una mesa con la nota de que somos seis") == []
    for text, value in (("mit Verwendungszweck Nachhilfe Mathe", "Nachhilfe Mathe"), ("Vire 300 euros avec la mention Loyer mars",
                         "Loyer mars"), ("Paga 45 € con la descripcion Cuota enero", "Cuota enero")):  # no article, no accent
        assert [text[a:b] for a, b in labelled(text)] == [value]
    assert labelled("Send it. Note: " + " " * 300 + "Time: 10:30") == []  # and at once (possessive)


def test_a_parameter_opening_the_last_clause_holds_the_rest():
    """What follows a word of the parameter opening the request's last clause is its value to the end, as a label's is;
    a value that stands in the text only inside such a span, and stops short of its end, cuts it (said.inside)."""
    from edgeslm.decoding.said import inside, tail
    ref = "Please send 250 euros to DE89370400440532013000, reference Concert tickets Berlin"
    assert [ref[a:b] for a, b in tail(ref, "reference")] == ["Concert tickets Berlin"] and tail(ref, "iban") == []
    co = "wire £15.5k to GB33BUKB20201555555555 for the house deposit, reference Smith & Co. completion."
    assert [co[a:b] for a, b in tail(co, "reference")] == ["Smith & Co. completion"]  # a full stop before lower case ends no clause
    assert [s[a:b] for s in ["Book it, with the title Team sync."] for a, b in tail(s, "title")] == ["Team sync"]
    assert tail("Pay 5 EUR to X, reference Rent", "reference") == []  # one word: nothing to cut
    assert tail("Weather in Paris, units celsius", "city") == [] and tail("", "x") == []
    # a name a word gives, to its phrase's end, for any parameter: seed 1's calendar student closed "Board" (session 44)
    named = "Could you make an event named Board offsite prep for 2026-11-03 and send an invite to p@x.io"
    assert [named[a:b] for a, b in tail(named, "attendee")] == ["Board offsite prep"]
    assert tail("a table named users with columns id", "table") == [] and tail("llamado Cena con Lucía el 21", "title") == []
    assert tail("Where's my package? Order number is K-58213 from May", "order_id") == []  # words about it, then the value
    assert inside(ref, "Concert", tail(ref, "reference")) and inside(ref, "Concert tickets", tail(ref, "reference"))
    assert not inside(ref, "Concert tickets Berlin", tail(ref, "reference")) and not inside(ref, "Concert", [])
    assert not inside("Concert tonight, reference Concert tickets", "Concert", [(27, 42)])  # it stands outside too


def test_no_span_starts_past_an_addresss_at_sign():
    from edgeslm.decoding.said import span
    text = "Our vendor security@datavault.com reports a breach; ping @datavault too"
    assert span(text, "security@datavault.com", True) and not span("security@datavault.com", "datavault.com", True)
    assert span(text, "datavault too", True)  # a handle's name after a lone "@" is a word of its own


def test_part_way_into_a_name_or_an_address():
    from edgeslm.decoding.said import mid_name
    src = "Interview at 7:00pm with lolrar75@fazoba.example.com in Paddington"
    assert mid_name(src, "lol") and mid_name(src, "lolrar75@faz") and mid_name(src, "Padd")
    assert mid_name(src, "lolrar75") and mid_name(src, "lolrar75@fazoba")  # whole words, but not the address
    assert not mid_name(src, "lo") and not mid_name(src, "lolrar75@fazoba.example.com") and not mid_name(src, "with")


def test_the_enum_values_a_string_may_close_on():
    from edgeslm.decoding.said import enums
    schema = {"properties": {"currency": {"type": "string", "enum": ["USD", "USDT", "EUR"]}, "n": {"type": "integer"},
                             "bad": {"enum": "x"}, "odd": "not a schema"}}
    assert enums(schema) == {"currency": {"USDT", "EUR"}, "n": set(), "bad": set(), "odd": set()}  # "USD" may go on
    assert enums(None) == {} and enums({"properties": None}) == {}


def test_a_name_is_not_cut_before_the_sign_it_ends_with():
    """The default wrote "key": "C" for "What key signature does C# major have?" (BFCL val) and "item": "Weapon" beside 'Guardian
    Sword+': a span does not end before "#" or "+" that a word ends with ("C#", "C++", "Disney+"), so closing there cuts the name;
    "1+1", "Room #5" and a value that stands whole elsewhere are not held."""
    from edgeslm.decoding.said import cut, span

    text = "What key signature does C# major have? Try C++ or 1+1, and Guardian Sword+ too. Room #5."
    assert not span(text, "C", True) and span(text, "C#", True) and span(text, "C++", True) and not span(text, "C+", True)
    assert span(text, "1", True) and span(text, "#5", True) and span(text, "Guardian Sword+", True)
    assert cut(text, "C", []) and cut(text, "Guardian Sword", [])
    assert not cut(text + " Play C major.", "C", []) and not cut(text, "Room", [])


def test_a_place_is_cut_before_its_region_where_the_tool_asks_for_the_region_apart():
    """Session 44 held "Tel Aviv, Israel" whole after "in", "for" ... (`cut`); the default then wrote "city": "London, UK" for "What time
    is it currently in London, UK" to a tool with `city` and `country` (BFCL dev). Where the call's tool has another parameter for
    the region ("country", "state": said.REGIONAL), the place stands whole before it."""
    from types import SimpleNamespace as NS

    from edgeslm.decoding.copying import Copier, Leans
    from edgeslm.decoding.said import REGIONAL, cut

    text = "What time is it currently in London, UK in 24 hour format?"
    assert cut(text, "London", []) and not cut(text, "London", [], region=False)
    assert REGIONAL.search("The country where the city is located.") and not REGIONAL.search("The city you want.")

    def cuts(props):
        c = Copier(text, lambda t: b"x", Leans(copy=2.0), tools=[NS(name="tz", description="", parameters={"properties": props})])
        c.begin("tz")
        c.feed('{"city": "London')
        return c.cuts("London")

    assert cuts({"city": {"type": "string"}, "country": {"type": "string", "description": "The country."}}) is False
    assert cuts({"city": {"type": "string"}, "format": {"type": "string"}}) is True


def test_a_compound_unit_and_the_last_word_it_qualifies():
    from edgeslm.decoding.amounts import compound_of, compounds

    text = "how many nautical miles is 42 kilometers"
    assert [text[a:b] for a, b in compounds(text)] == ["nautical miles"]
    assert compound_of(text, "miles") == compound_of(text, "mi") == "nautical miles" and compound_of(text, "kil") is None
    assert compound_of(text, "Miles") == "nautical miles"  # a capital where no word has one: any case
    assert compound_of("20 miles or 5 nautical miles", "miles") is None  # "miles" stands alone too: the model's choice
    assert [m for m in ("8 fl. oz of milk", "3 US gallons", "1500 square meters", "give us miles") if compounds(m)] == [
        "8 fl. oz of milk", "3 US gallons", "1500 square meters"]  # "us" is no qualifier
    assert compounds("answer in metric units") == compounds("use the imperial system") == []
    assert compounds("Weather in the UK today?") == compounds("Top news from the US today") == []  # a country's own measures only
    assert compounds("a pipe of 10 sq in") != [] and compounds("3 US fluid ounces") != []
    assert compounds("What time is it in London, UK in 24 hour format?") == []  # a word of a sentence, no unit (BFCL dev: "UK in 24
    # hour" was written for `country`, its close held inside the "compound"; found on dev after its run, so a bug fix, not a choice)
    rate = "What is 100 kilometers per hour in miles per hour?"  # a rate, whichever word the model begins (my own request, session 47)
    assert compound_of(rate, "miles") == "miles per hour" and compound_of(rate, "kil") == "kilometers per hour"
    assert compounds("5 dollars per person") == []
