"""The BFCL dev benchmark's scorer (benchmarks/bfcl_dev.py) on the real data: the accepted answers
themselves must score, and near misses must not."""

import copy
import json

import jsonschema
import pytest

from benchmarks.bfcl_dev import CATEGORIES, DATA, load, score_call, to_openai_tool

pytestmark = pytest.mark.skipif(not DATA.is_dir(), reason=f"BFCL data not found at {DATA}")


def concrete(value):
    """An answer's first acceptable value; nested dicts map keys to lists of acceptable values."""
    if isinstance(value, dict):
        return {k: concrete(v[0]) for k, v in value.items() if v and v[0] != ""}
    if isinstance(value, list):
        return [concrete(v) for v in value]
    return value


def first_answer(item):
    (fname, params), = item["ground_truth"][0].items()
    given = {p: [x for x in v if x != ""] for p, v in params.items()}
    return fname, {p: concrete(v[0]) for p, v in given.items() if v}


@pytest.mark.parametrize("category", CATEGORIES)
def test_ground_truth_scores_every_question(category):
    items = load(DATA, category)
    assert len(items) == {"simple_python": 400, "multiple": 200}[category]
    for item in items:
        fname, args = first_answer(item)
        fn = next(f for f in item["function"] if f["name"] == fname)
        ok, why = score_call(fname, args, fn, item["ground_truth"][0])
        assert ok, (item["id"], why)


def test_near_misses_are_wrong():
    item = load(DATA, "simple_python")[0]  # calculate_triangle_area(base=10, height=5, unit optional)
    fn, answer = item["function"][0], item["ground_truth"][0]
    assert score_call("calculate_triangle_area", {"base": 10, "height": 5}, fn, answer)[0]
    assert score_call("calculate_triangle_area", {"base": 10, "height": 5, "unit": "Units"}, fn, answer)[0]
    assert not score_call("calculate_area", {"base": 10, "height": 5}, fn, answer)[0]
    assert not score_call("calculate_triangle_area", {"base": 10}, fn, answer)[0]
    assert not score_call("calculate_triangle_area", {"base": 11, "height": 5}, fn, answer)[0]
    assert not score_call("calculate_triangle_area", {"base": 10.5, "height": 5}, fn, answer)[0]
    assert not score_call("calculate_triangle_area", {"base": 10, "height": 5, "color": "red"}, fn, answer)[0]


def test_converted_tools_are_valid_openai_tools():
    for category in CATEGORIES:
        for item in load(DATA, category):
            for fn in item["function"]:
                tool = to_openai_tool(copy.deepcopy(fn))["function"]
                assert json.dumps(tool)  # serializable
                jsonschema.Draft202012Validator.check_schema(tool["parameters"])
                assert tool["parameters"]["type"] == "object"
