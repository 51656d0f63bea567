"""Element types of IR tensors, with exact storage sizes.

Sub-byte and block-scaled formats are first-class because weight bytes decide placement:
an MXFP4 tensor stores 4-bit elements plus one 8-bit shared scale per block of 32.
"""

from __future__ import annotations

import enum
import math

import numpy as np


class DType(enum.Enum):
    """An element type. The value is the canonical lower-case name used in text and JSON."""

    FLOAT64 = "f64"
    FLOAT32 = "f32"
    FLOAT16 = "f16"
    BFLOAT16 = "bf16"
    FP8_E4M3 = "fp8e4m3"
    FP8_E5M2 = "fp8e5m2"
    FP4_E2M1 = "fp4e2m1"
    MXFP4 = "mxfp4"
    MXFP8 = "mxfp8"
    INT64 = "i64"
    INT32 = "i32"
    INT16 = "i16"
    INT8 = "i8"
    INT4 = "i4"
    UINT8 = "u8"
    UINT4 = "u4"
    BOOL = "bool"

    @property
    def bits(self) -> int:
        """Bits per element, not counting block scales."""
        return _BITS[self]

    @property
    def block_size(self) -> int:
        """Elements sharing one scale (0 when the format has no block scale)."""
        return _BLOCK.get(self, (0, 0))[0]

    @property
    def scale_bits(self) -> int:
        """Bits of the shared scale per block (0 when none)."""
        return _BLOCK.get(self, (0, 0))[1]

    @property
    def is_float(self) -> bool:
        return self in FLOAT_TYPES

    @property
    def is_integer(self) -> bool:
        return self in INTEGER_TYPES

    def storage_bytes(self, numel: int) -> int:
        """Exact bytes to store ``numel`` elements, including block scales.

        Sub-byte elements are packed (two 4-bit elements per byte, rounded up).
        """
        if numel < 0:
            raise ValueError(f"negative element count {numel}")
        data = math.ceil(numel * self.bits / 8)
        if self.block_size:
            data += math.ceil(numel / self.block_size) * self.scale_bits // 8
        return data

    def to_numpy(self) -> np.dtype:
        """The numpy dtype that holds values of this type for computation."""
        return np.dtype(_NUMPY[self])

    @classmethod
    def parse(cls, text: str) -> DType:
        """Parse a name such as ``bf16`` or ``fp8`` (alias of fp8e4m3); raise ValueError."""
        key = text.strip().lower()
        key = _ALIASES.get(key, key)
        try:
            return cls(key)
        except ValueError:
            names = ", ".join(sorted(d.value for d in cls))
            raise ValueError(f"unknown dtype {text!r}; expected one of: {names}") from None


_BITS = {
    DType.FLOAT64: 64, DType.FLOAT32: 32, DType.FLOAT16: 16, DType.BFLOAT16: 16,
    DType.FP8_E4M3: 8, DType.FP8_E5M2: 8, DType.FP4_E2M1: 4, DType.MXFP4: 4, DType.MXFP8: 8,
    DType.INT64: 64, DType.INT32: 32, DType.INT16: 16, DType.INT8: 8, DType.INT4: 4,
    DType.UINT8: 8, DType.UINT4: 4, DType.BOOL: 8,
}
# OCP Microscaling formats: 32 elements share one E8M0 (8-bit) scale.
_BLOCK = {DType.MXFP4: (32, 8), DType.MXFP8: (32, 8)}
_ALIASES = {
    "float32": "f32", "fp32": "f32", "float": "f32", "float16": "f16", "fp16": "f16", "half": "f16",
    "bfloat16": "bf16", "float64": "f64", "fp64": "f64", "double": "f64", "fp8": "fp8e4m3",
    "float8_e4m3fn": "fp8e4m3", "float8_e5m2": "fp8e5m2", "fp4": "fp4e2m1", "float4_e2m1": "fp4e2m1",
    "int64": "i64", "int32": "i32", "int16": "i16", "int8": "i8", "int4": "i4", "uint8": "u8",
    "uint4": "u4",
}
_NUMPY = {
    DType.FLOAT64: "float64", DType.FLOAT32: "float32", DType.FLOAT16: "float16",
    DType.BFLOAT16: "float32", DType.FP8_E4M3: "float32", DType.FP8_E5M2: "float32",
    DType.FP4_E2M1: "float32", DType.MXFP4: "float32", DType.MXFP8: "float32",
    DType.INT64: "int64", DType.INT32: "int32", DType.INT16: "int16", DType.INT8: "int8",
    DType.INT4: "int8", DType.UINT8: "uint8", DType.UINT4: "uint8", DType.BOOL: "bool",
}

FLOAT_TYPES = frozenset({
    DType.FLOAT64, DType.FLOAT32, DType.FLOAT16, DType.BFLOAT16, DType.FP8_E4M3, DType.FP8_E5M2,
    DType.FP4_E2M1, DType.MXFP4, DType.MXFP8,
})
INTEGER_TYPES = frozenset({
    DType.INT64, DType.INT32, DType.INT16, DType.INT8, DType.INT4, DType.UINT8, DType.UINT4,
})
