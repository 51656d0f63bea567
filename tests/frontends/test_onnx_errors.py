"""Bad ONNX inputs raise UserError with one line naming the file and the node or op."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

from placer.errors import UserError
from placer.frontends.onnx import from_onnx


def _save(tmp_path, nodes, inputs, outputs, inits=(), name="bad.onnx"):
    g = helper.make_graph(nodes, "g", inputs, outputs, list(inits))
    model = helper.make_model(g, opset_imports=[helper.make_opsetid("", 18)])
    path = tmp_path / name
    onnx.save_model(model, str(path))
    return path


def _vi(name, shape, dtype=TensorProto.FLOAT):
    return helper.make_tensor_value_info(name, dtype, shape)


def _error(path) -> str:
    with pytest.raises(UserError) as info:
        from_onnx(path)
    message = str(info.value)
    assert "\n" not in message
    assert str(path) in message
    return message


def test_not_an_onnx_file(tmp_path):
    path = tmp_path / "notes.onnx"
    path.write_text("this is not a model\n" * 10)
    assert "ONNX" in _error(path)


def test_missing_file(tmp_path):
    assert "no such" in _error(tmp_path / "absent.onnx")


def test_truncated_file(tmp_path):
    good = _save(tmp_path, [helper.make_node("Relu", ["x"], ["y"], name="r")], [_vi("x", [4])],
                 [_vi("y", [4])], [helper.make_tensor("w", TensorProto.FLOAT, [256],
                                                      np.ones(256, np.float32))])
    data = good.read_bytes()
    bad = tmp_path / "truncated.onnx"
    bad.write_bytes(data[: len(data) // 2])
    assert "truncated" in _error(bad)


def test_unsupported_op_names_op_and_node(tmp_path):
    path = _save(tmp_path, [helper.make_node("Hardmax", ["x"], ["y"], name="my_hardmax")],
                 [_vi("x", [2, 3])], [_vi("y", [2, 3])])
    message = _error(path)
    assert "Hardmax" in message and "my_hardmax" in message


def test_custom_domain_is_unsupported(tmp_path):
    node = helper.make_node("FusedThing", ["x"], ["y"], name="fused", domain="com.example")
    g = helper.make_graph([node], "g", [_vi("x", [2])], [_vi("y", [2])])
    model = helper.make_model(g, opset_imports=[helper.make_opsetid("", 18),
                                                helper.make_opsetid("com.example", 1)])
    path = tmp_path / "custom.onnx"
    onnx.save_model(model, str(path))
    assert "com.example.FusedThing" in _error(path)


def test_cycle(tmp_path):
    nodes = [helper.make_node("Add", ["x", "b"], ["a"], name="first"),
             helper.make_node("Relu", ["a"], ["b"], name="second")]
    message = _error(_save(tmp_path, nodes, [_vi("x", [2])], [_vi("b", [2])]))
    assert "cycle" in message and ("first" in message or "second" in message)


def test_dangling_input(tmp_path):
    nodes = [helper.make_node("Add", ["x", "ghost"], ["y"], name="adder")]
    message = _error(_save(tmp_path, nodes, [_vi("x", [2])], [_vi("y", [2])]))
    assert "ghost" in message and "adder" in message and "dangling" in message


def test_matmul_shape_mismatch(tmp_path):
    nodes = [helper.make_node("MatMul", ["x", "w"], ["y"], name="proj")]
    w = helper.make_tensor("w", TensorProto.FLOAT, [5, 7], np.zeros(35, np.float32))
    message = _error(_save(tmp_path, nodes, [_vi("x", ["batch", 4])], [_vi("y", None)], [w]))
    assert "proj" in message and "inner dims" in message and "4 != 5" in message


def test_broadcast_mismatch(tmp_path):
    nodes = [helper.make_node("Add", ["x", "z"], ["y"], name="adder")]
    message = _error(_save(tmp_path, nodes, [_vi("x", ["seq", 3]), _vi("z", ["seq", 4])],
                           [_vi("y", None)]))
    assert "adder" in message and "broadcast" in message


def test_unsupported_element_type(tmp_path):
    nodes = [helper.make_node("Identity", ["x"], ["y"], name="id")]
    message = _error(_save(tmp_path, nodes, [_vi("x", [2], TensorProto.STRING)],
                           [_vi("y", [2], TensorProto.STRING)]))
    assert "STRING" in message and "'x'" in message
