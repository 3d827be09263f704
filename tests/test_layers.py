"""The architecture, enforced: every edgeslm module imports only its own layer or those below it, the
server and the pipeline never import each other, no import cycle of any length, and no class acts on
state it does not set itself (a mixin).

The layers are read from ARCHITECTURE.md's table (one table of rooms, for readers and for this test):
  0 the package, errors, types, config, device, privacy, surrogates   1 store   2 backends   3 decoding
  4 engine, scheduling, generation, preparation, output, router   5 wire (below both halves)
  6 serving, qualify, quantize   7 pipeline, export   8 cli
"""

import ast
import pathlib
import re

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1] / "edgeslm"


def table_layers(text: str) -> dict[str, int]:
    """{room: layer} from ARCHITECTURE.md's table of layers (its rows `| N | `room`, `room/` | owns |`):
    the one table of rooms, for readers and for this test."""
    out = {}
    for line in text.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) >= 3 and cells[0].isdigit():
            for name in re.findall(r"`([^`]+)`", cells[1]):
                out[name.rstrip("/")] = int(cells[0])
    return out


LAYERS = table_layers((ROOT.parent / "ARCHITECTURE.md").read_text())
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


EXEMPT_BASES = {"BaseModel", "BaseSettings", "Protocol", "Enum", "IntEnum", "StrEnum", "TypedDict", "NamedTuple"}


def _name(e: ast.expr) -> str:
    if isinstance(e, ast.Name):
        return e.id
    if isinstance(e, ast.Attribute):
        return e.attr
    if isinstance(e, (ast.Subscript, ast.Call)):
        return _name(e.value if isinstance(e, ast.Subscript) else e.func)
    return ""


def _declares_data(cls: ast.ClassDef, classes: dict[str, ast.ClassDef]) -> bool:
    """Dataclasses, protocols, pydantic models, enums, TypedDicts: annotations there declare fields."""
    if any(_name(d) == "dataclass" for d in cls.decorator_list):
        return True
    return any(_name(b) in EXEMPT_BASES or (_name(b) in classes and classes[_name(b)] is not cls
                                            and _declares_data(classes[_name(b)], classes)) for b in cls.bases)


def _set_on_self(cls: ast.ClassDef) -> set[str]:
    out = set()
    for n in ast.walk(cls):
        targets = n.targets if isinstance(n, ast.Assign) else [n.target] if isinstance(n, (ast.AugAssign, ast.AnnAssign)) else []
        for t in targets:
            out |= {x.attr for x in ast.walk(t)
                    if isinstance(x, ast.Attribute) and isinstance(x.value, ast.Name) and x.value.id == "self"}
    return out


def borrowed_state(sources: dict[str, str]) -> list[str]:
    """Classes that declare state (bare annotations) they never set themselves: mixins acting on another
    class's state. A part that is split out owns its state: it sets it in its own __init__."""
    trees = {name: ast.parse(src) for name, src in sources.items()}
    classes = {n.name: n for t in trees.values() for n in ast.walk(t) if isinstance(n, ast.ClassDef)}
    bad = []
    for name, tree in trees.items():
        for cls in (n for n in ast.walk(tree) if isinstance(n, ast.ClassDef)):
            if _declares_data(cls, classes):
                continue
            bare = [s.target.id for s in cls.body
                    if isinstance(s, ast.AnnAssign) and s.value is None and isinstance(s.target, ast.Name)]
            missing = [b for b in bare if b not in _set_on_self(cls)]
            if missing:
                bad.append(f"{name}:{cls.name} declares {', '.join(missing)} but never sets it")
    return bad


def _sources() -> dict[str, str]:
    return {str(p.relative_to(ROOT)): p.read_text() for p in ROOT.rglob("*.py")}


def test_no_class_acts_on_state_it_does_not_own():
    assert borrowed_state(_sources()) == []


def test_the_rule_catches_a_mixin_put_back():
    """generation.Run split again into a state-declaring mixin and its host, as it was before issue 27."""
    sources = _sources()
    mixin = (
        "class _RunState:\n"
        "    job: object\n"
        "    slot: int | None\n\n"
        "class _Outcome(_RunState):\n"
        "    def result(self):\n"
        "        return self.job, self.slot\n"
    )
    sources["generation.py"] += "\n\n" + mixin
    assert borrowed_state(sources) == ["generation.py:_RunState declares job, slot but never sets it"]


def test_no_import_cycles_at_all(graph):
    """No cycle of imports, within a package or across packages, of any length (a lazy import counts)."""
    seen, stack, cycles = set(), [], []

    def visit(m: str) -> None:
        if m in stack:
            cycles.append(" -> ".join(stack[stack.index(m):] + [m]))
            return
        if m in seen:
            return
        seen.add(m)
        stack.append(m)
        for d in sorted(graph.get(m, ())):
            if d != m and not m.startswith(d + "."):  # a module and its own package: the package check above
                visit(d)
        stack.pop()

    for m in sorted(graph):
        visit(m)
    assert cycles == []
