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

A dtype policy other than ``native`` replaces a weight's dtype and so drops the block scales:
its bytes are then ``policy_dtype.storage_bytes(numel)``.
"""

from __future__ import annotations

import fnmatch
import math
from dataclasses import dataclass

from placer.frontends.hf_reader import ConfigReader
from placer.ir.dtypes import DType

_DTYPES = {"bfloat16": DType.BFLOAT16, "float16": DType.FLOAT16, "float32": DType.FLOAT32}


@dataclass(frozen=True)
class Quantization:
    """How a checkpoint stores its parameters. ``method``: "", "mxfp4" or "fp8"."""

    base: DType = DType.BFLOAT16
    method: str = ""
    block: tuple[int, int] = (128, 128)
    not_convert: tuple[str, ...] = ()

    def storage(self, name: str, shape: tuple[int, ...]) -> tuple[DType, int | None]:
        """The native dtype of parameter ``name`` and its exact bytes (None: the dtype's own size)."""
        module = _module_of(name)
        if len(shape) != 2 or self._excluded(module):
            return self.base, None
        if self.method == "mxfp4" and ".experts." in name:
            return DType.MXFP4, None
        if self.method == "fp8" and ".layers." in name and name.endswith(".weight") \
                and not module.endswith((".gate", ".router")):
            rows, cols = shape
            scales = math.ceil(rows / self.block[0]) * math.ceil(cols / self.block[1])
            return DType.FP8_E4M3, rows * cols + scales * 4
        return self.base, None

    def _excluded(self, module: str) -> bool:
        return any(module == p or fnmatch.fnmatchcase(module, p) or module.startswith(p + ".")
                   or fnmatch.fnmatchcase(module, p + ".*") for p in self.not_convert)


def _module_of(name: str) -> str:
    head, _, last = name.rpartition(".")
    return head if last in ("weight", "bias") else name


def read_quantization(r: ConfigReader, base_dtype: str) -> Quantization:
    """The checkpoint precisions of the config read by ``r``; UserError names a bad field."""
    base = _DTYPES.get(base_dtype)
    if base is None:
        raise r.fail("torch_dtype", f"{base_dtype!r} is not supported; use bfloat16, float16 or float32")
    q = r.sub("quantization_config")
    if q is None:
        return Quantization(base)
    method = q.str("quant_method")
    not_convert = tuple(q.str_list("modules_to_not_convert") or ())
    if method == "mxfp4":
        return Quantization(base, "mxfp4", not_convert=not_convert)
    if method == "fp8":
        fmt = q.str("fmt", "e4m3")
        if fmt != "e4m3":
            raise q.fail("fmt", f"{fmt!r} is not supported; placer reads fp8 e4m3 checkpoints")
        block = q.int_list("weight_block_size", [128, 128], minimum=1)
        if len(block) != 2:
            raise q.fail("weight_block_size", f"must be two integers, got {block!r}")
        return Quantization(base, "fp8", (block[0], block[1]), not_convert)
    raise q.fail("quant_method", f"{method!r} is not supported; supported: mxfp4, fp8 "
                 "(or remove quantization_config to place the model at its torch_dtype)")
