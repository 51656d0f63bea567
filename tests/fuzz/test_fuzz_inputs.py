"""Structure-aware fuzzing of what placer reads: ONNX protos, HF configs, target fields, pin files.

Each case mutates a *valid* input the way real files go wrong (a field of the wrong type, a
negative or huge or non-finite number, a dangling name, an unknown op or type, truncated or
flipped bytes) and runs it through the CLI in process; ``tests/fuzz/contract.py`` asserts the
exit-code contract. The hypothesis profile is derandomized (tests/conftest.py), so CI runs the
same cases every time.
"""

from __future__ import annotations

import copy
import json
import tempfile
from pathlib import Path

import numpy as np
import onnx
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from onnx import TensorProto, helper, numpy_helper

from tests.fuzz.contract import invoke

FUZZ = settings(max_examples=250, deadline=None, suppress_health_check=list(HealthCheck))

# -- ONNX ------------------------------------------------------------------------------------


def _tiny_onnx() -> onnx.ModelProto:
    """A decoder-ish graph: embedding gather, RMS-style norm, a projection, softmax, a head."""
    rng = np.random.default_rng(0)
    emb = numpy_helper.from_array(rng.standard_normal((16, 8)).astype(np.float32), "emb")
    w = numpy_helper.from_array(rng.standard_normal((8, 8)).astype(np.float32), "w")
    g = numpy_helper.from_array(np.full((8,), 1.5, np.float32), "gamma")
    head = numpy_helper.from_array(rng.standard_normal((8, 16)).astype(np.float32), "head")
    nodes = [
        helper.make_node("Gather", ["emb", "ids"], ["h"], name="embed"),
        helper.make_node("Mul", ["h", "h"], ["sq"], name="square"),
        helper.make_node("ReduceMean", ["sq"], ["ms"], name="mean", axes=[-1], keepdims=1),
        helper.make_node("Sqrt", ["ms"], ["rms"], name="sqrt"),
        helper.make_node("Div", ["h", "rms"], ["n"], name="div"),
        helper.make_node("Mul", ["n", "gamma"], ["ng"], name="scale"),
        helper.make_node("MatMul", ["ng", "w"], ["p"], name="proj"),
        helper.make_node("Softmax", ["p"], ["s"], name="softmax", axis=-1),
        helper.make_node("MatMul", ["s", "head"], ["logits"], name="lm_head"),
    ]
    ids = helper.make_tensor_value_info("ids", TensorProto.INT64, ["batch", "seq"])
    out = helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch", "seq", 16])
    graph = helper.make_graph(nodes, "tiny", [ids], [out], [emb, w, g, head])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


BASE = _tiny_onnx()
OPS = ["Relu", "MatMul", "Hardmax", "NoSuchOp", "Gather", "Softmax", "Add", "Reshape", "Constant", ""]


@st.composite
def onnx_mutation(draw: st.DrawFn) -> bytes:
    m = copy.deepcopy(BASE)
    g = m.graph
    for _ in range(draw(st.integers(1, 3))):
        kind = draw(st.sampled_from(["op", "input", "output", "dims", "dtype", "opset", "external",
                                     "drop", "attr", "graph_output", "bytes", "ir"]))
        node = g.node[draw(st.integers(0, len(g.node) - 1))]
        init = g.initializer[draw(st.integers(0, len(g.initializer) - 1))]
        if kind == "op":
            node.op_type = draw(st.sampled_from(OPS))
        elif kind == "input" and node.input:
            node.input[draw(st.integers(0, len(node.input) - 1))] = draw(st.sampled_from(
                ["ghost", "", "logits", "s", "ids", "emb"]))
        elif kind == "output":
            node.output[0] = draw(st.sampled_from(["h", "logits", "ids", "x", ""]))
        elif kind == "dims" and init.dims:
            init.dims[draw(st.integers(0, len(init.dims) - 1))] = draw(st.sampled_from([0, 1, 3, -1, 2**40]))
        elif kind == "dtype":
            init.data_type = draw(st.sampled_from([0, 2, 7, 9, 16, 99, 1000]))
        elif kind == "opset":
            m.opset_import[0].version = draw(st.sampled_from([0, 1, 7, 13, 999, -5]))
        elif kind == "external":
            init.ClearField("raw_data")
            init.data_location = TensorProto.EXTERNAL
            for key in draw(st.lists(st.sampled_from(["location", "offset", "length"]), max_size=3)):
                init.external_data.add(key=key, value=draw(st.sampled_from(
                    ["w.bin", "/etc/passwd", "../x.bin", "-4", "12", "1e9", "", "abc", str(2**62)])))
        elif kind == "drop":
            del g.node[draw(st.integers(0, len(g.node) - 1))]
        elif kind == "attr":
            node.attribute.append(helper.make_attribute(draw(st.sampled_from(["axis", "axes", "perm", "k"])),
                                                        draw(st.sampled_from([5, -9, [1, 2, 3], 2.5, "x"]))))
        elif kind == "graph_output":
            g.output[0].name = draw(st.sampled_from(["nothing", "h", "ids"]))
        elif kind == "ir":
            m.ir_version = draw(st.sampled_from([0, 1, 3, 100]))
    data = m.SerializeToString()
    if draw(st.booleans()) and draw(st.booleans()):
        cut = draw(st.integers(0, len(data)))
        if draw(st.booleans()):
            data = data[:cut]
        else:
            data = data[:cut] + bytes([data[cut] ^ 0xFF]) + data[cut + 1:] if cut < len(data) else data
    return data


@FUZZ
@given(onnx_mutation())
def test_mutated_onnx_inspect_and_compile(data: bytes) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "model.onnx"
        path.write_bytes(data)
        invoke(["inspect", str(path), "--json"])


# -- HF configs ------------------------------------------------------------------------------

TINY_CONFIG = {
    "model_type": "llama", "architectures": ["LlamaForCausalLM"], "hidden_size": 64,
    "intermediate_size": 128, "num_hidden_layers": 2, "num_attention_heads": 4,
    "num_key_value_heads": 2, "vocab_size": 256, "max_position_embeddings": 512,
    "rms_norm_eps": 1e-5, "tie_word_embeddings": False, "torch_dtype": "bfloat16", "head_dim": 16,
}
BAD_VALUES = [0, -1, 1, 3, 2**63, 1e308, 0.5, "64", None, True, [], {}, [64], "nan", "llama", 10**6]


@st.composite
def config_mutation(draw: st.DrawFn) -> str:
    cfg = dict(TINY_CONFIG)
    for _ in range(draw(st.integers(1, 3))):
        key = draw(st.sampled_from([*TINY_CONFIG, "sliding_window", "num_local_experts",
                                    "quantization_config", "rope_scaling", "layer_types"]))
        if draw(st.integers(0, 9)) == 0:
            cfg.pop(key, None)
        else:
            cfg[key] = draw(st.sampled_from(BAD_VALUES + ["mistral", "gpt2", "unknown_family"]))
    text = json.dumps(cfg)
    if draw(st.integers(0, 9)) == 0:
        text = text.replace("64", "NaN", 1)
    if draw(st.integers(0, 19)) == 0:
        text = text[: draw(st.integers(0, len(text)))]
    return text


@FUZZ
@given(config_mutation())
def test_mutated_config_inspect(text: str) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "config.json"
        path.write_text(text)
        invoke(["inspect", str(path), "--json"])


# -- target fields through --set, and pin files ----------------------------------------------

FIELDS = ["sram_bytes", "mesh_rows", "mesh_cols", "clock_hz", "io_bandwidth_bytes_per_s", "io_latency_s",
          "wafers", "default_reserve", "cycles_per_hop", "flops_per_cycle_per_pe", "external_kv_bytes",
          "link_bytes_per_cycle", "sram_bytes_per_pe", "no_such_field"]
VALUES = ["0", "-1", "1", "nan", "inf", "-inf", "1e30", "1e-30", "abc", "", "2.5", "3", "10000000"]


@FUZZ
@given(st.lists(st.tuples(st.sampled_from(FIELDS), st.sampled_from(VALUES)), min_size=1, max_size=3),
       st.lists(st.sampled_from(["--context", "--concurrency", "--prompt", "--reserve", "--wafers",
                                 "--max-wafers", "--min-tokens-per-s-per-user", "--time-limit"]), max_size=2),
       st.sampled_from(["0", "-3", "nan", "inf", "1e30", "0.5", "2", "x"]))
def test_target_fields_and_options_on_compile(sets: list[tuple[str, str]], options: list[str],
                                              value: str) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        config = Path(tmp) / "config.json"
        config.write_text(json.dumps(TINY_CONFIG))
        out = Path(tmp) / "out"
        args = ["compile", str(config), "--target", "wse-mini", "--time-limit", "0.2", "-o", str(out)]
        for field, v in sets:
            args += ["--set", f"{field}={v}"]
        for option in options:
            args += [option, value]
        invoke(args, out_dir=out)


PIN_LINES = ["layers.0=0", "layers.0-1=0", "layers.*=1", "embed=0", "head=99", "layers.5-2=0", "=0",
             "layers.0=-1", "layers.0=x", "# comment", "", "layers.0-100000000=0", "\u00e9=0",
             "a" * 300 + "=0"]


@FUZZ
@given(st.lists(st.sampled_from(PIN_LINES), min_size=1, max_size=4), st.booleans())
def test_pin_files(lines: list[str], bad_bytes: bool) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        config = Path(tmp) / "config.json"
        config.write_text(json.dumps(TINY_CONFIG))
        pins = Path(tmp) / "pins.txt"
        data = "\n".join(lines).encode()
        pins.write_bytes(data + (b"\xff\xfe" if bad_bytes else b""))
        out = Path(tmp) / "out"
        invoke(["compile", str(config), "--target", "wse-mini", "--max-wafers", "3", "--time-limit", "0.2",
                "--pin-file", str(pins), "-o", str(out)], out_dir=out)


def test_the_fuzz_strategies_generate_distinct_cases() -> None:
    """Guards against a strategy that silently collapses to a few cases."""
    seen: dict[str, set[object]] = {"onnx": set(), "config": set()}

    @settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
    @given(onnx_mutation(), config_mutation())
    def collect(onnx_bytes: bytes, config: str) -> None:
        seen["onnx"].add(onnx_bytes)
        seen["config"].add(config)

    collect()
    assert len(seen["onnx"]) > 20 and len(seen["config"]) > 20
