"""benchmarks/convert_summary.py: the README's convert table from per-seed result files (made-up figures; the
real run takes hours, python -m benchmarks.convert)."""

from __future__ import annotations

import json

from benchmarks import convert_summary


def _run(seed: int, cart_promoted: bool, email_hand: float) -> dict:
    tasks = [{"task": "add_to_cart", "true_task": "cart", "exact_with": 0.95 if cart_promoted else 0.85,
              "promoted": cart_promoted, "why": None if cart_promoted else "exact 0.85 < 0.90"},
             {"task": "triage_email", "true_task": "email", "exact_with": 0.95, "promoted": True, "why": None}]
    hand = {"cart": {"exact_with": 0.93, "exact_tools": 0.0, "exact_without": 0.0},
            "email": {"exact_with": email_hand, "exact_tools": 0.07, "exact_without": 0.0}}
    return {"seed": seed, "code": f"abc{seed}", "tasks": tasks, "handwritten": hand, "ari": 1.0, "router_accuracy": 0.99,
            "pii": {"recall": 0.995, "precision": 0.97, "names": {"recall": 0.97, "precision": 0.9}}}


def test_table_gives_mean_and_min_bolds_only_the_bar_and_says_why_promotion_differs(tmp_path):
    (tmp_path / "convert").mkdir()
    for seed, run in ((2, _run(2, True, 0.75)), (0, _run(0, True, 1.0)), (1, _run(1, False, 1.0))):
        (tmp_path / "convert" / f"default-s{seed}.json").write_text(json.dumps(run))
    runs = convert_summary.finished("default", tmp_path)
    assert [r["seed"] for r in runs] == [0, 1, 2]
    summary = convert_summary.write(runs, tmp_path)
    md = (tmp_path / "convert.md").read_text()
    assert (tmp_path / "convert.png").stat().st_size > 0
    assert json.loads((tmp_path / "convert.json").read_text())["seeds"] == [0, 1, 2]
    assert "| cart | `add_to_cart` | **0.93 (0.93)** |" in md  # the bar: mean >= 0.9, none below 0.8
    assert "| email | `triage_email` | 0.92 (0.75) |" in md  # mean above 0.9, but one seed below 0.8: not bold
    assert "| 2 of 3 |" in md and "cart is promoted in some seeds only" in md and "seed 1: exact 0.85 < 0.90" in md
    assert "PII recall 0.995 (0.995)" in md and "seed 1 at abc1" in md
    assert summary["over_seeds"]["figures"]["handwritten_with, all tasks"] == {"mean": 0.9233, "min": 0.84, "n": 3}
