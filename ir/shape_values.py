"""What shape inference knows about a value, and the helpers shape rules share.

``Info`` pairs a value's type with the known contents of small tensors (numpy object arrays of
ints, floats, bools or ``Sym`` polynomials): shape tensors stay exact through arithmetic.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

import numpy as np

from placer.ir.dtypes import DType
from placer.ir.graph import Graph, Node
from placer.ir.printer import excerpt
from placer.ir.symbolic import Dim, Sym
from placer.ir.types import TensorType
from placer.ir.verifier import VerificationError

MAX_VALUE_ELEMENTS = 64  # contents are tracked only for tensors this small
_BIG = 2**62  # slice ends at or beyond this mean "to the end"


@dataclass(frozen=True)
class Info:
    """What shape inference knows about a value: its type and, for small tensors, its contents
    as a numpy object array of ints, floats, bools or ``Sym`` (``None`` when unknown)."""

    type: TensorType
    value: np.ndarray | None = None


class ShapeError(VerificationError):
    """Input shapes that the op cannot accept (inner dims of a MatMul differ, ...)."""


class RuleContext:
    """Per-inference state a rule may need: fresh symbols for dims nothing can determine."""

    def __init__(self) -> None:
        self._count = 0

    def fresh(self, hint: str = "unk") -> Sym:
        self._count += 1
        return Sym.var(f"{hint}_{self._count}")


class ShapeMismatch(Exception):
    """Raised inside rules; the pass turns it into a ShapeError naming the node."""


Rule = Callable[[RuleContext, Node, Sequence["Info | None"]], list[Info]]


def shape_error(graph: Graph, node: Node, message: str) -> ShapeError:
    """A ShapeError naming ``node`` and showing the IR around it."""
    return ShapeError(f"node {node.name!r} ({node.op.value}): {message}", node.name,
                      excerpt(graph, node))


# ---------------------------------------------------------------------------------------------
# helpers


def _norm(v: object) -> object:
    if isinstance(v, (bool, np.bool_)):
        return bool(v)
    if isinstance(v, (int, np.integer)):
        return int(v)
    if isinstance(v, (float, np.floating)):
        return float(v)
    return v


def as_value(arr: np.ndarray) -> np.ndarray | None:
    """A concrete numpy array as an object array of Python scalars (None if too large)."""
    if arr.size > MAX_VALUE_ELEMENTS:
        return None
    out = np.empty(arr.shape, dtype=object)
    flat = out.reshape(-1)
    for i, v in enumerate(np.asarray(arr).reshape(-1).tolist()):
        flat[i] = v
    return out


def make_info(dtype: DType, shape: Sequence[Dim], value: np.ndarray | None = None) -> Info:
    # The ignore below: _norm (object -> object) turns numpy scalars into Python ones; dims pass unchanged.
    shape = tuple(_norm(d) for d in shape)  # type: ignore[misc]
    if value is not None and not isinstance(value, np.ndarray):  # numpy returned a 0-d scalar
        scalar = np.empty((), dtype=object)
        scalar[()] = value
        value = scalar
    if value is not None and (value.size > MAX_VALUE_ELEMENTS or value.shape != shape):
        value = None
    return Info(TensorType(dtype, shape), value)


def static_dims(dims: Iterable[Dim]) -> list[int] | None:
    """``dims`` as Python ints when none of them is symbolic, else None."""
    out: list[int] = []
    for d in dims:
        if not isinstance(d, int):
            return None
        out.append(int(d))
    return out


def known_ints(info: Info | None) -> list[Dim] | None:
    """The known contents of a shape/index tensor as a flat list of dims, or None."""
    if info is None or info.value is None:
        return None
    out = []
    for v in info.value.reshape(-1):
        if isinstance(v, (Sym, int)):
            out.append(v)
        elif isinstance(v, float) and v.is_integer():
            out.append(int(v))
        else:
            return None
    return out


def known_scalar(info: Info | None) -> Dim | None:
    vals = known_ints(info)
    return vals[0] if vals is not None and len(vals) == 1 else None


def normalize_axis(axis: int, rank: int) -> int:
    a = axis + rank if axis < 0 else axis
    if not 0 <= a < max(rank, 1):
        raise ShapeMismatch(f"axis {axis} is out of range for rank {rank}")
    return a


def _same(a: Dim, b: Dim) -> bool:
    return a == b


def broadcast_dims(a: Dim, b: Dim) -> Dim:
    """Numpy broadcasting of one dim pair; symbols are assumed to bind to concrete partners."""
    if _same(a, b) or b == 1:
        return a
    if a == 1:
        return b
    if isinstance(a, int) and isinstance(b, int):
        raise ShapeMismatch(f"cannot broadcast dims {a} and {b}")
    if isinstance(a, int):
        return a
    if isinstance(b, int):
        return b
    # Two different polynomials: prefer a named symbol over a fresh one.
    return b if all(s.startswith("unk") for s in a.symbols) else a


def broadcast_shapes(*shapes: Sequence[Dim]) -> tuple[Dim, ...]:
    rank = max(len(s) for s in shapes)
    out: list[Dim] = [1] * rank
    for s in shapes:
        padded = [1] * (rank - len(s)) + list(s)
        try:
            out = [broadcast_dims(x, y) for x, y in zip(out, padded)]
        except ShapeMismatch:
            raise ShapeMismatch("cannot broadcast shapes " + " and ".join(
                "[" + ", ".join(str(d) for d in sh) + "]" for sh in shapes)) from None
    return tuple(out)


def require_inputs(infos: Sequence[Info | None], n: int) -> list[Info]:
    got = [i for i in infos[:n] if i is not None]
    if len(got) < n:
        raise ShapeMismatch(f"expects at least {n} inputs")
    return got
