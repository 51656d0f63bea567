"""Native checkpoint precisions from a config's ``quantization_config``.

The weight types a frontend emits are the dtypes the checkpoint stores, so that
``--weights-dtype native`` places what a server would load:

- no ``quantization_config``: every parameter has the config's ``torch_dtype`` (bf16 default).
- ``quant_method: mxfp4`` (gpt-oss): the expert projection matrices are ``DType.MXFP4``
  (4-bit elements plus one 8-bit scale per 32, counted by ``DType.storage_bytes``); modules
  listed in ``modules_to_not_convert`` (attention, router, embeddings, head) and every bias and
  norm keep the config dtype.
- ``quant_method: fp8`` (DeepSeek-V3): every linear-layer weight inside the decoder layers is
  ``DType.FP8_E4M3`` with one float32 scale per ``weight_block_size`` block (128 x 128);
  ``Weight.nbytes`` includes those scale bytes exactly:
  ``out*in + ceil(out/128)*ceil(in/128)*4``. Embeddings, norms, ``lm_head`` and the MoE router
  (``mlp.gate``, not a linear module in the checkpoint) stay bf16.

- DeepSeek-V4 (fp8 with ``expert_dtype: fp4``): routed experts MXFP4, other decoder linears
  fp8 with one ue8m0 byte per block when ``scale_fmt`` is ``ue8m0``; the parameters the model
  keeps in float32 (hyper-connections, norms, sinks, compressor position biases) are float32,
  and its compressor/indexer projections stay at the config dtype.
- int4 checkpoints (``gptq``, ``awq``, ``compressed-tensors`` pack-quantized): every linear
  weight inside the decoder layers is ``DType.INT4`` with ``Weight.nbytes`` the packed 4-bit
  weight plus its per-group fp16/bf16 scales, zero points and GPTQ's ``g_idx``, exactly as the
  checkpoint stores them (routers, embeddings, norms and ``lm_head`` stay at the config dtype):

  - GPTQ ``[in, out]``: qweight ``in*out/2`` + qzeros ``ceil(in/g)*out/2`` + scales
    ``ceil(in/g)*out*2`` + g_idx ``in*4`` bytes;
  - AWQ (GEMM): qweight ``in*out/2`` + qzeros ``ceil(in/g)*out/2`` (``zero_point``) + scales
    ``ceil(in/g)*out*2``;
  - compressed-tensors: weight_packed ``out*in/2`` + weight_scale ``out*ceil(in/g)*2`` +
    weight_shape 16 (+ packed weight_zero_point ``ceil(out/2)*ceil(in/g)`` when asymmetric).

  A group size of -1 means one group over the whole input dimension.

A dtype policy other than ``native`` replaces a weight's dtype and so drops the block scales:
its bytes are then ``policy_dtype.storage_bytes(numel)``.
"""

from __future__ import annotations

import fnmatch
import functools
import math
import re
from collections.abc import Callable
from dataclasses import dataclass

from placer.frontends.hf_reader import ConfigReader
from placer.ir.dtypes import DType

_DTYPES = {"bfloat16": DType.BFLOAT16, "float16": DType.FLOAT16, "float32": DType.FLOAT32}


@dataclass(frozen=True)
class Quantization:
    """How a checkpoint stores its parameters. ``method``: "", "mxfp4", "fp8", "gptq", "awq" or
    "compressed-tensors"; ``fp32``: parameter-name patterns stored float32; ``expert_method``:
    "mxfp4" for routed experts stored apart from ``method`` (DeepSeek-V4)."""

    base: DType = DType.BFLOAT16
    method: str = ""
    block: tuple[int, int] = (128, 128)
    not_convert: tuple[str, ...] = ()
    scale_bytes: int = 4
    fp32: tuple[str, ...] = ()
    expert_method: str = ""
    group_size: int = 128
    zero_points: bool = True
    ignore_regex: tuple[str, ...] = ()  # compressed-tensors "re:" ignore entries

    def storage(self, name: str, shape: tuple[int, ...]) -> tuple[DType, int | None]:
        """The native dtype of parameter ``name`` and its exact bytes (None: the dtype's own size)."""
        if self.fp32 and _matcher(self.fp32)(name):
            return DType.FLOAT32, None
        module = _module_of(name)
        if len(shape) != 2 or self._excluded(module):
            return self.base, None
        if ".experts." in name and "mxfp4" in (self.method, self.expert_method):
            return DType.MXFP4, None
        if ".layers." not in name or module.endswith((".gate", ".router", ".shared_expert_gate")):
            return self.base, None
        if self.method == "fp8" and name.endswith(".weight"):
            rows, cols = shape
            scales = math.ceil(rows / self.block[0]) * math.ceil(cols / self.block[1])
            return DType.FP8_E4M3, rows * cols + scales * self.scale_bytes
        if self.method in _INT4_METHODS and name.endswith(".weight"):
            return DType.INT4, self._int4_bytes(*shape)
        return self.base, None

    def _int4_bytes(self, d_in: int, d_out: int) -> int:
        """Packed 4-bit weight + per-group scales (2 bytes) and zero points, as stored."""
        groups = math.ceil(d_in / self.group_size) if self.group_size > 0 else 1
        packed = math.ceil(d_in * d_out / 2)
        if self.method == "gptq":
            return packed + math.ceil(groups * d_out / 2) + groups * d_out * 2 + d_in * 4
        if self.method == "awq":
            return packed + (math.ceil(groups * d_out / 2) if self.zero_points else 0) + groups * d_out * 2
        zeros = math.ceil(d_out / 2) * groups if self.zero_points else 0  # compressed-tensors
        return packed + d_out * groups * 2 + 16 + zeros

    def _excluded(self, module: str) -> bool:
        if any(re.fullmatch(p, module) for p in self.ignore_regex):
            return True
        # A pattern names the module itself or any module inside it.
        patterns = self.not_convert + tuple(p + ".*" for p in self.not_convert)
        return bool(self.not_convert) and _matcher(patterns)(module)


@functools.lru_cache(maxsize=64)
def _matcher(patterns: tuple[str, ...]) -> Callable[[str], bool]:
    """One compiled regex for a tuple of fnmatch patterns (one call per parameter of a model
    with 10^4 experts: matching them one by one dominated ``from_config``)."""
    rx = re.compile("|".join(f"(?:{fnmatch.translate(p)})" for p in patterns))
    return lambda s: rx.match(s) is not None


def _module_of(name: str) -> str:
    head, _, last = name.rpartition(".")
    return head if last in ("weight", "bias") else name


_INT4_METHODS = ("gptq", "awq", "compressed-tensors")


def read_quantization(r: ConfigReader, base_dtype: str, *, fp32: tuple[str, ...] = (),
                      unquantized: tuple[str, ...] = (), expert_dtype: str = "") -> Quantization:
    """The checkpoint precisions of the config read by ``r``; UserError names a bad field.
    ``fp32``, ``unquantized`` and ``expert_dtype`` are the family's native precisions."""
    base = _DTYPES.get(base_dtype)
    if base is None:
        raise r.fail("torch_dtype", f"{base_dtype!r} is not supported; use bfloat16, float16 or float32")
    q = r.sub("quantization_config")
    if q is None:
        return Quantization(base, fp32=fp32)
    method = q.str("quant_method")
    not_convert = tuple(q.str_list("modules_to_not_convert") or ()) + unquantized
    if method == "mxfp4":
        return Quantization(base, "mxfp4", not_convert=not_convert, fp32=fp32)
    if method == "fp8":
        fmt = q.str("fmt", "e4m3")
        if fmt not in ("e4m3", "float8_e4m3fn"):  # MiniMax-M2 spells out the torch dtype
            raise q.fail("fmt", f"{fmt!r} is not supported; placer reads fp8 e4m3 checkpoints")
        block = q.int_list("weight_block_size", [128, 128], minimum=1)
        if len(block) != 2:
            raise q.fail("weight_block_size", f"must be two integers, got {block!r}")
        scale_fmt = q.str("scale_fmt", "float32")
        experts = q.str("expert_dtype", expert_dtype) or ""
        if experts not in ("", "fp4", "fp8"):
            raise q.fail("expert_dtype", f"{experts!r} is not supported; use fp4 or fp8")
        return Quantization(base, "fp8", (block[0], block[1]), not_convert, 1 if scale_fmt == "ue8m0" else 4,
                            fp32, "mxfp4" if experts == "fp4" else "")
    if method in ("gptq", "awq"):
        bits = q.int("bits", 4)
        if bits != 4:
            raise q.fail("bits", f"{bits} is not supported; placer reads 4-bit {method} checkpoints")
        version = q.str("version", "gemm").lower()
        if method == "awq" and version not in ("gemm", "gemv", "gemv_fast"):
            raise q.fail("version", f"{version!r} is not supported; placer reads AWQ GEMM/GEMV checkpoints")
        return Quantization(base, method, not_convert=not_convert, fp32=fp32,
                            group_size=_group_size(q),
                            zero_points=q.bool("zero_point", True))
    if method == "compressed-tensors":
        return _compressed_tensors(q, base, not_convert, fp32)
    raise q.fail("quant_method", f"{method!r} is not supported; supported: mxfp4, fp8, gptq, awq, "
                 "compressed-tensors (or remove quantization_config to place the model at its torch_dtype)")


def _group_size(q: ConfigReader) -> int:
    """A quantization group size: -1 (one group per output channel) or a positive width."""
    size = q.int("group_size", 128, minimum=-1)
    if size == 0:
        raise q.fail("group_size", "is 0; give -1 (one group per channel) or a positive group width")
    return size


def _compressed_tensors(q: ConfigReader, base: DType, not_convert: tuple[str, ...],
                        fp32: tuple[str, ...]) -> Quantization:
    """A pack-quantized int4 weight scheme (llm-compressor's W4A16): one config group."""
    groups = q.sub("config_groups")
    if groups is None or not groups.data:
        raise q.fail("config_groups", "is missing; a compressed-tensors config needs its weight scheme")
    name = sorted(groups.data)[0]
    group = groups.sub(name)
    weights = group.sub("weights") if group else None
    if weights is None:
        raise groups.fail(name, "has no 'weights' scheme; placer reads weight-quantized checkpoints")
    bits, kind = weights.int("num_bits", 4), weights.str("type", "int")
    if bits != 4 or kind != "int":
        raise weights.fail("num_bits", f"{bits}-bit {kind} is not supported; placer reads 4-bit int weights")
    ignore = q.str_list("ignore") or []
    plain = tuple(p for p in ignore if not p.startswith("re:"))
    regex = tuple(p[3:] for p in ignore if p.startswith("re:"))
    for pattern in regex:
        try:
            re.compile(pattern)
        except re.error as e:
            raise q.fail("ignore", f"has an invalid regular expression {pattern!r} ({e})") from None
    return Quantization(base, "compressed-tensors", not_convert=not_convert + plain, fp32=fp32,
                        group_size=_group_size(weights),
                        zero_points=not weights.bool("symmetric", True), ignore_regex=regex)
