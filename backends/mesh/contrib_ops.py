"""Mesh kernels of onnxruntime's contrib ops, merged into ``ops.MESH_KERNELS``.

* MatMulNBits: at accuracy level 4 each PE rounds its block of A to int8 (as onnxruntime);
  every PE dequantizes its tile of the packed weight in place (2 FLOPs per
  element: subtract the zero point, multiply by the block scale; the block of K a PE holds
  shares its scales), then the GEMV (one row) or Cannon (several rows) of ``ops.matmul_array``.
* GatherBlockQuantized: the selected packed rows travel like an embedding gather's rows
  (at most (R - 1) + (C - 1) hops each) and are dequantized where they land.
* GroupQueryAttention / MultiHeadAttention: the operands of ``kernels.contrib_nn`` (rotary
  local to each head's PEs), then the mesh attention of ``ops.attend``: GEMVs per KV head
  group over the KV cache, the softmax's max all-reduce, its sums beside P @ V.
* RotaryEmbedding: local, like the opset-23 op; the GELU forms: elementwise.
"""

from __future__ import annotations

import numpy as np

from placer.backends.kernels import KERNELS
from placer.backends.kernels.contrib_nn import gqa_operands, mha_operands
from placer.backends.kernels.contrib_quant import matmul_nbits_weight, quantize_activations
from placer.backends.mesh.grid import Wafer
from placer.backends.mesh.ops import MeshKernel, attend, elementwise, matmul_array
from placer.backends.mesh.tiling import per_pe_bytes
from placer.ir.attrs import (
    AttentionAttrs,
    GatherBlockQuantizedAttrs,
    GroupQueryAttentionAttrs,
    MatMulNBitsAttrs,
)
from placer.ir.graph import Node
from placer.ir.ops import CONTRIB_ACTIVATIONS, OpKind


def matmul_nbits(wafer: Wafer, node: Node, args: list) -> tuple:
    a, b, scales = args[0], args[1], args[2]
    zp = args[3] if len(args) > 3 else None
    bias = args[5] if len(args) > 5 else None
    if len(args) > 4 and args[4] is not None:
        raise ValueError("MatMulNBits with g_idx (act-order) is not supported")
    at = node.attrs_as(MatMulNBitsAttrs)
    w = matmul_nbits_weight(node, b, scales, zp)
    wafer.compute(2 * per_pe_bytes(at.k * at.n, 1, wafer.spec.pes))
    y = matmul_array(wafer, quantize_activations(node, a), w)
    if bias is not None:
        y = y + bias
        wafer.compute(per_pe_bytes(y.size, 1, wafer.spec.pes))
    return (np.asarray(y).astype(a.dtype),)


def gather_block_quantized(wafer: Wafer, node: Node, args: list) -> tuple:
    out = KERNELS[OpKind.GATHER_BLOCK_QUANTIZED](node, *args)
    rows = int(np.asarray(args[1]).size)
    if rows:
        table = np.asarray(args[0])
        axis = node.attrs_as(GatherBlockQuantizedAttrs).gather_axis
        row_bytes = -(-table.nbytes // max(table.shape[axis], 1))
        dist = wafer.spec.rows + wafer.spec.cols - 2
        wafer.charge(rows * dist, rows * dist * row_bytes, wafer.transfer_cycles(dist, row_bytes))
        wafer.compute(2 * per_pe_bytes(out.size, 1, wafer.spec.pes))
    return (out,)


def _attend(wafer: Wafer, anode: Node, qs: np.ndarray, ks: np.ndarray, v: np.ndarray, bias: np.ndarray,
            dtype: np.dtype, sinks: np.ndarray | None = None) -> np.ndarray:
    groups = anode.attrs_as(AttentionAttrs).kv_num_heads or qs.shape[1]
    return attend(wafer, anode, qs, ks, v, bias, groups, True, dtype, sinks)[0]


def group_query_attention(wafer: Wafer, node: Node, args: list) -> tuple:
    anode, qs, ks, v, bias, pk, pv, sinks = gqa_operands(node, *args)
    if node.attrs_as(GroupQueryAttentionAttrs).do_rotary:
        wafer.compute(6 * per_pe_bytes(qs.size + ks.size, 1, wafer.spec.pes))
    return _attend(wafer, anode, qs, ks, v, bias, args[0].dtype, sinks), pk, pv


def multi_head_attention(wafer: Wafer, node: Node, args: list) -> tuple:
    anode, qs, ks, v, bias, pk, pv = mha_operands(node, *args)
    return _attend(wafer, anode, qs, ks, v, bias, args[0].dtype), pk, pv


def ms_rotary(wafer: Wafer, node: Node, args: list) -> tuple:
    out = KERNELS[OpKind.MS_ROTARY_EMBEDDING](node, *args)
    wafer.compute(6 * per_pe_bytes(out.size, 1, wafer.spec.pes))
    return (out,)


CONTRIB_MESH_KERNELS: dict[OpKind, MeshKernel] = {
    OpKind.MATMUL_NBITS: matmul_nbits,
    OpKind.GATHER_BLOCK_QUANTIZED: gather_block_quantized,
    OpKind.GROUP_QUERY_ATTENTION: group_query_attention,
    OpKind.MULTI_HEAD_ATTENTION: multi_head_attention,
    OpKind.MS_ROTARY_EMBEDDING: ms_rotary,
    **{k: elementwise for k in CONTRIB_ACTIVATIONS},
}
