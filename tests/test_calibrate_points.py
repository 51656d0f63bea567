"""The published points file and its strict loader."""

from __future__ import annotations

import pytest

from placer.calibrate_points import NOT_STATED, SpeculativeSetting, load_points, load_published_points
from placer.errors import UserError
from placer.zoo import ZOO_MODELS

POINT = """
[[point]]
id = "p"
set = "calibration"
model = "llama-3.1-8b"
target = "wse3"
wafers = 1
weights_dtype = "bf16"
kv_dtype = "not stated"
context_tokens = "not stated"
prompt_tokens = "not stated"
concurrency = 1
speculative = "none"
tokens_per_s_per_user = 1800.0
ttft_s = "not stated"
date = "2024-08-27"
source = "https://example.org/a"
remark = "r"
"""


def write(tmp_path, text):
    path = tmp_path / "points.toml"
    path.write_text(text)
    return path


def test_published_points():
    points = load_published_points()
    calibration = {p.model: p for p in points.of_set("calibration")}
    assert set(calibration) == {"llama-3.1-8b", "llama-3.1-70b"}
    assert calibration["llama-3.1-8b"].tokens_per_s_per_user == 1800.0
    assert calibration["llama-3.1-70b"].tokens_per_s_per_user == 450.0
    assert calibration["llama-3.1-70b"].wafers == 4
    for p in calibration.values():
        assert p.date == "2024-08-27" and p.speculative == "none" and p.weights_dtype == "bf16"
        assert p.concurrency == 1
    validation = {p.model: p.measured() for p in points.of_set("validation")}
    assert validation == {"llama-3.1-8b": {"tokens_per_s_per_user": 2200.0},
                          "llama-3.1-405b": {"tokens_per_s_per_user": 969.0, "ttft_s": 0.24},
                          "gpt-oss-120b": {"tokens_per_s_per_user": 3000.0}}
    reference = points.of_set("reference")
    assert [p.tokens_per_s_per_user for p in reference] == [2100.0]
    assert isinstance(reference[0].speculative, SpeculativeSetting)
    assert not reference[0].speculative.complete
    for p in points.points:
        assert p.model in ZOO_MODELS and p.source.startswith("https://")
        assert points.setting(p, "context_tokens") == (8192 if p.context_tokens == NOT_STATED else
                                                       p.context_tokens)


def test_loader_accepts_a_minimal_file(tmp_path):
    points = load_points(write(tmp_path, "schema = 1\n" + POINT))
    assert points.points[0].measured() == {"tokens_per_s_per_user": 1800.0}
    # layout is optional: placer's --layout for the prediction, whole unless a point or [assumed] says
    assert points.points[0].layout == NOT_STATED and points.setting(points.points[0], "layout") == "whole"
    text = "schema = 1\n[assumed]\nlayout = \"regions\"\n" + POINT
    assert load_points(write(tmp_path, text)).setting(points.points[0], "layout") == "regions"
    text = "schema = 1\n" + POINT.replace('remark = "r"', 'remark = "r"\nlayout = "auto"')
    p = load_points(write(tmp_path, text)).points[0]
    assert p.layout == "auto"


def test_published_gpt_oss_is_predicted_with_layout_auto():
    from placer.calibrate import PointPredictor
    from placer.targets import load_target

    points = load_published_points()
    predictor = PointPredictor(points, load_target("wse3-physics"))
    layouts = {p.id: predictor.options(p)["layout"] for p in points.points if p.set != "reference"}
    assert layouts.pop("gpt-oss-120b-2025") == "auto"  # issue 10: single stream with --layout auto
    assert set(layouts.values()) == {"whole"}


@pytest.mark.parametrize("edit,message", [
    (("schema = 1\n", "schema = 2\n"), "field 'schema' must be 1"),
    (('wafers = 1', 'wafers = 0'), "point 1 ('p'): field 'wafers' must be an integer >= 1"),
    (('wafers = 1', 'wafers = "two"'), "field 'wafers'"),
    (('remark = "r"\n', 'remark = "r"\nextra = 1\n'), "unknown field(s) extra"),
    (('date = "2024-08-27"\n', ''), "missing field(s) date"),
    (('set = "calibration"', 'set = "train"'), "field 'set' must be one of"),
    (('tokens_per_s_per_user = 1800.0', 'tokens_per_s_per_user = -1'), "'tokens_per_s_per_user' must be"),
    (('tokens_per_s_per_user = 1800.0', 'tokens_per_s_per_user = inf'), "'tokens_per_s_per_user' must be"),
    (('tokens_per_s_per_user = 1800.0', 'tokens_per_s_per_user = nan'), "'tokens_per_s_per_user' must be"),
    (('tokens_per_s_per_user = 1800.0', 'tokens_per_s_per_user = "not stated"'), "states no measured"),
    (('weights_dtype = "bf16"', 'weights_dtype = "bf17"'), "field 'weights_dtype'"),
    (('source = "https://example.org/a"', 'source = "not stated"'), "field 'source' must be"),
    (('remark = "r"\n', 'remark = "r"\nlayout = "diagonal"\n'), "field 'layout' must be one of whole"),
    (('speculative = "none"', 'speculative = { draft = "x", draft_length = 4 }'),
     "missing field(s) acceptance"),
    (('speculative = "none"', 'speculative = { draft = "x", draft_length = 4, acceptance = 2 }'),
     "'acceptance' must be a number in [0, 1)"),
])
def test_loader_errors_name_file_point_and_field(tmp_path, edit, message):
    text = ("schema = 1\n" + POINT).replace(*edit)
    path = write(tmp_path, text)
    with pytest.raises(UserError) as err:
        load_points(path)
    assert message in str(err.value)
    assert str(path) in str(err.value)
    assert "\n" not in str(err.value)


def test_duplicate_ids_and_missing_assumption(tmp_path):
    with pytest.raises(UserError, match="'p' is used twice"):
        load_points(write(tmp_path, "schema = 1\n" + POINT + POINT))
    points = load_points(write(tmp_path, "schema = 1\n" + POINT))
    with pytest.raises(UserError, match="does not state 'context_tokens'"):
        points.setting(points.points[0], "context_tokens")


def test_not_toml_and_missing_file(tmp_path):
    with pytest.raises(UserError, match="not valid TOML"):
        load_points(write(tmp_path, "schema = = 1"))
    with pytest.raises(UserError, match="not found"):
        load_points(tmp_path / "nope.toml")
