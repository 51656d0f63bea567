"""Every kind of bad input through the installed ``placer`` command in a real subprocess:
exit code 2, exactly one line on stderr naming what is wrong, never a traceback."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper


def _vi(name, shape, dtype=TensorProto.FLOAT):
    return helper.make_tensor_value_info(name, dtype, shape)


def _save(path, nodes, inputs, outputs, inits=()):
    g = helper.make_graph(nodes, "g", inputs, outputs, list(inits))
    onnx.save_model(helper.make_model(g, opset_imports=[helper.make_opsetid("", 18)]), str(path))
    return path


def _not_onnx(tmp):
    p = tmp / "notes.onnx"
    p.write_text("hello\n" * 20)
    return [str(p)], "notes.onnx"


def _truncated(tmp):
    w = helper.make_tensor("w", TensorProto.FLOAT, [512], np.ones(512, np.float32))
    good = _save(tmp / "good.onnx", [helper.make_node("Relu", ["x"], ["y"], name="r")], [_vi("x", [4])],
                 [_vi("y", [4])], [w])
    bad = tmp / "truncated.onnx"
    bad.write_bytes(good.read_bytes()[:700])
    return [str(bad)], "truncated.onnx"


def _cycle(tmp):
    nodes = [helper.make_node("Add", ["x", "b"], ["a"], name="first"),
             helper.make_node("Relu", ["a"], ["b"], name="second")]
    return [str(_save(tmp / "cycle.onnx", nodes, [_vi("x", [2])], [_vi("b", [2])]))], "cycle"


def _dangling(tmp):
    nodes = [helper.make_node("Add", ["x", "ghost"], ["y"], name="adder")]
    return [str(_save(tmp / "dangling.onnx", nodes, [_vi("x", [2])], [_vi("y", [2])]))], "ghost"


def _unsupported(tmp):
    nodes = [helper.make_node("Hardmax", ["x"], ["y"], name="my_hardmax")]
    return [str(_save(tmp / "op.onnx", nodes, [_vi("x", [2, 3])], [_vi("y", [2, 3])]))], "Hardmax"


def _shape_mismatch(tmp):
    nodes = [helper.make_node("MatMul", ["x", "w"], ["y"], name="proj")]
    w = helper.make_tensor("w", TensorProto.FLOAT, [5, 7], np.zeros(35, np.float32))
    return [str(_save(tmp / "mm.onnx", nodes, [_vi("x", ["batch", 4])], [_vi("y", None)], [w]))], "proj"


def _missing_target(tmp):
    return ["llama-3.1-8b", "--target", "wse9"], "wse9"


def _bad_option(tmp):
    return ["llama-3.1-8b", "--context", "-5"], "--context"


def _not_a_number(tmp):
    # click's own usage errors are one line too (placer.cli.main._Group.main).
    return ["llama-3.1-8b", "--granularity", "atoms"], "--granularity"


def _bad_config(tmp):
    import json

    from placer.zoo import load_zoo_config

    config = dict(load_zoo_config("llama-3.1-8b"), hidden_size="big")
    p = tmp / "config.json"
    p.write_text(json.dumps(config))
    return [str(p)], "hidden_size"


CASES = {
    "not-onnx": _not_onnx, "truncated": _truncated, "cycle": _cycle, "dangling-input": _dangling,
    "unsupported-op": _unsupported, "shape-mismatch": _shape_mismatch, "missing-target": _missing_target,
    "bad-option": _bad_option, "bad-choice": _not_a_number, "bad-config-field": _bad_config,
}


@pytest.mark.parametrize("command", ["inspect", "compile"])
@pytest.mark.parametrize("case", sorted(CASES))
def test_bad_input_exits_2_with_one_line(tmp_path, case, command):
    args, needle = CASES[case](tmp_path)
    if command == "compile":
        args = [*args, "-o", str(tmp_path / "out")]
    r = subprocess.run([sys.executable, "-m", "placer", command, *args], capture_output=True, text=True,
                       timeout=120)
    assert r.returncode == 2, (r.returncode, r.stderr)
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1, r.stderr
    assert "Traceback" not in r.stderr and needle in lines[0], lines[0]
    assert not (tmp_path / "out").exists()  # nothing written half
