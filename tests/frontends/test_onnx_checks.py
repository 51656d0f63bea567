"""Malformed ONNX metadata is refused with one line naming the tensor and field (never planned)."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from placer.errors import UserError
from placer.frontends.onnx import from_onnx


def _model(external: bool) -> onnx.ModelProto:
    w = numpy_helper.from_array(np.ones((8, 4), np.float32), "w")
    if external:
        w.ClearField("raw_data")
        w.data_location = TensorProto.EXTERNAL
        for k, v in (("location", "w.bin"), ("offset", "0"), ("length", str(8 * 4 * 4))):
            w.external_data.add(key=k, value=v)
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 8])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 4])
    graph = helper.make_graph([helper.make_node("MatMul", ["x", "w"], ["y"], name="mm")], "g", [x], [y], [w])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def _external(key: str, value: str) -> Callable[[onnx.ModelProto], None]:
    def mutate(m: onnx.ModelProto) -> None:
        for e in m.graph.initializer[0].external_data:
            if e.key == key:
                e.value = value
    return mutate


def _opset(version: int) -> Callable[[onnx.ModelProto], None]:
    def mutate(m: onnx.ModelProto) -> None:
        m.opset_import[0].version = version
    return mutate


def _dims(m: onnx.ModelProto) -> None:
    m.graph.initializer[0].dims[0] = 9


def _dangling_output(m: onnx.ModelProto) -> None:
    m.graph.output.append(helper.make_tensor_value_info("z", TensorProto.FLOAT, [1]))


def _bad_type(m: onnx.ModelProto) -> None:
    m.graph.initializer[0].data_type = 99


CASES = [
    (False, _dims, "raw data is 128 B but dims \\[9, 4\\] need 144 B"),
    (False, _opset(999), "opset 999 is newer"),
    (False, _opset(0), "opsets start at 1"),
    (False, _dangling_output, "graph output 'z' is produced by no node"),
    (False, _bad_type, "element type 99 is not an ONNX type"),
    (True, _external("length", "-128"), "length '-128' is not a non-negative integer"),
    (True, _external("offset", "-1"), "offset '-1' is not a non-negative integer"),
    (True, _external("length", "64"), "length 64 B differs from the 128 B"),
    (True, _external("location", "/etc/passwd"), "is absolute"),
    (True, _external("location", "../w.bin"), "leaves the model's folder"),
    (True, _external("location", ""), "has no 'location'"),
]


@pytest.mark.parametrize("external, mutate, message", CASES)
def test_malformed_metadata_is_a_user_error(tmp_path: Path, external: bool,
                                            mutate: Callable[[onnx.ModelProto], None], message: str) -> None:
    m = _model(external)
    mutate(m)
    path = tmp_path / "m.onnx"
    onnx.save(m, path)
    with pytest.raises(UserError, match=message) as info:
        from_onnx(path)
    assert str(path) in str(info.value) and "\n" not in str(info.value)


def test_symlink_out_of_the_folder_is_refused(tmp_path: Path) -> None:
    inside = tmp_path / "model"
    inside.mkdir()
    (tmp_path / "secret.bin").write_bytes(b"\0" * 128)
    os.symlink(tmp_path / "secret.bin", inside / "w.bin")
    onnx.save(_model(True), inside / "m.onnx")
    with pytest.raises(UserError, match="through a symlink"):
        from_onnx(inside / "m.onnx")


def test_clean_models_pass(tmp_path: Path) -> None:
    for external in (False, True):
        onnx.save(_model(external), tmp_path / "m.onnx")
        graph = from_onnx(tmp_path / "m.onnx")
        assert sum(w.nbytes for w in graph.weights.values()) == 128


def test_negative_length_through_the_binary_exits_2(tmp_path: Path) -> None:
    m = _model(True)
    _external("length", "-100000000000")(m)
    onnx.save(m, tmp_path / "m.onnx")
    run = subprocess.run([sys.executable, "-m", "placer", "compile", str(tmp_path / "m.onnx"), "-o",
                          str(tmp_path / "out")], capture_output=True, text=True)
    assert run.returncode == 2, run.stderr
    assert len(run.stderr.strip().splitlines()) == 1 and "Traceback" not in run.stderr
    assert not (tmp_path / "out").exists()


def _duplicate_opset(m: onnx.ModelProto) -> None:
    m.opset_import.append(helper.make_opsetid("ai.onnx", 18))


def _duplicate_initializer(m: onnx.ModelProto) -> None:
    m.graph.initializer.append(numpy_helper.from_array(np.zeros((8, 4), np.float32), "w"))


@pytest.mark.parametrize("mutate, message", [
    (_duplicate_opset, "opset of domain 'ai.onnx' is imported twice"),
    (_duplicate_initializer, "initializer 'w' is defined twice"),
])
def test_duplicate_opsets_and_initializers_are_refused(tmp_path: Path,
                                                       mutate: Callable[[onnx.ModelProto], None],
                                                       message: str) -> None:
    m = _model(False)
    mutate(m)
    onnx.save(m, tmp_path / "m.onnx")
    with pytest.raises(UserError, match=message):
        from_onnx(tmp_path / "m.onnx")


@pytest.mark.parametrize("data, offset, message", [
    (b"\0" * 64, "0", "ends at byte 128 \\(offset 0 \\+ length 128\\) but 'w.bin' holds 64 B"),
    (b"\0" * 128, "8", "ends at byte 136 .* 'w.bin' holds 128 B"),
    (None, str(2**63), "is past any file's end"),
])
def test_external_data_past_the_end_of_its_file_is_refused(tmp_path: Path, data: bytes | None, offset: str,
                                                           message: str) -> None:
    m = _model(True)
    _external("offset", offset)(m)
    onnx.save(m, tmp_path / "m.onnx")
    if data is not None:
        (tmp_path / "w.bin").write_bytes(data)
    with pytest.raises(UserError, match=message) as info:
        from_onnx(tmp_path / "m.onnx")
    assert "initializer 'w'" in str(info.value)


def test_references_to_absent_files_inspect_but_a_partial_copy_does_not(tmp_path: Path) -> None:
    # every file absent: an export of references only (placer export --weights none), planned from metadata
    m = _model(True)
    onnx.save(m, tmp_path / "m.onnx")
    assert from_onnx(tmp_path / "m.onnx").weights["w"].nbytes == 128
    # one file present and another absent: a broken copy, named with its initializer
    b = numpy_helper.from_array(np.ones((4,), np.float32), "b")
    b.ClearField("raw_data")
    b.data_location = TensorProto.EXTERNAL
    for k, v in (("location", "b.bin"), ("offset", "0"), ("length", "16")):
        b.external_data.add(key=k, value=v)
    m.graph.initializer.append(b)
    onnx.save(m, tmp_path / "m.onnx")
    (tmp_path / "b.bin").write_bytes(b"\0" * 16)
    with pytest.raises(UserError, match="w.bin: external data file of initializer 'w' is missing while"):
        from_onnx(tmp_path / "m.onnx")


def test_a_short_weight_file_through_the_binary_exits_2(tmp_path: Path) -> None:
    onnx.save(_model(True), tmp_path / "m.onnx")
    (tmp_path / "w.bin").write_bytes(b"\0" * 64)
    run = subprocess.run([sys.executable, "-m", "placer", "inspect", str(tmp_path / "m.onnx")],
                         capture_output=True, text=True)
    assert run.returncode == 2, run.stderr
    lines = run.stderr.strip().splitlines()
    assert len(lines) == 1 and "initializer 'w'" in lines[0] and "'w.bin' holds 64 B" in lines[0]


def test_run_of_weights_as_references_names_the_absent_file(tmp_path: Path,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    import placer
    from tests.fuzz.contract import invoke

    onnx.save(_model(True), tmp_path / "m.onnx")
    (tmp_path / "plan.json").write_text(placer.compile(str(tmp_path / "m.onnx"), target="wse-mini",
                                                       time_limit=0.2).to_json())
    np.savez(tmp_path / "x.npz", x=np.ones((1, 8), np.float32))
    monkeypatch.chdir(tmp_path)
    result = invoke(["run", "m.onnx", "--plan", "plan.json", "--inputs", "x.npz"], allowed={2})
    assert "w.bin: no such file; placer run needs the weights of initializer 'w'" in result.stderr


def _with_input_dims(dims: list[int]) -> Callable[[onnx.ModelProto], None]:
    def mutate(m: onnx.ModelProto) -> None:
        shape = m.graph.input[0].type.tensor_type.shape
        del shape.dim[:]
        for d in dims:
            shape.dim.add().dim_value = d
    return mutate


def _node(op: str, inputs: list[str], **attrs: object) -> Callable[[onnx.ModelProto], None]:
    def mutate(m: onnx.ModelProto) -> None:
        m.graph.node[0].CopyFrom(helper.make_node(op, inputs, ["y"], name="mm", **attrs))
    return mutate


def _both_data(m: onnx.ModelProto) -> None:
    m.graph.initializer[0].float_data.extend([1.0] * 32)


def _output_type(m: onnx.ModelProto) -> None:
    m.graph.output[0].type.tensor_type.elem_type = 999


def _shadowing_input(m: onnx.ModelProto) -> None:
    m.graph.input.append(helper.make_tensor_value_info("w", TensorProto.FLOAT, [3, 3]))


# Held-out corpus (issue 13): a negative or 2^62 input dim was a ValueError / CP-SAT traceback; the
# others were exit 0 (an Add of three inputs, an attribute MatMul does not have, raw and typed data
# at once, output element type 999, an input that shadows an initializer with other dims).
@pytest.mark.parametrize("mutate, message", [
    (_with_input_dims([-5, 8]), "graph input 'x': dims [-5, 8] contain a negative size"),
    (_with_input_dims([2**62, 8]), "dim 4,611,686,018,427,387,904 is past placer's cap of 2,147,483,647"),
    (_with_input_dims([2] * 80), "past placer's cap of 1,099,511,627,776 (onnx_checks.MAX_ELEMENTS)"),
    (_node("Add", ["x", "x", "x"]), "node 'mm' (Add) has 3 inputs; Add takes 2 to 2 at opset 17"),
    (_node("MatMul", ["x", "w"], transB=1), "node 'mm' (MatMul) has attribute 'transB'"),
    (_both_data, "initializer 'w': holds both raw_data and float_data"),
    (_output_type, "graph output 'y': element type 999 is not an ONNX type"),
    (_shadowing_input, "graph input 'w' shares initializer 'w''s name but not its type and dims ([8, 4])"),
])
def test_graph_values_and_node_schemas_are_checked(tmp_path: Path, mutate: Callable[[onnx.ModelProto], None],
                                                   message: str) -> None:
    m = _model(external=False)
    mutate(m)
    onnx.save(m, tmp_path / "m.onnx")
    run = subprocess.run([sys.executable, "-m", "placer", "inspect", "m.onnx"], cwd=tmp_path,
                         capture_output=True, text=True, timeout=120)
    lines = run.stderr.strip().splitlines()
    assert run.returncode == 2 and len(lines) == 1 and message in lines[0], run.stderr


@pytest.mark.parametrize("make", ["folder", "loop"])
def test_external_data_that_is_not_a_regular_file_is_refused(tmp_path: Path, make: str) -> None:
    """A location naming a folder or a symlink loop was taken for an absent file (exit 0)."""
    onnx.save(_model(external=True), tmp_path / "m.onnx")
    if make == "folder":
        (tmp_path / "w.bin").mkdir()
    else:
        os.symlink(tmp_path / "w.bin", tmp_path / "w.bin")
    with pytest.raises(UserError, match="initializer 'w' (is not a regular file|cannot be read)"):
        from_onnx(str(tmp_path / "m.onnx"))
