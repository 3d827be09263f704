"""Generated agent conversations for the "tools" recipe: what BFCL's single-turn questions lack.

Kinds (each example is {"messages", "tools", "tool_choice"?, "answer", "kind"}):
- `final`: a call, its result, then the text answer that uses the result (and does not call again);
- `followup`: a call, its result, then the next call, built from a value in that result;
- `ask`: a required value the user did not give: ask for it in text, invent nothing;
- `chat`: greetings, thanks and questions no tool fits, with and without tools: a short text answer;
- `single`: one call after earlier turns or under an agent's system prompt, optional values left out
  when the user did not give them;
- `extract`: structured extraction through a named function (what instructor and friends send).

`answered` and `combined` are not generated: `answered` turns a training call of any tool (BFCL's,
Seal-Tools') into a `final` conversation, with a made-up result of that tool (a value, JSON or a line of
text) and an answer that states it, so that answering from a result is not tied to the three tools
`final` knows; `combined` joins two or three single-turn training requests into one, their tools offered
together and all their calls the answer (more requests that take several calls of several functions).

Seeded; values come from open-ended lists combined at random, so phrasing and values vary. This data
trains; it never grades (the dev figures come from BFCL's held-out split).
"""

from __future__ import annotations

import json
import random
import re

from edgeslm.pipeline import augment

CITIES = ["Paris", "Lisbon", "Tokyo", "New York", "Buenos Aires", "Reykjavik", "Nairobi", "Sydney", "Toronto",
          "Berlin", "Mumbai", "Cape Town", "Mexico City", "Seoul", "Oslo", "Cairo", "Lima", "Hanoi", "Dublin",
          "San Francisco", "Kraków", "Montevideo", "Kyoto", "Vancouver", "Marrakesh", "Helsinki", "Austin",
          "Singapore", "Zurich", "Athens", "Bogotá", "Manila", "Edinburgh", "Porto", "Denver", "Tbilisi"]
NAMES = ["Alice Martin", "Bob Chen", "Carla Souza", "Dmitri Ivanov", "Emma Wilson", "Farid Haddad", "Grace Kim",
         "Hiro Tanaka", "Ines Garcia", "Jonas Berg", "Kofi Mensah", "Lena Novak", "Miguel Torres", "Nadia Rahman",
         "Omar Aziz", "Priya Patel", "Quentin Roux", "Rosa Bianchi", "Sam O'Neill", "Tara Singh"]
TOPICS = ["quarterly budget review", "Yoga class", "Investor call", "dentist appointment", "team standup",
          "project kickoff", "parent-teacher meeting", "flight to Berlin", "book club", "code review session",
          "birthday dinner", "car service", "piano lesson", "board meeting", "sprint retrospective"]
CONDITIONS = ["sunny", "cloudy", "light rain", "heavy rain", "snow", "windy", "foggy", "clear skies", "thunderstorms"]
SYSTEMS = [None, "You are a helpful assistant.", "You are a helpful assistant with access to tools.",
           "You are an operations agent. Use the tools when they help; answer briefly.",
           "You are a travel assistant. Be concise and accurate.",
           "You are a customer support agent for an online store. Use tools to look things up; never guess.",
           "Be concise.", "You are a personal assistant. Today is Tuesday.",
           "You are a research assistant. Call a tool when you need data, then answer in one or two sentences."]


def _tool(name: str, desc: str, props: dict, required: list[str]) -> dict:
    return {"type": "function", "function": {"name": name, "description": desc, "parameters": {
        "type": "object", "properties": props, "required": required}}}


def _s(desc: str, **kw) -> dict:
    return {"type": "string", "description": desc, **kw}


def _call(name: str, args: dict, rng: random.Random) -> dict:
    return {"id": f"call_{rng.randrange(16**8):08x}", "type": "function",
            "function": {"name": name, "arguments": json.dumps(args, ensure_ascii=False)}}


WEATHER = [
    _tool("get_weather", "Get the current weather for a city.", {"city": _s("The city name")}, ["city"]),
    _tool("get_weather", "Get current weather.", {"location": _s("City and country, e.g. Paris, France"),
                                                  "unit": _s("Temperature unit", enum=["celsius", "fahrenheit"])},
          ["location"]),
    _tool("get_current_weather", "Current weather conditions for a place.",
          {"city": _s("City"), "unit": _s("c or f", enum=["c", "f"])}, ["city"]),
]
OTHER = [
    _tool("get_stock_price", "Latest price of a stock.", {"symbol": _s("Ticker symbol, e.g. AAPL")}, ["symbol"]),
    _tool("convert_currency", "Convert an amount between currencies.",
          {"amount": {"type": "number", "description": "Amount to convert"}, "from_currency": _s("ISO code"),
           "to_currency": _s("ISO code")}, ["amount", "from_currency", "to_currency"]),
    _tool("search_web", "Search the web and return the top results.", {"query": _s("Search query")}, ["query"]),
    _tool("send_email", "Send an e-mail.", {"to": _s("Recipient address"), "subject": _s("Subject line"),
                                              "body": _s("Message body")}, ["to", "subject", "body"]),
    _tool("create_event", "Add an event to the calendar.",
          {"title": _s("Event title"), "date": _s("Date, YYYY-MM-DD"), "time": _s("Start time, HH:MM")},
          ["title", "date"]),
    _tool("get_time", "Current local time in a city.", {"city": _s("City name")}, ["city"]),
]
STOCKS = [("Apple", "AAPL"), ("Microsoft", "MSFT"), ("Tesla", "TSLA"), ("Nvidia", "NVDA"), ("Amazon", "AMZN"),
          ("Alphabet", "GOOGL"), ("Netflix", "NFLX"), ("Shopify", "SHOP")]
CURRENCIES = [("euros", "EUR"), ("dollars", "USD"), ("pounds", "GBP"), ("yen", "JPY"), ("Swiss francs", "CHF"),
              ("Canadian dollars", "CAD")]


def _ask_weather(city: str, rng: random.Random) -> str:
    return rng.choice([f"What's the weather in {city}?", f"Weather in {city}?", f"How is the weather in {city} right now?",
                       f"Is it raining in {city}?", f"What is the weather like in {city} today?",
                       f"Check the weather for {city}, please.", f"Tell me the current weather in {city}."])


def _weather_args(tool: dict, city: str) -> dict:
    props = tool["function"]["parameters"]["properties"]
    return {"city": city} if "city" in props else {"location": city}


def final(rng: random.Random) -> dict:
    """A call, its result, the text answer that uses it."""
    kind = rng.randrange(4)
    if kind <= 1:
        tool = rng.choice(WEATHER)
        city, cond, temp = rng.choice(CITIES), rng.choice(CONDITIONS), rng.randint(-8, 36)
        question, args = _ask_weather(city, rng), _weather_args(tool, city)
        result = rng.choice([json.dumps({"city": city, "condition": cond, "temperature_c": temp}),
                             f"{cond.capitalize()}, {temp}°C", json.dumps({"weather": cond, "temp": f"{temp} C"})])
        answer = rng.choice([f"It is {cond} in {city}, {temp}°C.", f"The weather in {city} is {cond} with {temp}°C.",
                             f"Right now {city} has {cond} and {temp}°C."])
        tools = [tool] + rng.sample(OTHER, rng.randint(0, 2))
    elif kind == 2:
        name, sym = rng.choice(STOCKS)
        price = round(rng.uniform(20, 900), 2)
        tool, question, args = OTHER[0], rng.choice([f"How much is {name} stock?", f"Price of {sym}?",
                                                     f"What's {name} trading at?"]), {"symbol": sym}
        result = json.dumps({"symbol": sym, "price": price, "currency": "USD"})
        answer = rng.choice([f"{name} ({sym}) is trading at ${price}.", f"{sym} is at {price} USD."])
        tools = [tool] + rng.sample(OTHER[1:], rng.randint(0, 2))
    else:
        (fn, fc), (tn, tc) = rng.sample(CURRENCIES, 2)
        amount = rng.choice([10, 25, 100, 250, 1200, 75.5])
        value = round(amount * rng.uniform(0.5, 1.6), 2)
        tool = OTHER[1]
        question = rng.choice([f"Convert {amount} {fn} to {tn}.", f"How many {tn} is {amount} {fn}?",
                               f"{amount} {fc} in {tc}?"])
        args = {"amount": amount, "from_currency": fc, "to_currency": tc}
        result = json.dumps({"amount": value, "currency": tc})
        answer = rng.choice([f"{amount} {fc} is {value} {tc}.", f"That comes to {value} {tc}."])
        tools = [tool] + rng.sample([t for t in OTHER if t is not tool], rng.randint(0, 2))
    rng.shuffle(tools)
    call = _call(tool["function"]["name"], args, rng)
    messages = _system(rng) + [{"role": "user", "content": question},
                               {"role": "assistant", "content": None, "tool_calls": [call]},
                               {"role": "tool", "tool_call_id": call["id"], "content": result}]
    return {"kind": "final", "messages": messages, "tools": tools, "answer": {"content": answer}}


def followup(rng: random.Random) -> dict:
    """A call, its result, then the next call that uses a value from it."""
    lookup = _tool("find_contact", "Look up a contact by name.", {"name": _s("Full or partial name")}, ["name"])
    person = rng.choice(NAMES)
    first = person.split()[0]
    addr = f"{first.lower()}.{person.split()[-1].lower().replace(chr(39), '')}@{rng.choice(['example.com', 'acme.org', 'mail.net'])}"
    topic = rng.choice(TOPICS)
    question = rng.choice([f"Email {person} that the {topic} moved to Friday.",
                           f"Send {first} a note saying the {topic} is moved to Friday.",
                           f"Let {person} know by email: the {topic} moved to Friday."])
    c1 = _call("find_contact", {"name": person if person in question else first}, rng)
    result = json.dumps({"name": person, "email": addr})
    args = {"to": addr, "subject": topic[0].upper() + topic[1:], "body": f"The {topic} moved to Friday."}
    tools = [lookup, OTHER[3]] + rng.sample([OTHER[4], OTHER[2]], rng.randint(0, 2))
    rng.shuffle(tools)
    messages = _system(rng) + [{"role": "user", "content": question},
                               {"role": "assistant", "content": None, "tool_calls": [c1]},
                               {"role": "tool", "tool_call_id": c1["id"], "content": result}]
    return {"kind": "followup", "messages": messages, "tools": tools,
            "answer": {"tool_calls": [_call("send_email", args, rng)]}}


def ask(rng: random.Random) -> dict:
    """A required value is missing: ask for it, invent nothing."""
    cases = [
        (OTHER[3], rng.choice(["Send an email for me.", "Can you email my landlord?", "Write an email to the team."]),
         "Sure. Who should I send it to, and what should the subject and message say?"),
        (OTHER[4], rng.choice(["Add something to my calendar.", "Put a meeting in my calendar.",
                               "Create an event for me."]),
         "Of course. What is the event called, and on which date?"),
        (rng.choice(WEATHER), rng.choice(["What's the weather?", "Will I need an umbrella today?", "How hot is it outside?"]),
         "Which city should I check the weather for?"),
        (OTHER[1], rng.choice(["Convert some money for me.", "I need a currency conversion."]),
         "How much do you want to convert, and from which currency to which?"),
        (OTHER[0], rng.choice(["Check a stock price.", "How is my stock doing?"]),
         "Which stock? Please give me its name or ticker symbol."),
    ]
    tool, question, answer = rng.choice(cases)
    tools = [tool] + rng.sample([t for t in OTHER if t is not tool], rng.randint(0, 2))
    rng.shuffle(tools)
    return {"kind": "ask", "messages": _system(rng) + [{"role": "user", "content": question}], "tools": tools,
            "answer": {"content": answer}}


CHAT = [("Hi!", "Hello! How can I help you today?"), ("Hello there", "Hi! What can I do for you?"),
        ("Thanks, that's all.", "You're welcome! Have a great day."), ("Thank you!", "Happy to help!"),
        ("Who are you?", "I'm an assistant. I can answer questions and use the tools I have to get things done."),
        ("What can you do?", "I can help with questions and use my tools, for example to look things up for you."),
        ("What is 2 + 2?", "2 + 2 = 4."), ("What is the capital of France?", "The capital of France is Paris."),
        ("Translate 'good morning' to Spanish.", "'Good morning' in Spanish is 'buenos días'."),
        ("Tell me a joke.", "Why did the function return early? It had no more arguments."),
        ("How many days are in a week?", "There are 7 days in a week."),
        ("Write a haiku about rain.", "Soft rain on the roof,\nthe city exhales its dust,\nstreets shine like rivers."),
        ("Say OK.", "OK.")]


def chat(rng: random.Random) -> dict:
    q, a = rng.choice(CHAT)
    tools = rng.sample(WEATHER[:1] + OTHER, rng.randint(0, 3))
    ex = {"kind": "chat", "messages": _system(rng) + [{"role": "user", "content": q}], "answer": {"content": a}}
    if tools:
        ex["tools"] = tools
    return ex


def single(rng: random.Random) -> dict:
    """One call, sometimes after earlier turns, optional values left out unless given."""
    kind = rng.randrange(3)
    if kind == 0:
        tool, city = rng.choice(WEATHER), rng.choice(CITIES)
        q, args = _ask_weather(city, rng), _weather_args(tool, city)
        if "unit" in tool["function"]["parameters"]["properties"] and rng.random() < 0.4:
            unit = rng.choice(tool["function"]["parameters"]["properties"]["unit"]["enum"])
            q = q.rstrip("?.") + (" in Fahrenheit?" if unit in ("f", "fahrenheit") else " in Celsius?")
            args["unit"] = unit
    elif kind == 1:
        tool, topic = OTHER[4], rng.choice(TOPICS)
        day, hour = rng.randint(1, 28), rng.choice(["09:00", "10:30", "14:00", "18:15"])
        date = f"2026-{rng.randint(1, 12):02d}-{day:02d}"
        with_time = rng.random() < 0.5
        q = f"Add '{topic}' to my calendar on {date}" + (f" at {hour}." if with_time else ".")
        args = {"title": topic, "date": date, **({"time": hour} if with_time else {})}
    else:
        tool, city = OTHER[5], rng.choice(CITIES)
        q, args = rng.choice([f"What time is it in {city}?", f"Current time in {city}?"]), {"city": city}
    tools = [tool] + rng.sample([t for t in OTHER if t is not tool], rng.randint(0, 3))
    rng.shuffle(tools)
    history = []
    if rng.random() < 0.4:
        hq, ha = rng.choice(CHAT[:4])
        history = [{"role": "user", "content": hq}, {"role": "assistant", "content": ha}]
    ex = {"kind": "single", "messages": _system(rng) + history + [{"role": "user", "content": q}], "tools": tools,
          "answer": {"tool_calls": [_call(tool["function"]["name"], args, rng)]}}
    if rng.random() < 0.2:
        ex["tool_choice"] = {"type": "function", "function": {"name": tool["function"]["name"]}}
    return ex


def extract(rng: random.Random) -> dict:
    """Structured extraction through a named function, as instructor sends it."""
    name, age = rng.choice(NAMES), rng.randint(18, 90)
    city = rng.choice(CITIES)
    text = rng.choice([f"{name} is {age} years old and lives in {city}.", f"Meet {name}, {age}, from {city}.",
                       f"My name is {name}; I'm {age} and I live in {city}.",
                       f"{name} ({age}) moved to {city} last year."])
    props = {"name": {"type": "string", "title": "Name"}, "age": {"type": "integer", "title": "Age"}}
    args = {"name": name, "age": age}
    if rng.random() < 0.5:
        props["city"] = {"type": "string", "title": "City"}
        args["city"] = city
    fname = rng.choice(["UserInfo", "Person", "User", "extract_person"])
    tool = _tool(fname, f"Correctly extracted `{fname}` with all the required parameters with correct types",
                 props, list(props))
    q = rng.choice([f"Extract: {text}", text, f"Extract the person's details from this text: {text}"])
    return {"kind": "extract", "messages": [{"role": "user", "content": q}], "tools": [tool],
            "tool_choice": {"type": "function", "function": {"name": fname}},
            "answer": {"tool_calls": [_call(fname, args, rng)]}}


def _system(rng: random.Random) -> list[dict]:
    s = rng.choice(SYSTEMS)
    return [{"role": "system", "content": s}] if s else []


KINDS = {"final": (final, 0.3), "followup": (followup, 0.1), "ask": (ask, 0.12), "chat": (chat, 0.15),
         "single": (single, 0.2), "extract": (extract, 0.13)}


def generate(n: int, seed: int = 0) -> list[dict]:
    """`n` conversations in the KINDS proportions, seeded."""
    rng = random.Random(seed)
    names = list(KINDS)
    weights = [KINDS[k][1] for k in names]
    return [KINDS[rng.choices(names, weights)[0]][0](rng) for _ in range(n)]


# a function's leading verb, dropped to name what it returns ("get_pollen_count" -> "pollen count")
VERBS = {"get", "fetch", "find", "calculate", "calc", "compute", "lookup", "look", "up", "search", "retrieve", "check",
         "query", "estimate", "predict", "determine", "count", "list", "show", "read", "analyze", "evaluate", "solve"}
OUTCOMES = ["high", "low", "moderate", "available", "confirmed", "pending", "closed", "open", "sold out", "in stock",
            "delayed", "on time", "none", "approved", "not found", "valid", "expired", "rising", "falling"]


def _subject(name: str) -> str:
    words = [w.lower() for w in re.split(r"[_\W]+|(?<=[a-z])(?=[A-Z])", name.rsplit(".", 1)[-1]) if w]
    while len(words) > 1 and words[0] in VERBS:
        words = words[1:]
    return " ".join(words) or "result"


def _made_up(rng: random.Random) -> str:
    n = rng.randint(1, 9)
    return rng.choice([str(rng.randint(0, 5000)), f"{rng.uniform(0, 1000):.2f}", rng.choice(OUTCOMES),
                       f"{rng.choice(OUTCOMES)} ({n} of 10)", f"{rng.randint(0, 23):02d}:{rng.randint(0, 59):02d}",
                       f"{rng.randint(2, 40)} {rng.choice(['items', 'km', 'minutes', 'people', 'percent', 'USD'])}"])


def _about(args: dict) -> str | None:
    said = [v for v in args.values() if isinstance(v, str) and 0 < len(v) <= 40]
    return said[0] if said else None


def answered(example: dict, rng: random.Random) -> dict | None:
    """`example` (a single-turn request answered with calls) as a `final` conversation: its calls, a
    made-up result of each, and a text answer that states the results. None for other examples."""
    if not augment.first_turn_calls(example):
        return None
    args = [json.loads(c["function"]["arguments"] or "{}") for c in example["answer"]["tool_calls"]]
    made = [_call(c["function"]["name"], a, rng) for c, a in zip(example["answer"]["tool_calls"], args, strict=True)]
    results, parts = [], []
    for call, a in zip(made, args, strict=True):
        subject, value = _subject(call["function"]["name"]), _made_up(rng)
        about = _about(a)
        results.append(rng.choice([value, json.dumps({"result": value}), f"{subject.capitalize()}: {value}",
                                   json.dumps({subject.replace(" ", "_"): value} | ({"for": about} if about else {}))]))
        parts.append(f"the {subject} for {about} is {value}" if about and rng.random() < 0.7 else f"the {subject} is {value}")
    text = "; ".join(parts)
    answer = rng.choice([text[0].upper() + text[1:] + ".", f"Here is what I found: {text}."])
    messages = [*example["messages"], {"role": "assistant", "content": None, "tool_calls": made},
                *({"role": "tool", "tool_call_id": c["id"], "content": r} for c, r in zip(made, results, strict=True))]
    return {**example, "messages": messages, "answer": {"content": answer},
            "kind": example.get("kind", "") + ":answered", "id": f"{example.get('id', '')}:answered"}


JOINS = (" Also, ", " And then: ", "\n", " Next, ", " Additionally, ")


def single_turn(e: dict) -> bool:
    return (bool(e["answer"].get("tool_calls")) and not e.get("tool_choice") and len(e["messages"]) == 1
            and e["messages"][0]["role"] == "user" and isinstance(e["messages"][0].get("content"), str))


def combined(examples: list[dict], rng: random.Random) -> dict | None:
    """One request made of `examples` (single-turn requests answered with calls): their texts joined, their
    tools offered together (one of each name; None when two differ under one name or an example is not
    single-turn), every call the answer, in order."""
    if not all(single_turn(e) for e in examples):
        return None
    tools: dict[str, dict] = {}
    for e in examples:
        for t in e.get("tools") or []:
            name = t["function"]["name"]
            if tools.setdefault(name, t) != t:
                return None
    text = examples[0]["messages"][0]["content"].rstrip()
    for e in examples[1:]:
        text += rng.choice(JOINS) + e["messages"][0]["content"].strip()
    offered = list(tools.values())
    rng.shuffle(offered)
    return {"messages": [{"role": "user", "content": text}], "tools": offered, "kind": "combined",
            "id": "+".join(str(e.get("id", "")) for e in examples),
            "answer": {"tool_calls": [c for e in examples for c in e["answer"]["tool_calls"]]}}
