"""Tensor types: a dtype and a shape whose dimensions are ints or symbolic polynomials."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from placer.ir.dtypes import DType
from placer.ir.symbolic import Dim, Sym, dim_eval, dim_prod, parse_dim


@dataclass(frozen=True)
class TensorType:
    """``dtype[d0, d1, ...]``; a scalar has shape ``()``."""

    dtype: DType
    shape: tuple[Dim, ...]

    @property
    def rank(self) -> int:
        return len(self.shape)

    @property
    def numel(self) -> Dim:
        return dim_prod(self.shape)

    @property
    def is_static(self) -> bool:
        return all(isinstance(d, int) for d in self.shape)

    @property
    def static_shape(self) -> tuple[int, ...]:
        """The shape as Python ints (a weight's, or one checked ``is_static``); TypeError if symbolic."""
        out = []
        for d in self.shape:
            if not isinstance(d, int):
                raise TypeError(f"shape of {self} is symbolic")
            out.append(int(d))
        return tuple(out)

    @property
    def symbols(self) -> frozenset[str]:
        out: set[str] = set()
        for d in self.shape:
            if isinstance(d, Sym):
                out |= d.symbols
        return frozenset(out)

    def concrete_shape(self, bindings: Mapping[str, int]) -> tuple[int, ...]:
        return tuple(dim_eval(d, bindings) for d in self.shape)

    def with_shape(self, shape: tuple[Dim, ...]) -> TensorType:
        return TensorType(self.dtype, tuple(shape))

    def with_dtype(self, dtype: DType) -> TensorType:
        return TensorType(dtype, self.shape)

    def __str__(self) -> str:
        return f"{self.dtype.value}[{', '.join(str(d) for d in self.shape)}]"

    @staticmethod
    def parse(text: str) -> TensorType:
        """Inverse of ``str``: ``bf16[batch, seq, 4096]``."""
        head, _, rest = text.partition("[")
        body = rest.rstrip("]").strip()
        dims = tuple(parse_dim(p) for p in body.split(",")) if body else ()
        return TensorType(DType(head.strip()), dims)
