"""BFCL data as the "tools" recipe trains on it and `benchmarks.bfcl_dev` scores it: the seven
non-live categories of the Berkeley Function Calling Leaderboard, a fixed-seed train / val / dev split by
*function* (`function_split`: no function offered in a dev question is offered in any training or val
question, a function being its name, whatever its parameters), their functions as OpenAI tools (prepared the
way BFCL's own harness prepares them for function-calling models), and one concrete answer per question
for training. The earlier split by question id (`split`) stays only so that an adapter trained on it can
be rebuilt and its figures read against the new split.

Knows nothing of models or servers. The checker itself is BFCL's (`bfcl_eval`, see `checker()`),
imported without the model handlers its package would otherwise pull in.
"""

from __future__ import annotations

import copy
import hashlib
import json
import os
import re
import sys
import types
from pathlib import Path

from edgeslm.errors import InvalidRequest

CATEGORIES = ("simple_python", "multiple", "parallel", "parallel_multiple", "simple_java", "simple_javascript",
              "irrelevance")
SEED = 13  # the split's seed: fixed before anything was trained, never changed since
DEV_SHARE = 0.2
VAL_SHARE = 0.1  # the slice of train that chooses steps and recipes (split by function too; never dev)
PARTS = ("train", "val", "dev")
# BFCL's table for function-calling models (GORILLA_TO_OPENAPI); anything else becomes a string
_OPENAPI = {"integer": "integer", "number": "number", "float": "number", "string": "string", "boolean": "boolean",
            "bool": "boolean", "array": "array", "list": "array", "dict": "object", "object": "object",
            "tuple": "array", "any": "string", "byte": "integer", "short": "integer", "long": "integer",
            "double": "number", "char": "string", "ArrayList": "array", "Array": "array", "HashMap": "object",
            "Hashtable": "object", "Queue": "array", "Stack": "array", "Any": "string", "String": "string",
            "Bigint": "integer"}
_KEEP = {"description", "required", "enum", "default", "format", "const", "pattern", "minimum", "maximum",
         "minItems", "maxItems", "minLength", "maxLength"}


def default_dir() -> Path:
    """`EDGESLM_BFCL_DIR`, else `../shared/data/bfcl` beside the source tree."""
    env = os.environ.get("EDGESLM_BFCL_DIR")
    return Path(env) if env else Path(__file__).resolve().parents[3] / "shared" / "data" / "bfcl"


def load(category: str, data_dir: Path | None = None) -> list[dict]:
    """The category's questions, each with `ground_truth` (None for irrelevance: no call is right)."""
    data_dir = data_dir or default_dir()
    if category not in CATEGORIES:
        raise InvalidRequest(f"unknown BFCL category '{category}'; the categories are: {', '.join(CATEGORIES)}",
                             param="category")
    path = data_dir / f"BFCL_v4_{category}.json"
    if not path.is_file():
        raise InvalidRequest(f"no BFCL data at {path}; set EDGESLM_BFCL_DIR to the folder that holds it",
                             param="data")

    def rows(p: Path) -> list[dict]:
        return [json.loads(line) for line in p.read_text().splitlines() if line.strip()]
    answers = {}
    if category != "irrelevance":
        answers = {a["id"]: a["ground_truth"] for a in rows(data_dir / "possible_answer" / path.name)}
    return [{**q, "category": category, "ground_truth": answers.get(q["id"])} for q in rows(path)]


def split(items: list[dict], seed: int = SEED, dev: float = DEV_SHARE) -> tuple[list[dict], list[dict]]:
    """The legacy split (issue 13): (train, dev) by a seeded hash of each question id, per category.
    Dev questions share functions with training under it; kept only to rebuild what was trained on it."""
    order = sorted(items, key=lambda q: hashlib.sha256(f"{seed}:{q['id']}".encode()).hexdigest())
    n = round(len(order) * dev)
    return order[n:], order[:n]


def function_key(fn: dict) -> str:
    """A function's identity for the split: its name as the model sees it, lower-cased. Stricter than
    name and parameter names: a redescribed copy, or a namesake with other parameters, is the same
    function, so no dev function's name is offered in training at all."""
    return tool_name(fn["name"]).lower()


def _groups(items: list[dict]) -> list[list[dict]]:
    """Questions joined whenever they offer a common function (union-find over function keys): a
    group goes to one part whole, so no function crosses parts."""
    parent: dict = {}

    def find(x):
        while parent.setdefault(x, x) != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x
    for q in items:
        keys = [function_key(f) for f in q["function"]]
        for k in keys[1:]:
            parent[find(k)] = find(keys[0])
        find(keys[0])
    groups: dict = {}
    for q in items:
        groups.setdefault(find(function_key(q["function"][0])), []).append(q)
    return list(groups.values())


def _carve(groups: list[list[dict]], quota: dict[str, int], salt: str) -> tuple[list, list]:
    """(taken, left): groups in a seeded hash order, each taken whole if no category then exceeds its
    quota. A group too big for any quota (BFCL's distractor functions link 441 questions into one)
    stays behind, in training."""
    def order(g):
        return hashlib.sha256(f"{salt}:{min(str(function_key(f)) for q in g for f in q['function'])}".encode()).hexdigest()
    taken, left, count = [], [], dict.fromkeys(quota, 0)
    for g in sorted(groups, key=order):
        need: dict[str, int] = {}
        for q in g:
            need[q["category"]] = need.get(q["category"], 0) + 1
        if all(count[c] + n <= quota[c] for c, n in need.items()):
            taken.append(g)
            for c, n in need.items():
                count[c] += n
        else:
            left.append(g)
    return taken, left


_SPLITS: dict[tuple, dict[str, dict[str, list[dict]]]] = {}


def function_split(data_dir: Path | None = None, seed: int = SEED) -> dict[str, dict[str, list[dict]]]:
    """{part: {category: questions}} for the parts "train", "val", "dev", over all seven categories at
    once: questions that offer a common function (the same name) are in the same part.
    Dev takes about DEV_SHARE of each category, then val about VAL_SHARE of each from what is left;
    both by a seeded hash of their groups. Sorted by id within each part."""
    key = (str(data_dir or default_dir()), seed)
    if key not in _SPLITS:
        items = [q for c in CATEGORIES for q in load(c, data_dir)]
        total = {c: sum(q["category"] == c for q in items) for c in CATEGORIES}
        dev, rest = _carve(_groups(items), {c: round(n * DEV_SHARE) for c, n in total.items()}, f"{seed}:dev")
        val, train = _carve(rest, {c: round(n * VAL_SHARE) for c, n in total.items()}, f"{seed}:val")
        out = {}
        for part, groups in (("train", train), ("val", val), ("dev", dev)):
            flat = sorted((q for g in groups for q in g), key=lambda q: q["id"])
            out[part] = {c: [q for q in flat if q["category"] == c] for c in CATEGORIES}
        _SPLITS[key] = out
    return _SPLITS[key]


def _text(item: dict) -> str:
    return " ".join(" ".join(str(m.get("content", "")).lower().split()) for m in item["question"][0])


def clean_dev(category: str, data_dir: Path | None = None, part: str = "dev") -> tuple[list[dict], int]:
    """The category's questions of `part` ("dev" or "val") of the function split without those whose
    text is also a question of a part trained on (train, and val too for dev): BFCL repeats some questions
    word for word across categories. Returns (clean questions, how many were removed)."""
    parts = function_split(data_dir)
    fit = ("train",) if part == "val" else ("train", "val")
    seen = {_text(q) for p in fit for c in CATEGORIES for q in parts[p][c]}
    chosen = parts[part][category]
    clean = [q for q in chosen if _text(q) not in seen]
    return clean, len(chosen) - len(clean)


def language(category: str) -> str:
    return "java" if "java" in category and "javascript" not in category else (
        "javascript" if "javascript" in category else "python")


def prepared(item: dict) -> list[dict]:
    """The question's functions as BFCL's harness hands them to a function-calling model: a language
    note on each description, and Java / JavaScript parameters as strings in that language's syntax."""
    lang = language(item["category"])
    fns = copy.deepcopy(item["function"])
    note = {"java": " Note that the provided function is in Java 8 SDK syntax.",
            "javascript": " Note that the provided function is in JavaScript syntax."}.get(
        lang, " Note that the provided function is in Python 3 syntax.")
    for fn in fns:
        fn["description"] = fn.get("description", "") + note
        if lang == "python":
            continue
        name = "Java" if lang == "java" else "JavaScript"
        for p in fn["parameters"].get("properties", {}).values():
            t = p.get("type")
            p["description"] = p.get("description", "") + (
                f" This parameter can be of any type of {name} object in string representation." if t == "any"
                else f" This is {name} {t} type parameter in string representation.")
            if t in ("ArrayList", "Array", "array") and "items" in p:
                p["description"] += f" The list elements are of type {p['items'].get('type')}; they are not in string representation."
                del p["items"]
            if lang == "javascript" and t == "dict" and "properties" in p:
                p["description"] += (" The dictionary entries have the following schema; they are not in string "
                                     f"representation. {json.dumps(p['properties'])}")
                del p["properties"]
            p["type"] = "string"
    return fns


def tool_name(name: str) -> str:
    """An OpenAI-legal function name for a BFCL one ("." becomes "_", as BFCL does for these models)."""
    return re.sub(r"[^a-zA-Z0-9_-]", "_", name)[:64] or "_"


def _schema(s: dict) -> dict:
    out: dict = {}
    for k, v in s.items():
        if k == "type":
            out["type"] = _OPENAPI.get(v, "string") if isinstance(v, str) else v
            if v == "float":
                out["description"] = (s.get("description", "") + " This is a float type value.").strip()
        elif k == "properties" and isinstance(v, dict):
            out[k] = {name: _schema(sub) for name, sub in v.items()}
        elif k in ("items", "additionalProperties") and isinstance(v, dict):
            out[k] = _schema(v)
        elif k in _KEEP and k not in out:
            out[k] = v
    if "type" not in out and "properties" not in out and "enum" not in out:
        out["type"] = "string"
    return out


def openai_tools(item: dict) -> list[dict]:
    tools = []
    for fn in prepared(item):
        params = _schema(fn.get("parameters") or {"type": "dict", "properties": {}})
        params["type"] = "object"
        tools.append({"type": "function", "function": {"name": tool_name(fn["name"]),
                                                       "description": fn.get("description", ""),
                                                       "parameters": params}})
    return tools


# ---- one concrete answer per question, for training ----------------------------------------------

def _pick(value):
    """A concrete value from an answer's acceptable value (dicts hold lists of acceptable values)."""
    if isinstance(value, dict):
        out = {}
        for k, acceptable in value.items():
            v = acceptable[0] if isinstance(acceptable, list) and acceptable else acceptable
            if v != "":
                out[k] = _pick(v)
        return out
    if isinstance(value, list):
        return [_pick(v) for v in value]
    return value


def _java(v, t: str) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if t == "long" and isinstance(v, int):
        return f"{v}L"
    if t == "float" and isinstance(v, (int, float)):
        return f"{v}f"
    if t in ("Array", "ArrayList") and isinstance(v, list):
        inner = ", ".join(json.dumps(x) if isinstance(x, str) else _java(x, "") for x in v)
        return f"new ArrayList<>(Arrays.asList({inner}))" if t == "ArrayList" else f"new String[]{{{inner}}}"
    if t == "HashMap" and isinstance(v, dict):
        puts = " ".join(f"put({json.dumps(k)}, {json.dumps(x) if isinstance(x, str) else _java(x, '')});"
                        for k, x in v.items())
        return f"new HashMap<String, String>() {{{{ {puts} }}}}"
    return v if isinstance(v, str) else json.dumps(v)


def _js(v, t: str) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (list, dict)):
        return json.dumps(v)
    return v if isinstance(v, str) else json.dumps(v)


# a Python parameter type's counterparts in BFCL's Java and JavaScript questions (the first, for list items)
_AS: dict[str, dict[str, tuple[str, ...]]] = {
    "java": {"integer": ("integer", "long"), "float": ("double", "float"), "boolean": ("boolean",), "string": ("String",),
             "array": ("ArrayList", "Array"), "dict": ("HashMap",)},
    "javascript": {"integer": ("integer",), "float": ("float",), "boolean": ("Boolean",), "string": ("String",),
                   "array": ("array",), "dict": ("dict",)}}


def as_language(item: dict, lang: str, rng) -> dict | None:
    """A simple Python question again as a Java or JavaScript one: its parameters typed as that language
    types them (an integer a `long` or an `integer`, a list an `ArrayList` or an `Array`...), so that the
    harness hands them over as strings and the answer is written in that language's syntax (`42L`,
    `new ArrayList<>(Arrays.asList(...))`, `true`). None where a type has no counterpart (tuples, any)."""
    if item["category"] != "simple_python" or lang not in _AS:
        return None
    out = copy.deepcopy(item)
    out["category"], out["id"] = f"simple_{lang}", f"{item['id']}-as-{lang}"
    for fn in out["function"]:
        for p in fn.get("parameters", {}).get("properties", {}).values():
            kinds = _AS[lang].get(p.get("type"))
            if not kinds:
                return None
            p["type"] = rng.choice(kinds)
            if "items" in p:
                inner = _AS[lang].get(p["items"].get("type"))
                if not inner or "properties" in p["items"]:
                    return None
                p["items"]["type"] = inner[0]
    return out


def target_calls(item: dict) -> list[dict]:
    """[{"name", "arguments"}] one right answer (the first acceptable value of each parameter, optional
    ones left out where the answer allows it), in the tool names and value syntax the model sees."""
    lang = language(item["category"])
    fns = {f["name"]: f for f in item["function"]}
    out = []
    for call in item["ground_truth"] or []:
        (fname, params), = call.items()
        required = set(fns.get(fname, {}).get("parameters", {}).get("required", []))
        # "" among the acceptable values: the parameter may be left out, unless the schema requires it
        args = _pick({k: ([x for x in v if x != ""] if k in required and isinstance(v, list) else v)
                      for k, v in params.items()})
        if lang != "python":
            props = fns.get(fname, {}).get("parameters", {}).get("properties", {})
            render = _java if lang == "java" else _js
            args = {k: render(v, props.get(k, {}).get("type", "")) for k, v in args.items()}
        out.append({"name": tool_name(fname), "arguments": args})
    return out


# ---- BFCL's own checker ------------------------------------------------------------------------

def checker():
    """BFCL's AST checker, `check(item, calls) -> (ok, error)`. bfcl_eval's checker module imports its
    table of model handlers (anthropic, cohere, mistral... clients) for one flag, whether function names
    had "." replaced by "_"; that table is given here with the one model this project is scored as."""
    if "bfcl_eval.constants.model_config" not in sys.modules:
        try:
            import bfcl_eval.constants  # noqa: F401
        except ImportError:
            raise InvalidRequest("BFCL's checker needs the bfcl-eval package: pip install --no-deps "
                                 "bfcl-eval==2026.3.23 (its checker is pure Python; make install does this)",
                                 param="checker") from None
        stub = types.ModuleType("bfcl_eval.constants.model_config")
        stub.MODEL_CONFIG_MAPPING = {"edgeslm": types.SimpleNamespace(underscore_to_dot=True)}
        sys.modules["bfcl_eval.constants.model_config"] = stub
    from bfcl_eval.constants.enums import Language
    from bfcl_eval.eval_checker.ast_eval.ast_checker import ast_checker

    langs = {"python": Language.PYTHON, "java": Language.JAVA, "javascript": Language.JAVASCRIPT}

    def check(item: dict, calls: list[dict]) -> tuple[bool, str]:
        """`calls`: [{"name", "arguments": dict}] as returned. Irrelevance: right when there is none."""
        if item["category"] == "irrelevance":
            return (not calls), ("ok" if not calls else f"{len(calls)} calls where no function fits")
        if not calls:
            return False, "no call"
        try:
            r = ast_checker(item["function"], [{c["name"]: c["arguments"]} for c in calls], item["ground_truth"],
                            langs[language(item["category"])], item["category"], "edgeslm")
        except Exception as e:  # noqa: BLE001 - the checker's own failure on an answer counts as wrong
            return False, f"checker error: {type(e).__name__}: {e}"
        return bool(r["valid"]), "ok" if r["valid"] else "; ".join(map(str, r.get("error", [])))[:300]

    return check
