"""WD1 verdicts: named profiles of thresholds, and the pure function from measured figures to a verdict.

Owns the profile definitions (the `[profile.NAME]` tables of models.toml, shipped and user) and the
pass/fail logic. Knows nothing about models or measuring: it takes numbers and returns a verdict.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from pydantic import BaseModel, Field

from edgeslm.errors import NotFound


class Profile(BaseModel):
    """Thresholds for one way of using a model; an unset threshold is not checked."""

    name: str
    description: str = ""
    ttft_512_max_s: Optional[float] = Field(None, description="Time to first token of a 512-token prompt, cold.")
    ttft_tools_max_s: Optional[float] = Field(None, description="Time to first token of the tool-schema prompt, cold.")
    decode_min_tps: Optional[float] = Field(None, description="Median decode speed, unconstrained.")
    tool_call_max_s: Optional[float] = Field(None, description="Median constrained tool call, request to final JSON, "
                                                                "prompt prefix cached.")
    memory_max_ram_fraction: Optional[float] = Field(None, description="Peak resident memory over total RAM.")
    load_max_s: Optional[float] = Field(None, description="Model load time.")


# (profile field, figure key, "max" or "min", unit)
CRITERIA = [
    ("ttft_512_max_s", "ttft_512_s", "max", "s"),
    ("ttft_tools_max_s", "ttft_tools_s", "max", "s"),
    ("decode_min_tps", "decode_tps", "min", "tok/s"),
    ("tool_call_max_s", "tool_call_s", "max", "s"),
    ("memory_max_ram_fraction", "memory_ram_fraction", "max", "of RAM"),
    ("load_max_s", "load_s", "max", "s"),
]


def load_profiles(*paths: Path) -> dict[str, Profile]:
    """Profiles from the `[profile.NAME]` tables of these TOML files; later files override earlier ones."""
    out: dict[str, Profile] = {}
    for path in paths:
        if path.is_file():
            with path.open("rb") as f:
                for name, table in tomllib.load(f).get("profile", {}).items():
                    out[name] = Profile(name=name, **table)
    return out


def pick(profiles: dict[str, Profile], name: str) -> Profile:
    if name not in profiles:
        raise NotFound(f"unknown profile '{name}'; choose one of: {', '.join(sorted(profiles))}",
                       param="profile", code="profile_not_found")
    return profiles[name]


@dataclass(frozen=True)
class Criterion:
    name: str  # the profile field
    figure: str
    measured: Optional[float]
    threshold: float
    kind: str  # "max": measured must be <= threshold; "min": >=
    unit: str
    passed: bool
    margin: Optional[float]  # relative headroom: +0.25 means 25% better than the threshold; < 0 fails


@dataclass(frozen=True)
class Verdict:
    profile: str
    criteria: list[Criterion]
    overall: str  # "pass" | "fail" | "incomplete" (a checked figure was not measured)

    @property
    def passed(self) -> bool:
        return self.overall == "pass"


def judge(figures: dict[str, Optional[float]], profile: Profile) -> Verdict:
    """The verdict of `figures` (keys as in CRITERIA) under `profile`. Pure: no I/O, no clock."""
    out = []
    for field, key, kind, unit in CRITERIA:
        threshold = getattr(profile, field)
        if threshold is None:
            continue
        value = figures.get(key)
        if value is None:
            out.append(Criterion(field, key, None, threshold, kind, unit, False, None))
            continue
        if kind == "max":
            passed = value <= threshold
            margin = (threshold - value) / threshold if threshold else (0.0 if passed else -1.0)
        else:
            passed = value >= threshold
            margin = (value - threshold) / threshold if threshold else (1.0 if passed else -1.0)
        out.append(Criterion(field, key, value, threshold, kind, unit, passed, margin))
    if any(c.measured is None for c in out):
        overall = "incomplete"
    else:
        overall = "pass" if all(c.passed for c in out) else "fail"
    return Verdict(profile.name, out, overall)
