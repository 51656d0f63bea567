"""numpy kernels of the reference interpreter: one module per op family, one table.

A kernel is ``fn(node, *inputs) -> ndarray | tuple[ndarray, ...]``; absent optional inputs
arrive as ``None``. Semantics follow ONNX (broadcasting, attributes from ``placer.ir.attrs``).
``KERNELS`` covers every ``OpKind`` (a test enforces it).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from placer.backends.kernels import (
    contrib_nn,
    contrib_quant,
    elementwise,
    indexing,
    layout,
    linalg,
    nn,
    reduce,
    shape,
)
from placer.ir.ops import OpKind

# A kernel returns one array, or a tuple of arrays for a multi-output op; ``Any`` because every
# caller knows which from the op it dispatched (a union would need a check at each call).
Kernel = Callable[..., Any]

KERNELS: dict[OpKind, Kernel] = {
    **elementwise.KERNELS, **linalg.KERNELS, **nn.KERNELS, **reduce.KERNELS,
    **layout.KERNELS, **indexing.KERNELS, **shape.KERNELS,
    **contrib_nn.KERNELS, **contrib_quant.KERNELS,  # onnxruntime's com.microsoft ops
}

__all__ = ["KERNELS", "Kernel"]
