"""`edgeslm finetune --recipe tools` writes into the store, not into the installed package, and never
deletes an existing --out without --force (nor, even forced, a folder the recipe did not write). Every
refusal comes before any data is read or any training runs."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from edgeslm.cli import app
from edgeslm.config import Settings
from edgeslm.errors import InvalidRequest
from edgeslm.pipeline import recipe

PACKAGE = Path(recipe.__file__).resolve().parents[1]


@pytest.fixture()
def no_training(monkeypatch):
    """The recipe's first step (reading its data) fails the test: a refusal must come before it."""
    def started(*args, **kwargs):
        raise AssertionError("the recipe started reading its data")

    monkeypatch.setattr(recipe, "examples", started)


def _finetune(tmp_path, monkeypatch, *args):
    monkeypatch.setenv("EDGESLM_HOME", str(tmp_path / "home"))
    return CliRunner().invoke(app, ["finetune", "--recipe", "tools", *args])


def test_the_default_output_is_under_edgeslm_home_not_the_package(tmp_path):
    out = recipe.default_out(Settings(home=tmp_path))
    assert out.is_relative_to(tmp_path) and not out.is_relative_to(PACKAGE)


def test_an_existing_out_is_refused_without_force(tmp_path, monkeypatch, no_training):
    out = tmp_path / "mine"
    out.mkdir()
    (out / "notes.txt").write_text("keep me")
    r = _finetune(tmp_path, monkeypatch, "--out", str(out))
    assert r.exit_code == 2 and isinstance(r.exception, SystemExit)  # fail(), not a traceback
    assert str(out) in r.stderr and "--force" in r.stderr
    assert (out / "notes.txt").read_text() == "keep me"


def test_force_replaces_only_a_folder_the_recipe_wrote(tmp_path, monkeypatch, no_training):
    out = tmp_path / "mine"
    out.mkdir()
    (out / "notes.txt").write_text("keep me")
    r = _finetune(tmp_path, monkeypatch, "--out", str(out), "--force")
    assert r.exit_code == 2 and "not an adapter folder" in r.stderr and str(out) in r.stderr
    assert (out / "notes.txt").read_text() == "keep me"
    (out / "notes.txt").unlink()
    for name in recipe.OUTPUT_FILES:
        (out / name).write_bytes(b"an earlier build")
    recipe.check_out(out, force=True)  # an earlier output may be replaced when forced...
    with pytest.raises(InvalidRequest, match="--force"):
        recipe.check_out(out, force=False)  # ...and only then
    recipe.check_out(tmp_path / "new", force=False)  # a new folder, or an empty one, needs no --force
    (tmp_path / "empty").mkdir()
    recipe.check_out(tmp_path / "empty", force=False)


def test_the_default_output_is_refused_too_when_it_exists(tmp_path, monkeypatch, no_training):
    out = recipe.default_out(Settings(home=tmp_path / "home"))
    out.mkdir(parents=True)
    (out / "manifest.json").write_text("{}")
    r = _finetune(tmp_path, monkeypatch)
    assert r.exit_code == 2 and str(out) in r.stderr and "--force" in r.stderr
    assert (out / "manifest.json").read_text() == "{}"


def test_a_setting_the_recipe_owns_is_refused_by_name(tmp_path, monkeypatch, no_training):
    r = _finetune(tmp_path, monkeypatch, "--full", "--rank", "8")
    assert r.exit_code == 2 and isinstance(r.exception, SystemExit)
    assert "--rank, --full cannot be used with --recipe" in r.stderr and "--steps" in r.stderr
    r = CliRunner().invoke(app, ["finetune", "weather", "--recipe", "tools", "--seed", "0"])
    assert r.exit_code == 2 and "a cluster ('weather'), --seed cannot be used with --recipe" in r.stderr


def test_full_fine_tuning_takes_its_own_low_learning_rate_unless_one_is_given():
    from edgeslm.cli.convert import _train_config
    from edgeslm.pipeline.finetune import FULL_LR, TrainConfig

    lora, full = _train_config(None, None, None, None, 0), _train_config(None, None, 32, None, 0, full=True)
    assert not lora.full and lora.lr == TrainConfig.lr
    assert full.full and full.lr == FULL_LR < lora.lr / 10 and full.rank == 32
    assert _train_config(None, 1e-4, None, None, 0, full=True).lr == 1e-4
