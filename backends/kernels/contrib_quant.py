"""Block-quantized onnxruntime ops: MatMulNBits and GatherBlockQuantized (``com.microsoft``).

Packed weights arrive as stored in the ONNX file (bytes, low bits first). One dequantization
routine serves both ops, the reference kernels and the mesh kernels:
``w = (q - zero_point) * scale`` per block of ``block_size`` elements along the quantized axis;
a missing zero point is ``2 ** (bits - 1)`` for uint8 bytes and 0 for ONNX INT4/UINT4 elements
(onnxruntime's convention).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from placer.ir.attrs import GatherBlockQuantizedAttrs, MatMulNBitsAttrs
from placer.ir.graph import Node
from placer.ir.ops import OpKind


def unpack_bits(packed: np.ndarray, bits: int, count: int) -> np.ndarray:
    """The first ``count`` unsigned ``bits``-bit values of each row of bytes ``packed`` [rows, n]."""
    packed = np.ascontiguousarray(packed).astype(np.uint8, copy=False)
    if bits == 8:
        return packed[:, :count]
    if bits != 4:
        raise ValueError(f"{bits}-bit weights are not supported (4 or 8)")
    out = np.empty((packed.shape[0], packed.shape[1] * 2), np.uint8)
    out[:, 0::2] = packed & 0x0F
    out[:, 1::2] = packed >> 4
    return out[:, :count]


def dequantize_rows(values: np.ndarray, scales: np.ndarray, zero_points: np.ndarray | None, *,
                    block_size: int, cols: int) -> np.ndarray:
    """``(values - zero_points) * scales`` per block along each row, cut to ``cols`` columns.

    Args:
        values: [rows, >= cols] quantized values (unpacked integers).
        scales: [rows, blocks] scales.
        zero_points: [rows, blocks] zero points (unpacked), or None for 0.
    """
    rows, blocks = scales.shape
    width = blocks * block_size
    v = np.asarray(values, np.float32)[:, :width]
    if v.shape[1] < width:
        v = np.pad(v, ((0, 0), (0, width - v.shape[1])))
    v = v.reshape(rows, blocks, block_size)
    if zero_points is not None:
        v = v - np.asarray(zero_points, np.float32)[:, :, None]
    return (v * np.asarray(scales, np.float32)[:, :, None]).reshape(rows, width)[:, :cols]


def _zero_points(zp: np.ndarray | None, bits: int, rows: int, blocks: int, default: float) -> np.ndarray:
    if zp is None:
        return np.full((rows, blocks), default, np.float32)
    z = np.asarray(zp)
    if z.dtype.kind == "f":
        return z.reshape(rows, blocks).astype(np.float32)
    return unpack_bits(z.reshape(rows, -1), bits, blocks).astype(np.float32)


def matmul_nbits_weight(node: Node, b: np.ndarray, scales: np.ndarray,
                        zero_points: np.ndarray | None) -> np.ndarray:
    """The dequantized [K, N] float32 weight of a MatMulNBits node (B stored as [N, blocks, bytes])."""
    at = node.attrs_as(MatMulNBitsAttrs)
    blocks = -(-at.k // at.block_size)
    q = unpack_bits(np.asarray(b).reshape(at.n, -1), at.bits, blocks * at.block_size)
    zp = _zero_points(zero_points, at.bits, at.n, blocks, 2 ** (at.bits - 1))
    return dequantize_rows(q, np.asarray(scales).reshape(at.n, blocks), zp,
                           block_size=at.block_size, cols=at.k).T


def quantize_activations(node: Node, a: np.ndarray) -> np.ndarray:
    """``A`` as MatMulNBits computes with it: at ``accuracy_level`` 4 (int8), each block of
    ``block_size`` values along K is rounded to int8 with scale ``max|a| / 127`` (round half to
    even), as onnxruntime's CPU kernel does; unchanged at the float levels."""
    at = node.attrs_as(MatMulNBitsAttrs)
    if at.accuracy_level != 4:
        return a.astype(np.float32)
    k, block = a.shape[-1], at.block_size
    blocks = -(-k // block)
    flat = np.pad(a.astype(np.float32).reshape(-1, k), ((0, 0), (0, blocks * block - k)))
    flat = flat.reshape(-1, blocks, block)
    scale = np.abs(flat).max(axis=2, keepdims=True) / np.float32(127)
    inv = np.where(scale > 0, np.float32(1) / np.where(scale > 0, scale, 1), 0).astype(np.float32)
    q = np.clip(np.rint(flat * inv), -127, 127)
    return (q * scale).reshape(-1, blocks * block)[:, :k].reshape(a.shape).astype(np.float32)


def matmul_nbits(node: Node, a: np.ndarray, b: np.ndarray, scales: np.ndarray,
                 zero_points: np.ndarray | None = None, g_idx: np.ndarray | None = None,
                 bias: np.ndarray | None = None) -> np.ndarray:
    if g_idx is not None:
        raise ValueError("MatMulNBits with g_idx (act-order) is not supported")
    y = np.matmul(quantize_activations(node, a), matmul_nbits_weight(node, b, scales, zero_points))
    if bias is not None:
        y = y + bias
    return y.astype(a.dtype)


def gather_block_quantized_table(node: Node, data: np.ndarray, scales: np.ndarray,
                                 zero_points: np.ndarray | None) -> np.ndarray:
    """The dequantized table (float, the scales' type), quantized axis in its place."""
    at = node.attrs_as(GatherBlockQuantizedAttrs)
    scales = np.asarray(scales)
    qa = at.quantize_axis % scales.ndim
    s = np.moveaxis(scales, qa, -1)
    rows, blocks = int(np.prod(s.shape[:-1], dtype=np.int64)), s.shape[-1]
    d = np.asarray(data)
    if at.packed:  # uint8 bytes along the last axis (onnxruntime requires it to be quantized)
        cols = d.shape[-1] * 8 // at.bits
        q = unpack_bits(d.reshape(rows, -1), at.bits, cols).astype(np.int16)
        zp = _zero_points(zero_points, at.bits, rows, blocks, 2 ** (at.bits - 1))
    else:  # one INT4/UINT4 element per value
        dm = np.moveaxis(d, qa, -1)
        cols = dm.shape[-1]
        q = dm.reshape(rows, cols).astype(np.int16)
        zp = np.zeros((rows, blocks), np.float32) if zero_points is None else \
            np.moveaxis(np.asarray(zero_points), qa, -1).reshape(rows, blocks).astype(np.float32)
    w = dequantize_rows(q, s.reshape(rows, blocks), zp, block_size=at.block_size, cols=cols)
    return np.moveaxis(w.reshape(s.shape[:-1] + (cols,)), -1, qa).astype(scales.dtype)


def gather_block_quantized(node: Node, data: np.ndarray, indices: np.ndarray, scales: np.ndarray,
                           zero_points: np.ndarray | None = None) -> np.ndarray:
    table = gather_block_quantized_table(node, data, scales, zero_points)
    axis = node.attrs_as(GatherBlockQuantizedAttrs).gather_axis
    return np.take(table, np.asarray(indices).astype(np.int64), axis=axis)


KERNELS: dict[OpKind, Callable[..., Any]] = {
    OpKind.MATMUL_NBITS: matmul_nbits, OpKind.GATHER_BLOCK_QUANTIZED: gather_block_quantized,
}
