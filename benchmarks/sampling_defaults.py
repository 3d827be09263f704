"""Sampling defaults of the shipped tools adapter, chosen by measurement: everyday tool-calling requests sent
with no `temperature` (as pydantic-ai and openai-agents send them) to a real `edgeslm serve`, once per
candidate set of defaults, scored by exact-call rate.

Each candidate is the shipped adapter copied into a private store under its own task name, its manifest's
`sampling` object set to the candidate, so the server applies it exactly as it applies the shipped
manifest's defaults (request, then adapter manifest, then catalog, then GGUF, then OpenAI's). The requests
name the candidate's adapter (`default@sd-NAME`) and send no sampling field but a seed (one per request and
repeat, so a run can be repeated; agent frameworks send none).

The tools, cities and values are none that a training generator of ours lists (edgeslm/pipeline/agentdata.py:
no get_weather, get_time, send_email..., no Paris or Lisbon), plus the README's own example. A call is
exact when it is the one expected call: its name, every expected argument among its accepted values (BFCL's
string normalization: lower-cased, spaces and `,./-_*^` dropped), and no other argument. A tool-call marker
in `content` is counted apart (it must never happen).

    python -m benchmarks.sampling_defaults [--repeats 3] [--threads 2] [--only greedy,...]

prints a table per candidate and ends with one JSON line; results go to
benchmarks/results/sampling_defaults.json and a chart next to it.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import tempfile
import time
from pathlib import Path

from openai import OpenAI

from benchmarks._chart import bars
from benchmarks._server import running_server

BASE = "gemma-3-270m-q4_k_m"
SHIPPED = Path(__file__).resolve().parents[1] / "edgeslm" / "assets" / "adapters" / BASE / "tools"

CANDIDATES = {
    "openai": {"temperature": 1.0, "top_p": 1.0, "top_k": 0, "min_p": 0.0, "repetition_penalty": 1.0},
    "gemma-card": {"temperature": 1.0, "top_p": 0.95, "top_k": 64, "min_p": 0.0, "repetition_penalty": 1.0},
    "t07-k40-p09": {"temperature": 0.7, "top_p": 0.9, "top_k": 40, "min_p": 0.0, "repetition_penalty": 1.0},
    "t02-k20-minp01": {"temperature": 0.2, "top_p": 1.0, "top_k": 20, "min_p": 0.1, "repetition_penalty": 1.0},
    "greedy": {"temperature": 0.0, "top_p": 1.0, "top_k": 0, "min_p": 0.0, "repetition_penalty": 1.0},
    "greedy-rep11": {"temperature": 0.0, "top_p": 1.0, "top_k": 0, "min_p": 0.0, "repetition_penalty": 1.1},
}
# the request lean (decoding/copying.py) over greedy, at the values BFCL's val split chose (copy_bias 2,
# tool_bias 3: `python -m benchmarks.bfcl_dev --split val --lean ...`); every candidate states it (0: off)
CANDIDATES = {k: {**v, "copy_bias": 0.0, "tool_bias": 0.0} for k, v in CANDIDATES.items()}
CANDIDATES["greedy-lean"] = {**CANDIDATES["greedy"], "copy_bias": 2.0, "tool_bias": 3.0}
# the shipped manifest's defaults, every lean included: with --adapter, another adapter as it would ship
CANDIDATES["as-shipped"] = json.loads((SHIPPED / "manifest.json").read_text())["sampling"]
# the close lean (close_bias) BFCL val chose, over the shipped leans: 5 (0.459 vs 0.444 at 0)
CANDIDATES["shipped-close5"] = {**CANDIDATES["as-shipped"], "close_bias": 5.0}


def _tool(name: str, desc: str, props: dict, required: list[str]) -> dict:
    return {"type": "function", "function": {"name": name, "description": desc, "parameters": {
        "type": "object", "properties": props, "required": required}}}


def _s(desc: str, **kw) -> dict:
    return {"type": "string", "description": desc, **kw}


def _n(desc: str, kind: str = "number") -> dict:
    return {"type": kind, "description": desc}


T = {
    "forecast": _tool("lookup_forecast", "Weather forecast for a place over the next days.",
                      {"location": _s("Place name"), "days": _n("Number of days, 1-7", "integer")}, ["location", "days"]),
    "alarm": _tool("set_alarm", "Set an alarm clock.", {"time": _s("Time of day, HH:MM, 24-hour"),
                                                        "label": _s("Optional label")}, ["time"]),
    "translate": _tool("translate_text", "Translate a text into another language.",
                       {"text": _s("The text to translate"), "target_language": _s("Language to translate into")},
                       ["text", "target_language"]),
    "restaurants": _tool("find_restaurants", "Find restaurants in a city by cuisine.",
                         {"city": _s("City"), "cuisine": _s("Kind of food")}, ["city", "cuisine"]),
    "trains": _tool("get_train_times", "Departure times of trains between two stations.",
                    {"origin": _s("Departure station"), "destination": _s("Arrival station")}, ["origin", "destination"]),
    "music": _tool("play_music", "Play music by an artist.", {"artist": _s("Artist or band")}, ["artist"]),
    "shopping": _tool("add_to_shopping_list", "Add an item to the shopping list.",
                      {"item": _s("What to buy"), "quantity": _n("How many", "integer")}, ["item", "quantity"]),
    "flight": _tool("check_flight_status", "Status of a flight.", {"flight_number": _s("Flight number, e.g. BA117")},
                    ["flight_number"]),
    "thermostat": _tool("set_thermostat", "Set the heating's target temperature in degrees Celsius.",
                        {"temperature": _n("Target temperature, °C")}, ["temperature"]),
    "air": _tool("get_air_quality", "Air quality index for a city.", {"city": _s("City")}, ["city"]),
    "taxi": _tool("book_taxi", "Book a taxi.", {"pickup": _s("Pickup address or place"),
                                                 "destination": _s("Where to go")}, ["pickup", "destination"]),
    "define": _tool("define_word", "Dictionary definition of an English word.", {"word": _s("The word")}, ["word"]),
    "sunrise": _tool("get_sunrise", "Sunrise and sunset times for a city.", {"city": _s("City")}, ["city"]),
    "parcel": _tool("track_package", "Where a parcel is now.", {"tracking_number": _s("Tracking number")},
                    ["tracking_number"]),
    "timer": _tool("set_timer", "Start a countdown timer.", {"minutes": _n("Length in minutes", "integer")}, ["minutes"]),
    "pharmacy": _tool("find_pharmacy", "Pharmacies open now in an area.", {"area": _s("Neighbourhood or town")},
                      ["area"]),
    "cinema": _tool("get_showtimes", "Cinema showtimes of a film in a city.", {"movie": _s("Film title"),
                                                                                "city": _s("City")}, ["movie", "city"]),
    "tip": _tool("calculate_tip", "Tip for a restaurant bill.", {"bill_amount": _n("Bill total"),
                                                                  "percent": _n("Tip percentage")},
                 ["bill_amount", "percent"]),
    "population": _tool("get_population", "Population of a country.", {"country": _s("Country name")}, ["country"]),
    "recipe": _tool("find_recipe", "Recipes that use an ingredient.", {"ingredient": _s("Main ingredient")},
                    ["ingredient"]),
    "weather": {"type": "function", "function": {"name": "get_weather", "parameters": {
        "type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}},  # the README's
}

# (question, tools offered, expected name, {argument: accepted values, or None: any value or none}); the expected
# tool is listed among others
CASES = [
    ("Weather in Paris?", ["weather"], "get_weather", {"city": ["Paris"]}),  # the README's example, as it is
    ("What's the forecast for Glasgow for the next 3 days?", ["forecast", "air", "sunrise"], "lookup_forecast",
     {"location": ["Glasgow"], "days": [3]}),
    ("Wake me up at 06:45 tomorrow.", ["alarm", "timer"], "set_alarm", {"time": ["06:45", "6:45"], "label": None}),
    ("Translate 'good morning' into Portuguese.", ["translate", "define"], "translate_text",
     {"text": ["good morning"], "target_language": ["Portuguese", "pt"]}),
    ("Find me a sushi place in Valencia.", ["restaurants", "recipe", "cinema"], "find_restaurants",
     {"city": ["Valencia"], "cuisine": ["sushi"]}),
    ("When are the trains from Leeds to York?", ["trains", "taxi"], "get_train_times",
     {"origin": ["Leeds"], "destination": ["York"]}),
    ("Play something by Nina Simone.", ["music", "cinema"], "play_music", {"artist": ["Nina Simone"]}),
    ("Add 6 eggs to my shopping list.", ["shopping", "recipe"], "add_to_shopping_list",
     {"item": ["eggs", "egg"], "quantity": [6]}),
    ("Is flight KL1234 on time?", ["flight", "trains", "taxi"], "check_flight_status", {"flight_number": ["KL1234"]}),
    ("Set the heating to 21 degrees.", ["thermostat", "timer"], "set_thermostat", {"temperature": [21]}),
    ("How's the air quality in Ljubljana today?", ["air", "forecast"], "get_air_quality", {"city": ["Ljubljana"]}),
    ("Get me a taxi from Heathrow Airport to Paddington Station.", ["taxi", "trains", "flight"], "book_taxi",
     {"pickup": ["Heathrow Airport", "Heathrow"], "destination": ["Paddington Station", "Paddington"]}),
    ("What does the word serendipity mean?", ["define", "translate"], "define_word", {"word": ["serendipity"]}),
    ("When does the sun rise in Tallinn?", ["sunrise", "forecast", "air"], "get_sunrise", {"city": ["Tallinn"]}),
    ("Where is my parcel 1Z999AA10123456784?", ["parcel", "flight"], "track_package",
     {"tracking_number": ["1Z999AA10123456784"]}),
    ("Set a timer for 12 minutes.", ["timer", "alarm"], "set_timer", {"minutes": [12]}),
    ("Is there a pharmacy open in Shoreditch?", ["pharmacy", "restaurants"], "find_pharmacy", {"area": ["Shoreditch"]}),
    ("What time is Dune showing in Gothenburg tonight?", ["cinema", "music", "restaurants"], "get_showtimes",
     {"movie": ["Dune"], "city": ["Gothenburg"]}),
    ("What's a 15% tip on a bill of 84 dollars?", ["tip", "shopping"], "calculate_tip",
     {"bill_amount": [84], "percent": [15, 0.15]}),
    ("How many people live in Uruguay?", ["population", "air"], "get_population", {"country": ["Uruguay"]}),
    ("Give me a recipe with aubergine.", ["recipe", "restaurants", "shopping"], "find_recipe",
     {"ingredient": ["aubergine", "aubergines", "eggplant"]}),
]
MARKERS = ("<tool_call>", "</tool_call>", '{"name": "')


def _norm(v):
    if isinstance(v, str):
        return re.sub(r"[ ,./\-_*^]", "", v.lower())
    return v


def exact(calls, name: str, want: dict) -> bool:
    """One call, of `name`, each expected argument among its accepted values ("" in the list: it may be left
    out; None instead of a list: any value, or none), and no other argument."""
    if len(calls or []) != 1 or calls[0].function.name != name:
        return False
    try:
        args = json.loads(calls[0].function.arguments)
    except ValueError:
        return False
    if set(args) - set(want):
        return False
    for k, ok in want.items():
        if ok is None:
            continue
        if k not in args:
            if "" not in ok:
                return False
        elif _norm(args[k]) not in [_norm(x) for x in ok if x != ""]:
            return False
    return True


def land_candidates(home: Path, only: list[str], adapter: Path = SHIPPED) -> None:
    """Each candidate as an adapter of its own in the store: the adapter's files (the shipped one's unless
    another is named), the candidate's sampling."""
    for name in only:
        d = home / "adapters" / BASE / f"sd-{name}"
        shutil.copytree(adapter, d)
        manifest = json.loads((d / "manifest.json").read_text())
        manifest.update(task=f"sd-{name}", source="benchmarks/sampling_defaults.py", sampling=CANDIDATES[name])
        (d / "manifest.json").write_text(json.dumps(manifest, indent=2))


def run_candidate(client: OpenAI, model: str, repeats: int) -> dict:
    ok = envelopes = answered = 0
    wrong: list[str] = []
    t0 = time.perf_counter()
    for rep in range(repeats):
        for i, (question, tools, name, want) in enumerate(CASES):
            # a seed per request: one seed for every request would draw the same first number for all of
            # them (a high one picks from the nucleus's tail in every answer at once)
            r = client.chat.completions.create(model=model, messages=[{"role": "user", "content": question}],
                                               tools=[T[t] for t in tools], max_tokens=128, seed=1000 * rep + i)
            m = r.choices[0].message
            envelopes += any(k in (m.content or "") for k in MARKERS)
            answered += bool(m.tool_calls)
            if exact(m.tool_calls, name, want):
                ok += 1
            elif rep == 0:
                got = [(c.function.name, c.function.arguments) for c in m.tool_calls or []]
                wrong.append(f"{question!r} -> {got or repr((m.content or '')[:60])}")
    n = repeats * len(CASES)
    return {"exact": ok, "n": n, "exact_rate": round(ok / n, 3), "called_rate": round(answered / n, 3),
            "envelopes_in_content": envelopes, "seconds": round(time.perf_counter() - t0, 1), "wrong_rep0": wrong}


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=3, help="runs of every case per candidate (seeds 0..N-1)")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--only", default=",".join(CANDIDATES), help="comma-separated candidate names")
    ap.add_argument("--adapter", type=Path, default=SHIPPED,
                    help="the adapter folder (adapter.gguf + manifest.json) the candidates use (default: the shipped "
                    "one); the last row is always the shipped default as served")
    ap.add_argument("--out", type=Path, default=Path("benchmarks/results/sampling_defaults.json"))
    args = ap.parse_args(argv)
    if not (args.adapter / "adapter.gguf").is_file():
        raise SystemExit(f"--adapter {args.adapter}: no adapter.gguf there")
    only = [c for c in args.only.split(",") if c]
    home = Path(tempfile.mkdtemp(prefix="edgeslm-sd-"))
    results: dict = {}
    try:
        land_candidates(home, only, args.adapter)
        env = {**os.environ, "EDGESLM_HOME": str(home), "HF_HUB_OFFLINE": "1"}
        with running_server(threads=args.threads, env=env) as base:
            client = OpenAI(base_url=base, api_key="unused", max_retries=0, timeout=300)
            shipped = next(m for m in client.models.list().data if m.id == "default" or "default" in
                           (getattr(m, "aliases", None) or []))
            for name in only:  # greedy draws no random number: one run says it all
                reps = 1 if CANDIDATES[name]["temperature"] == 0 else args.repeats
                results[name] = {"sampling": CANDIDATES[name], **run_candidate(client, f"default@sd-{name}", reps)}
                r = results[name]
                print(f"{name:18} exact {r['exact']:3}/{r['n']} ({r['exact_rate']:.3f})  called {r['called_rate']:.3f}  "
                      f"envelopes in content {r['envelopes_in_content']}  {r['seconds']} s", flush=True)
            # the shipped defaults, as a request for "default" with no sampling field gets them
            defaults = getattr(shipped, "sampling", None) or {}
            results["shipped"] = {"sampling": defaults, **run_candidate(
                client, "default", 1 if defaults.get("temperature") == 0 else args.repeats)}
            print(f"{'shipped':18} exact {results['shipped']['exact']:3}/{results['shipped']['n']}  "
                  f"(defaults {results['shipped']['sampling']})", flush=True)
    finally:
        shutil.rmtree(home, ignore_errors=True)
    out = {"benchmark": "sampling_defaults", "cases": len(CASES), "repeats": args.repeats, "adapter": str(args.adapter),
           "candidates": results}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(out, indent=2) + "\n")
    names = list(results)
    bars(args.out.with_suffix(".png"), "Exact calls, no temperature sent (21 everyday requests)", names,
         {"exact-call rate": [results[n]["exact_rate"] for n in names]}, "rate")
    for name in names:
        for w in results[name]["wrong_rep0"]:
            print(f"  {name}: {w}")
    print(json.dumps({k: {"exact_rate": v["exact_rate"], "envelopes_in_content": v["envelopes_in_content"]}
                      for k, v in results.items()}))


if __name__ == "__main__":
    main()
