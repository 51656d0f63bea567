"""JSON serialization of graphs. ``from_json(to_json(g))`` equals ``g`` exactly, inline data
included (stored as base64 of the raw little-endian bytes)."""

from __future__ import annotations

import base64
import json
from typing import Any

import ml_dtypes  # noqa: F401  (registers bfloat16/float8 names with numpy)
import numpy as np

from placer.ir.attrs import attrs_from_dict, attrs_to_dict
from placer.ir.dtypes import DType
from placer.ir.graph import ExternalLocation, Graph, KVCache, Node, Unit, UnitKind, Weight, WeightRole
from placer.ir.ops import OpKind
from placer.ir.types import TensorType

SCHEMA_VERSION = 1


def graph_to_dict(graph: Graph) -> dict[str, Any]:
    return {
        "schema_version": SCHEMA_VERSION,
        "name": graph.name,
        "inputs": list(graph.inputs),
        "outputs": list(graph.outputs),
        "types": {k: str(t) for k, t in graph.types.items()},
        "weights": [_weight_to_dict(w) for w in graph.weights.values()],
        "nodes": [_node_to_dict(n) for n in graph.nodes],
        "units": [{"name": u.name, "kind": u.kind.value, "layer": u.layer} for u in graph.units],
        "kv_caches": [
            {"name": k.name, "value": k.value, "elements_per_token": k.elements_per_token,
             "dtype": k.dtype.value, "window": k.window, "tokens_per_entry": k.tokens_per_entry,
             "state_elements": k.state_elements} for k in graph.kv_caches
        ],
    }


def _weight_to_dict(w: Weight) -> dict[str, Any]:
    d: dict[str, Any] = {"name": w.name, "type": str(w.type), "nbytes": w.nbytes, "role": w.role.value}
    if w.location is not None:
        d["location"] = {"path": w.location.path, "offset": w.location.offset,
                         "length": w.location.length}
    if w.data is not None:
        arr = np.asarray(w.data, order="C")  # not ascontiguousarray: it turns 0-d into 1-d
        # ml_dtypes types (bfloat16, float8_*) have an opaque ``str`` ('<V2'); their name is exact.
        dtype = arr.dtype.name if arr.dtype.kind == "V" else arr.dtype.str
        d["data"] = {"dtype": dtype, "shape": list(arr.shape),
                     "b64": base64.b64encode(arr.tobytes()).decode("ascii")}
    return d


def _node_to_dict(n: Node) -> dict[str, Any]:
    d: dict[str, Any] = {"name": n.name, "op": n.op.value, "inputs": list(n.inputs),
                         "outputs": list(n.outputs)}
    attrs = attrs_to_dict(n.attrs)
    if attrs:
        d["attrs"] = attrs
    if n.scope:
        d["scope"] = n.scope
    if n.unit:
        d["unit"] = n.unit
    return d


def graph_from_dict(data: dict[str, Any]) -> Graph:
    if data.get("schema_version") != SCHEMA_VERSION:
        raise ValueError(f"unsupported IR schema_version {data.get('schema_version')!r}; "
                         f"this placer reads version {SCHEMA_VERSION}")
    weights = {}
    for wd in data["weights"]:
        loc = wd.get("location")
        arr = None
        if "data" in wd:
            raw = base64.b64decode(wd["data"]["b64"])
            arr = np.frombuffer(raw, dtype=np.dtype(wd["data"]["dtype"])).reshape(
                wd["data"]["shape"]).copy()
        weights[wd["name"]] = Weight(
            wd["name"], TensorType.parse(wd["type"]), wd["nbytes"], WeightRole(wd["role"]),
            ExternalLocation(**loc) if loc else None, arr)
    nodes = tuple(
        Node(nd["name"], OpKind(nd["op"]), tuple(nd["inputs"]), tuple(nd["outputs"]),
             attrs_from_dict(OpKind(nd["op"]), nd.get("attrs", {})), nd.get("scope", ""),
             nd.get("unit", ""))
        for nd in data["nodes"]
    )
    return Graph(
        name=data["name"], inputs=tuple(data["inputs"]), outputs=tuple(data["outputs"]),
        nodes=nodes, types={k: TensorType.parse(v) for k, v in data["types"].items()},
        weights=weights,
        units=tuple(Unit(u["name"], UnitKind(u["kind"]), u["layer"]) for u in data["units"]),
        kv_caches=tuple(KVCache(k["name"], k["value"], k["elements_per_token"], DType(k["dtype"]),
                                k["window"], k.get("tokens_per_entry", 1), k.get("state_elements", 0))
                      for k in data["kv_caches"]),
    )


def to_json(graph: Graph) -> str:
    return json.dumps(graph_to_dict(graph), indent=1, sort_keys=False)


def from_json(text: str) -> Graph:
    return graph_from_dict(json.loads(text))


def graphs_equal(a: Graph, b: Graph) -> bool:
    """Structural equality including inline weight data."""
    if a != b:
        return False
    for name, wa in a.weights.items():
        da, db = wa.data, b.weights[name].data
        if (da is None) != (db is None):
            return False
        # The ignore below: mypy does not relate da and db: db is not None here (the check above).
        if da is not None and (da.dtype != db.dtype or da.shape != db.shape  # type: ignore[union-attr]
                               or da.tobytes() != db.tobytes()):  # type: ignore[union-attr]
            return False
    return True
