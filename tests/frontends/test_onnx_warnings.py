"""Odd exports warn (issue 11 item 2): static token dims, one stored tensor serving several
parameters; tied embedding and head, and clean exports, stay silent."""

from __future__ import annotations

import json
import warnings

import numpy as np
import onnx
import pytest
from click.testing import CliRunner
from onnx import TensorProto, helper, numpy_helper

import placer
from placer.cli.main import cli
from placer.frontends.onnx_warnings import ExportWarning

V, D = 32, 8


def _model(path, *, seq=("batch", "seq"), shared_norm=False, equal_norms=False, tied=False):  # noqa: ANN001, ANN201
    rng = np.random.default_rng(0)

    def init(name, *shape, value=None):  # noqa: ANN001, ANN202
        data = np.full(shape, value, np.float32) if value is not None else \
            rng.standard_normal(shape).astype(np.float32)
        return numpy_helper.from_array(data, name)

    inits = [init("embed", V, D), init("w1", D, D), init("g1", D, value=1.0 if equal_norms else None)]
    g2 = "g1" if shared_norm else "g2"
    if not shared_norm:
        inits.append(init("g2", D, value=1.0) if equal_norms else init("g2", D))
    nodes = [helper.make_node("Gather", ["embed", "input_ids"], ["x"], name="embedding"),
             helper.make_node("LayerNormalization", ["x", "g1"], ["h1"], name="norm1", axis=-1),
             helper.make_node("MatMul", ["h1", "w1"], ["y"], name="proj"),
             helper.make_node("LayerNormalization", ["y", g2], ["h2"], name="norm2", axis=-1)]
    if tied:
        nodes.append(helper.make_node("Transpose", ["embed"], ["embed_t"], name="tie", perm=[1, 0]))
        nodes.append(helper.make_node("MatMul", ["h2", "embed_t"], ["logits"], name="head"))
    else:
        inits.append(init("w_head", D, V))
        nodes.append(helper.make_node("MatMul", ["h2", "w_head"], ["logits"], name="head"))
    graph = helper.make_graph(
        nodes, "odd", [helper.make_tensor_value_info("input_ids", TensorProto.INT64, list(seq))],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, [*seq, V])], inits)
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), path)
    return str(path)


def _findings(path):  # noqa: ANN001, ANN202
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        placer.load_graph(path)
    return [w.message.finding for w in caught if isinstance(w.message, ExportWarning)]


def test_clean_and_tied_exports_are_silent(tmp_path):
    assert _findings(_model(tmp_path / "clean.onnx")) == []
    assert _findings(_model(tmp_path / "tied.onnx", tied=True)) == []


def test_static_token_dims_warn_naming_the_input(tmp_path):
    found = _findings(_model(tmp_path / "static.onnx", seq=(1, 8)))
    assert [f.kind for f in found] == ["static-token-dims"]
    assert "'input_ids'" in found[0].message and "8 tokens" in found[0].message
    assert "dynamic" in found[0].message and "\n" not in found[0].message


@pytest.mark.parametrize("case", ["shared_norm", "equal_norms"])
def test_one_stored_tensor_for_two_norms_warns(tmp_path, case):
    found = _findings(_model(tmp_path / f"{case}.onnx", **{case: True}))
    assert [f.kind for f in found] == ["shared-stored-tensor"]
    assert set(found[0].values) == ({"g1"} if case == "shared_norm" else {"g1", "g2"})
    assert "norm1" in found[0].message and "norm2" in found[0].message


@pytest.mark.filterwarnings("default::placer._warnings.PlacerWarning")
def test_json_outputs_list_the_findings(tmp_path):
    path = _model(tmp_path / "static.onnx", seq=(1, 8))
    r = CliRunner().invoke(cli, ["inspect", path, "--json"])
    assert r.exit_code == 0, r.output
    doc = json.loads(r.stdout)
    assert [w["kind"] for w in doc["export_warnings"]] == ["static-token-dims"]
    lines = [x for x in r.stderr.splitlines() if x]
    assert len(lines) == 1 and lines[0].startswith("placer: warning: static: input 'input_ids'")
    assert doc["export_warnings"][0]["values"] == ["input_ids"]
    out = tmp_path / "out"
    r = CliRunner().invoke(cli, ["compile", path, "--target", "wse-mini", "--context", "0", "-o", str(out),
                                 "--json"])
    assert r.exit_code == 0, r.output
    plan = json.loads(r.stdout)
    assert len(plan["model"]["export_warnings"]) == 1
    text = (out / "plan.json").read_text()
    assert placer.Plan.from_json(text).to_json() == text  # read back exactly
    clean = _model(tmp_path / "clean.onnx")
    r = CliRunner().invoke(cli, ["compile", clean, "--target", "wse-mini", "--context", "0", "-o",
                                 str(tmp_path / "c"), "--json"])
    assert r.exit_code == 0 and "export_warnings" not in json.loads(r.stdout)["model"]
