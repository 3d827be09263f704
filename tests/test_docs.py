"""The documentation points at what exists: every relative link and image in README.md, ARCHITECTURE.md
and docs/*.md names a file in the repository, and every `edgeslm COMMAND [SUBCOMMAND]` they show in code
answers --help. In process, no server, no model."""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import unquote

from typer.testing import CliRunner

from edgeslm.cli import app

ROOT = Path(__file__).resolve().parents[1]
FENCE = re.compile(r"^\s*(```|~~~)")
# [text](target) and ![alt](target), the target optionally in <...> and followed by a "title"
LINK = re.compile(r"!?\[(?:[^\[\]]|\[[^\[\]]*\])*\]\(\s*(<[^>]*>|[^)\s]+)(?:\s+\"[^\"]*\")?\s*\)")
REFERENCE = re.compile(r"^\s{0,3}\[[^\]]+\]:\s*(\S+)", re.M)
SPAN = re.compile(r"`([^`]+)`")
# `edgeslm` as a word of its own (not edgeslm.cli, edgeslm/wire, edgeslm_requests_total, 'edgeslm[gpu]'),
# then a lowercase word: the command, and for a group the subcommand (alternatives as in `cache ls|clear`)
COMMAND = re.compile(r"(?<![\w./\[-])edgeslm[ \t]+([a-z][\w-]*)(?:[ \t]+([a-z][\w-]*(?:\|[a-z][\w-]*)*))?")


def doc_files() -> list[Path]:
    return [ROOT / "README.md", ROOT / "ARCHITECTURE.md", *sorted((ROOT / "docs").glob("*.md"))]


def split_code(text: str) -> tuple[str, list[str]]:
    """The text outside fenced blocks and code spans, and the code: each fenced block's lines and each
    span (a span may run across a line break, as Markdown allows)."""
    prose, code, fenced = [], [], False
    for line in text.splitlines():
        if FENCE.match(line):
            fenced = not fenced
        elif fenced:
            code.append(line)
        else:
            prose.append(line)
    outside = "\n".join(prose)
    spans = [s.replace("\n", " ") for s in SPAN.findall(outside) if "\n\n" not in s]
    return SPAN.sub(" ", outside), code + spans


def broken_links(path: Path) -> list[str]:
    prose, _ = split_code(path.read_text())
    targets = [m.group(1).strip("<>") for m in LINK.finditer(prose)] + REFERENCE.findall(prose)
    broken = []
    for target in targets:
        if re.match(r"(?i)(https?:|mailto:)", target):
            continue
        file = unquote(target.split("#", 1)[0])
        if not file:  # an anchor in the same page
            continue
        resolved = ROOT / file.lstrip("/") if file.startswith("/") else path.parent / file
        if not resolved.exists():
            broken.append(f"{path.relative_to(ROOT)}: {target}")
    return broken


def groups() -> set[str]:
    return {g.name or g.typer_instance.info.name for g in app.registered_groups}


def commands_named(text: str) -> set[tuple[str, ...]]:
    found = set()
    for code in split_code(text)[1]:
        for command, sub in COMMAND.findall(code):
            if command in groups() and sub:
                found |= {(command, s) for s in sub.split("|")}
            else:
                found.add((command,))
    return found


def test_the_collector_reads_code_only_and_knows_the_groups():
    assert groups() == {"models", "adapters", "convert", "cache"}
    text = ("edgeslm is a runtime; edgeslm serves agents.\n`edgeslm serve --port 8000`, `python -m edgeslm.export.front`,"
            " `edgeslm/config.py`, `pip install 'edgeslm[gpu]'`, `edgeslm cache ls|clear`, (`edgeslm\nfinetune TASK`)\n"
            "```sh\nedgeslm models import PATH.gguf   # reads the header\nedgeslm qualify MODEL --plan\n```\n")
    assert commands_named(text) == {("serve",), ("cache", "ls"), ("cache", "clear"), ("finetune",),
                                    ("models", "import"), ("qualify",)}
    prose, _ = split_code("[a](x.md) `[b](y.md)`\n```\n[c](z.md)\n```\n![d](<e f.png> \"t\")")
    assert [m.group(1) for m in LINK.finditer(prose)] == ["x.md", "<e f.png>"]


def test_every_relative_link_and_image_resolves():
    files = doc_files()
    assert (ROOT / "docs" / "README.md") in files, "docs/README.md, the index of the docs, is missing"
    broken = [b for path in files for b in broken_links(path)]
    assert not broken, "links to files that do not exist:\n" + "\n".join(broken)


def test_every_command_the_docs_name_answers_help():
    named = set().union(*(commands_named(p.read_text()) for p in doc_files()))
    assert {("serve",), ("qualify",), ("convert", "run")} <= named, f"the collector found too little: {sorted(named)}"
    runner = CliRunner()
    failing = []
    for path in sorted(named):
        result = runner.invoke(app, [*path, "--help"])
        if result.exit_code != 0:
            lines = [ln.strip("│╭╮╰╯─ ") for ln in result.output.splitlines()]
            why = ([ln for ln in lines if re.search(r"\w", ln)] or [repr(result.exception)])[-1]
            failing.append(f"edgeslm {' '.join(path)} --help: exit {result.exit_code}: {why}")
    assert not failing, "commands the docs name that do not answer --help:\n" + "\n".join(failing)


def test_the_readme_stays_short_and_starts_with_the_two_commands():
    text = (ROOT / "README.md").read_text()
    assert len(text.splitlines()) <= 200, "the README is the short way in: move detail into docs/"
    assert text.startswith("# edgeslm\n\n```sh\nmake serve   #") and "\nmake test    #" in text.split("```")[1]

