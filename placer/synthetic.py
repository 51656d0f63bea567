"""Synthetic ONNX decoders of any size, written with ``onnx.helper`` (no torch, no weights).

``write_llama_like_onnx`` writes a graph shaped like a Llama decoder: embedding Gather; per
layer RMSNorm (as Pow/ReduceMean/Add/Sqrt/Reciprocal/Mul), q/k/v/o MatMuls, rotary embedding
(rotate-half form), grouped-query attention with Softmax and a causal mask, SwiGLU MLP; final
norm and LM head. Batch and sequence are symbolic (``batch``, ``seq``). Weights are external
data references into one file, which is sparse (``truncate``) so that a 405B-parameter model
occupies no disk, or not written at all.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

_DTYPES = {"bf16": "BFLOAT16", "f16": "FLOAT16", "f32": "FLOAT", "fp8": "FLOAT8E4M3FN"}
_ITEMSIZE = {"bf16": 2, "f16": 2, "f32": 4, "fp8": 1}


def write_llama_like_onnx(path: str | os.PathLike[str], *, layers: int, hidden: int, heads: int,
                          kv_heads: int, head_dim: int, ffn: int, vocab: int, tied: bool = False,
                          dtype: str = "bf16", sparse_external: bool = True,
                          rope_theta: float = 500000.0, eps: float = 1e-5) -> Path:
    """Write the model to ``path``; its weights reference ``<path>.data``.

    Args:
        tied: the LM head reuses the embedding table (transposed) instead of its own weight.
        dtype: weight and activation type: ``bf16``, ``f16``, ``f32`` or ``fp8`` (weights only;
            activations are then bf16).
        sparse_external: create the data file as a sparse file of the exact size; otherwise
            the references point to a file that does not exist.

    Returns:
        The path written.
    """
    import onnx
    from onnx import TensorProto, helper

    if dtype not in _DTYPES:
        raise ValueError(f"dtype must be one of {sorted(_DTYPES)}, got {dtype!r}")
    if heads % kv_heads:
        raise ValueError(f"heads ({heads}) must be a multiple of kv_heads ({kv_heads})")
    path = Path(path)
    data_name = path.name + ".data"
    wtype = getattr(TensorProto, _DTYPES[dtype])
    atype = TensorProto.BFLOAT16 if dtype == "fp8" else wtype
    itemsize = _ITEMSIZE[dtype]
    nodes: list[onnx.NodeProto] = []
    inits: list[onnx.TensorProto] = []
    offset = 0
    counter = [0]

    def name(hint: str) -> str:
        counter[0] += 1
        return f"{hint}_{counter[0]}"

    def weight(wname: str, dims: list[int]) -> str:
        nonlocal offset
        tensor = TensorProto(name=wname, data_type=wtype, dims=dims)
        tensor.data_location = TensorProto.EXTERNAL
        length = int(np.prod(dims)) * itemsize
        for k, v in (("location", data_name), ("offset", str(offset)), ("length", str(length))):
            entry = tensor.external_data.add()
            entry.key, entry.value = k, v
        offset += length
        inits.append(tensor)
        return wname

    def const(values: float | list | np.ndarray, dt: int = TensorProto.INT64,
              dims: list[int] | None = None) -> str:
        cname = name("const")
        arr = np.asarray(values)
        inits.append(helper.make_tensor(cname, dt, list(arr.shape) if dims is None else dims,
                                        arr.flatten().tolist()))
        return cname

    def op(kind: str, inputs: list[str], nout: int = 1, **attrs: Any) -> list[str]:
        outs = [name(kind.lower()) for _ in range(nout)]
        nodes.append(helper.make_node(kind, inputs, outs, name=name("n_" + kind), **attrs))
        return outs

    def op1(kind: str, inputs: list[str], **attrs: Any) -> str:
        return op(kind, inputs, **attrs)[0]

    eps_c = const([eps], atype, [])
    axes_last = const([-1])

    def rms_norm(x: str, wname: str) -> str:
        w = weight(wname, [hidden])
        two = const([2.0], atype, [])
        mean = op1("ReduceMean", [op1("Pow", [x, two]), axes_last], keepdims=1)
        inv = op1("Reciprocal", [op1("Sqrt", [op1("Add", [mean, eps_c])])])
        return op1("Mul", [op1("Mul", [x, inv]), w])

    # Embedding and position tables.
    embed = weight("model.embed_tokens.weight", [vocab, hidden])
    h = op1("Gather", [embed, "input_ids"], axis=0)
    seq = op1("Gather", [op1("Shape", ["input_ids"]), const(1, dims=[])], axis=0)
    positions = op1("Cast", [op1("Range", [const(0, dims=[]), seq, const(1, dims=[])])],
                    to=TensorProto.FLOAT)
    inv_freq = 1.0 / (rope_theta ** (np.arange(0, head_dim, 2, dtype=np.float64) / head_dim))
    freq_c = const(inv_freq.astype(np.float32).reshape(1, -1), TensorProto.FLOAT)
    freqs = op1("MatMul", [op1("Unsqueeze", [positions, axes_last]), freq_c])
    angles = op1("Concat", [freqs, freqs], axis=-1)
    cos = op1("Cast", [op1("Cos", [angles])], to=atype)
    sin = op1("Cast", [op1("Sin", [angles])], to=atype)
    square = op1("Concat", [op1("Unsqueeze", [seq, const([0])]),
                            op1("Unsqueeze", [seq, const([0])])], axis=0)
    mask = op1("Trilu", [op1("ConstantOfShape", [square], value=helper.make_tensor(
        "v", atype, [1], [-1e4])), const(1, dims=[])], upper=1)
    scale = const([head_dim ** -0.5], atype, [])
    half = head_dim // 2
    rep = heads // kv_heads

    def rotary(x: str) -> str:
        x1 = op1("Slice", [x, const([0]), const([half]), axes_last])
        x2 = op1("Slice", [x, const([half]), const([head_dim]), axes_last])
        rotated = op1("Concat", [op1("Neg", [x2]), x1], axis=-1)
        return op1("Add", [op1("Mul", [x, cos]), op1("Mul", [rotated, sin])])

    def heads_first(x: str, n: int) -> str:
        return op1("Transpose", [op1("Reshape", [x, const([0, 0, n, head_dim])])], perm=[0, 2, 1, 3])

    def repeat_kv(x: str) -> str:
        if rep == 1:
            return x
        grown = op1("Expand", [op1("Unsqueeze", [x, const([2])]), const([1, 1, rep, 1, 1])])
        return op1("Reshape", [grown, const([0, heads, -1, head_dim])])

    def project(x: str, module: str, n_in: int, n_out: int) -> str:
        return op1("MatMul", [x, weight(f"{module}.weight", [n_in, n_out])])

    for i in range(layers):
        p = f"model.layers.{i}"
        x = rms_norm(h, f"{p}.input_layernorm.weight")
        q = rotary(heads_first(project(x, f"{p}.self_attn.q_proj", hidden, heads * head_dim), heads))
        k = rotary(heads_first(project(x, f"{p}.self_attn.k_proj", hidden, kv_heads * head_dim), kv_heads))
        v = heads_first(project(x, f"{p}.self_attn.v_proj", hidden, kv_heads * head_dim), kv_heads)
        scores = op1("Mul", [op1("MatMul", [q, op1("Transpose", [repeat_kv(k)], perm=[0, 1, 3, 2])]), scale])
        probs = op1("Softmax", [op1("Add", [scores, mask])], axis=-1)
        ctx = op1("Transpose", [op1("MatMul", [probs, repeat_kv(v)])], perm=[0, 2, 1, 3])
        ctx = op1("Reshape", [ctx, const([0, 0, heads * head_dim])])
        h = op1("Add", [h, project(ctx, f"{p}.self_attn.o_proj", heads * head_dim, hidden)])
        x = rms_norm(h, f"{p}.post_attention_layernorm.weight")
        gate = op1("MatMul", [x, weight(f"{p}.mlp.gate_proj.weight", [hidden, ffn])])
        up = op1("MatMul", [x, weight(f"{p}.mlp.up_proj.weight", [hidden, ffn])])
        act = op1("Mul", [op1("Mul", [gate, op1("Sigmoid", [gate])]), up])
        h = op1("Add", [h, op1("MatMul", [act, weight(f"{p}.mlp.down_proj.weight", [ffn, hidden])])])
    x = rms_norm(h, "model.norm.weight")
    head = op1("Transpose", [embed], perm=[1, 0]) if tied else weight("lm_head.weight", [hidden, vocab])
    nodes.append(helper.make_node("MatMul", [x, head], ["logits"], name="n_lm_head"))
    graph = helper.make_graph(
        nodes, "llama_like",
        [helper.make_tensor_value_info("input_ids", TensorProto.INT64, ["batch", "seq"])],
        [helper.make_tensor_value_info("logits", atype, ["batch", "seq", vocab])],
        initializer=inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)],
                              producer_name="placer.synthetic", ir_version=10)
    path.parent.mkdir(parents=True, exist_ok=True)
    onnx.save_model(model, str(path))
    if sparse_external:
        with open(path.parent / data_name, "wb") as f:
            f.truncate(offset)
    return path
