"""placer's intermediate representation: types, ops, graphs, verifier, printer, serialization.

This package imports nothing else of placer (``placer.backends`` and ``placer`` import it).
"""

from placer.ir.attrs import ATTRIBUTES, attrs_class
from placer.ir.dtypes import DType
from placer.ir.graph import (
    ExternalLocation,
    Graph,
    GraphBuilder,
    KVCache,
    Node,
    Unit,
    UnitKind,
    Weight,
    WeightRole,
)
from placer.ir.ops import OpKind
from placer.ir.printer import print_graph
from placer.ir.serialize import from_json, graphs_equal, to_json
from placer.ir.symbolic import Dim, Sym
from placer.ir.types import TensorType
from placer.ir.verifier import VerificationError, verify

__all__ = [
    "ATTRIBUTES", "DType", "Dim", "ExternalLocation", "Graph", "GraphBuilder", "KVCache", "Node",
    "OpKind", "Sym", "TensorType", "Unit", "UnitKind", "VerificationError", "Weight", "WeightRole",
    "attrs_class", "from_json", "graphs_equal", "print_graph", "to_json", "verify",
]
