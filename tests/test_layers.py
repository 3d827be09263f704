"""The architecture, enforced: every edgeslm module imports only its own layer or those below it, the
server and the pipeline never import each other, and no two modules import each other.

Layers, lowest first (ARCHITECTURE.md says what each owns):
  0 errors, types, config, device, privacy, surrogates (and the package itself)   1 store   2 backends
  3 decoding   4 engine, scheduling, router   5 wire (the OpenAI format, below both halves)
  6 serving, qualify, quantize   7 pipeline   8 cli
"""

import ast
import pathlib

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1] / "edgeslm"
LAYERS = {
    "edgeslm": 0, "context": 0, "errors": 0, "types": 0, "config": 0, "device": 0, "privacy": 0, "surrogates": 0, "_kernels": 0,
    "store": 1, "backends": 2, "decoding": 3, "engine": 4, "scheduling": 4, "generation": 4, "preparation": 4, "output": 4, "router": 4, "wire": 5,
    "serving": 6, "qualify": 6, "quantize": 6, "pipeline": 7, "export": 7, "cli": 8, "__main__": 8,
}
FORBIDDEN = {("serving", "pipeline"), ("pipeline", "serving"), ("serving", "qualify"), ("serving", "quantize")}


def modules() -> dict[str, pathlib.Path]:
    out = {}
    for p in ROOT.rglob("*.py"):
        parts = p.relative_to(ROOT.parent).with_suffix("").parts
        out[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = p
    return out


def imports(path: pathlib.Path, known: set[str]) -> set[str]:
    """The edgeslm modules `path` imports, anywhere in it (a lazy import inside a function counts)."""
    out = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names if a.name.startswith("edgeslm")}
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("edgeslm"):
            for a in node.names:  # `from edgeslm import privacy` names a module, not the package
                sub = f"{node.module}.{a.name}"
                out.add(sub if sub in known else node.module)
    return out


def group(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "edgeslm"


def violations(graph: dict[str, set[str]]) -> list[str]:
    bad = []
    for mod, deps in graph.items():
        for dep in deps:
            a, b = group(mod), group(dep)
            if a == b:
                continue
            if LAYERS[b] > LAYERS[a]:
                bad.append(f"{mod} (layer {LAYERS[a]}) imports {dep} (layer {LAYERS[b]})")
            if (a, b) in FORBIDDEN:
                bad.append(f"{mod} imports {dep}: {a} and {b} meet only through the store")
            if mod in graph.get(dep, ()):
                bad.append(f"{mod} and {dep} import each other")
            if dep != "edgeslm" and mod.startswith(dep + "."):
                bad.append(f"{mod} imports its parent package {dep}")
    return bad


@pytest.fixture(scope="module")
def graph():
    mods = modules()
    return {m: imports(p, set(mods)) for m, p in mods.items()}


def test_every_module_has_a_layer(graph):
    assert {group(m) for m in graph} <= set(LAYERS), {group(m) for m in graph} - set(LAYERS)


def test_layers_hold(graph):
    assert violations(graph) == []


@pytest.mark.parametrize("mod,dep", [
    ("edgeslm.serving.app", "edgeslm.pipeline.capture"),  # the knots this test replaced, one by one
    ("edgeslm.pipeline.data", "edgeslm.serving.protocol"),
    ("edgeslm.engine", "edgeslm.serving.app"),
    ("edgeslm.store.adapters", "edgeslm.engine"),
])
def test_the_contract_would_catch_a_knot(graph, mod, dep):
    knotted = {k: set(v) for k, v in graph.items()}
    knotted.setdefault(dep, set())
    knotted[mod] = knotted.get(mod, set()) | {dep}
    assert violations(knotted), f"{mod} -> {dep} went unnoticed"


def test_no_module_is_too_long():
    long = {str(p.relative_to(ROOT)): n for p in ROOT.rglob("*.py") if (n := len(p.read_text().splitlines())) > 400}
    assert long == {}, long


def test_every_module_says_what_it_owns():
    missing = [str(p.relative_to(ROOT)) for p in ROOT.rglob("*.py")
               if p.name != "__main__.py" and ast.get_docstring(ast.parse(p.read_text())) is None]
    assert missing == []


def test_no_class_is_too_long():
    long = {f"{p.relative_to(ROOT)}:{n.name}": n.end_lineno - n.lineno + 1
            for p in ROOT.rglob("*.py") for n in ast.walk(ast.parse(p.read_text()))
            if isinstance(n, ast.ClassDef) and n.end_lineno - n.lineno + 1 > 120}
    assert long == {}, long
