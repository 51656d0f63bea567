"""ONNX frontend: ``from_onnx(path or ModelProto)`` -> a typed, verified ``placer.ir.Graph``.

External weight data is never read: a weight is a reference with its exact byte size and
``ExternalLocation``. Inline initializers and ``Constant`` nodes keep their data (numpy), so
shape tensors and rotary tables stay usable. ONNX op names stop here: ``_OPS`` maps each to an
``OpKind`` and a converter that builds the typed attributes.
"""

from __future__ import annotations

import ast
import hashlib
import heapq
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from placer.errors import UserError
from placer.frontends.onnx_checks import check_declared_types, check_model_proto, check_operand_types
from placer.frontends.onnx_contrib import CONTRIB_EXPANDERS, CONTRIB_OPS
from placer.frontends.onnx_sequences import SEQUENCE_EXPANDERS
from placer.ir import attrs as A
from placer.ir.dtypes import DType
from placer.ir.graph import ExternalLocation, Graph, Node, Weight, WeightRole
from placer.ir.ops import ATTENTION_INPUTS, OpKind
from placer.ir.passes.classify_weights import classify_weights
from placer.ir.passes.infer_shapes import infer_shapes
from placer.ir.symbolic import Dim, Sym, parse_dim
from placer.ir.types import TensorType
from placer.ir.verifier import VerificationError, verify

ONNX_DTYPES: dict[int, DType] = {
    TensorProto.FLOAT: DType.FLOAT32, TensorProto.DOUBLE: DType.FLOAT64,
    TensorProto.FLOAT16: DType.FLOAT16, TensorProto.BFLOAT16: DType.BFLOAT16,
    TensorProto.FLOAT8E4M3FN: DType.FP8_E4M3, TensorProto.FLOAT8E4M3FNUZ: DType.FP8_E4M3,
    TensorProto.FLOAT8E5M2: DType.FP8_E5M2, TensorProto.FLOAT8E5M2FNUZ: DType.FP8_E5M2,
    TensorProto.FLOAT4E2M1: DType.FP4_E2M1, TensorProto.INT64: DType.INT64,
    TensorProto.INT32: DType.INT32, TensorProto.INT16: DType.INT16, TensorProto.INT8: DType.INT8,
    TensorProto.INT4: DType.INT4, TensorProto.UINT8: DType.UINT8, TensorProto.UINT4: DType.UINT4,
    TensorProto.BOOL: DType.BOOL,
}


def onnx_file_sha256(path: str | Path) -> str:
    """Hex sha256 of the .onnx file itself (external data files are not read)."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def load_onnx(path: str | Path) -> onnx.ModelProto:
    """Parse the model file without its external data; UserError for a bad file."""
    p = Path(path)
    if not p.is_file():
        raise UserError(f"{p}: no such ONNX file")
    try:
        model = onnx.load(str(p), load_external_data=False)
    except Exception as err:  # protobuf raises DecodeError and friends
        raise UserError(f"{p}: not a valid ONNX file (truncated or another format): "
                        f"{type(err).__name__}") from None
    if model.ir_version <= 0 or not model.HasField("graph") or not model.graph.node:
        raise UserError(f"{p}: not an ONNX model (no IR version or no graph nodes)")
    return model


def from_onnx(model: str | Path | onnx.ModelProto, *, name: str | None = None) -> Graph:
    """Import an ONNX model as a typed, verified graph with classified weights.

    Args:
        model: a path to a ``.onnx`` file or a loaded ``ModelProto`` (external data not needed).
        name: the graph's name (default: the file's stem or the ONNX graph name).

    Raises:
        UserError: not an ONNX file, unsupported op, cycle, dangling input, shape mismatch.
    """
    if isinstance(model, onnx.ModelProto):
        proto, label = model, f"<ONNX model {model.graph.name or 'unnamed'}>"
    else:
        proto, label = load_onnx(model), str(model)
    check_model_proto(proto, label, None if isinstance(model, onnx.ModelProto) else Path(model).parent)
    gname = name or (Path(model).stem if not isinstance(model, onnx.ModelProto)
                     else proto.graph.name) or "model"
    graph = _Importer(proto, label).run(gname)
    try:
        graph = infer_shapes(graph)
        graph = _pin_cache_dims(graph)
        check_declared_types(proto.graph, graph.types, ONNX_DTYPES, label)
        check_operand_types(proto, graph.types, ONNX_DTYPES, label)
        _check_axes(graph, label)
        graph = classify_weights(graph)
        verify(graph, require_types=True)
    except VerificationError as err:
        raise UserError(f"{label}: {err.short}") from None
    return graph


#: Ops whose ``axis`` indexes their first input's dims: ``[-r, r - 1]``, Flatten's ``[-r, r]``.
_AXIS_OF_INPUT = {OpKind.SOFTMAX: 0, OpKind.CONCAT: 0, OpKind.GATHER: 0, OpKind.GATHER_ELEMENTS: 0,
                  OpKind.FLATTEN: 1}


def _check_axes(graph: Graph, label: str) -> None:
    """Each node's ``axis`` names a dim of its input (onnxruntime refuses one outside; placer's
    kernels would wrap it or fail mid-run)."""
    for node in graph.nodes:
        extra = _AXIS_OF_INPUT.get(node.op)
        attrs = node.attrs
        if extra is None or not isinstance(attrs, A.AxisAttrs) or not node.inputs or not node.inputs[0]:
            continue
        rank = graph.type_of(node.inputs[0]).rank
        if not -rank <= attrs.axis < rank + extra:
            raise UserError(f"{label}: node {node.name!r} ({node.op.value}) has axis {attrs.axis}, outside "
                            f"its rank-{rank} input's axes {-rank}..{rank + extra - 1}; fix the attribute")


def _pin_cache_dims(graph: Graph) -> Graph:
    """Give a past-KV input's symbolic head dim (onnxruntime-genai's ``kv_cache_dim``) the head
    size its attention node implies, so that KV bytes per token are known; shapes re-inferred."""
    subst: dict[str, int] = {}
    for node in graph.nodes:
        if node.op not in ATTENTION_INPUTS:
            continue
        for past_at, present_at in zip(ATTENTION_INPUTS[node.op][2:], (1, 2)):
            past = node.inputs[past_at] if past_at < len(node.inputs) else ""
            present = node.outputs[present_at] if present_at < len(node.outputs) else ""
            if not past or past not in graph.inputs or not present or present not in graph.types:
                continue
            d, got = graph.types[past].shape[-1], graph.types[present].shape[-1]
            if isinstance(d, Sym) and isinstance(got, int) and len(d.symbols) == 1 and \
                    d == Sym.var(next(iter(d.symbols))):
                subst[next(iter(d.symbols))] = got
    if not subst:
        return graph
    types = dict(graph.types)
    for i in graph.inputs:
        t = types[i]
        types[i] = TensorType(t.dtype, tuple(subst.get(next(iter(d.symbols)), d) if isinstance(d, Sym) and
                                              d in [Sym.var(k) for k in subst] else d for d in t.shape))
    return infer_shapes(graph.replace(types={i: types[i] for i in graph.inputs}))


def _sym_name(text: str) -> str:
    s = re.sub(r"[^\w.]", "_", text)
    return s if re.match(r"[A-Za-z_]", s) else "d_" + s


@dataclass
class _Importer:
    proto: onnx.ModelProto
    label: str
    weights: dict[str, Weight] = field(default_factory=dict)
    types: dict[str, TensorType] = field(default_factory=dict)
    nodes: list[Node] = field(default_factory=list)
    node_names: set[str] = field(default_factory=set)
    retyped: set[str] = field(default_factory=set)  # quantized weights given their logical type
    sequences: dict[str, Any] = field(default_factory=dict)  # SplitToSequence outputs
    scope_memo: dict[str, str] = field(default_factory=dict)  # name_scopes text -> scope
    _elem_types: dict[str, int] | None = None

    def fail(self, message: str) -> UserError:
        return UserError(f"{self.label}: {message}")

    def run(self, gname: str) -> Graph:
        g = self.proto.graph
        self.opsets = {("" if o.domain == "ai.onnx" else o.domain): int(o.version)
                       for o in self.proto.opset_import}
        self.opset = self.opsets.get("", 1)
        self.used_values = {i for n in g.node for i in n.input if i} | {o.name for o in g.output}
        for t in g.initializer:
            self.weights[t.name] = self.weight(t)
        if g.sparse_initializer:
            raise self.fail("sparse initializers are not supported; densify them first")
        inputs = []
        for vi in g.input:
            if vi.name in self.weights:
                continue
            self.types[vi.name] = self.value_type(vi)
            inputs.append(vi.name)
        for proto_node in _topological_order(g, set(self.weights) | set(inputs), self.fail):
            self.convert(proto_node)
        self.tie_transposed_copies()
        outputs = tuple(o.name for o in g.output)
        return Graph(gname, tuple(inputs), outputs, tuple(self.nodes), self.types, self.weights)

    # -- types and weights ----------------------------------------------------------------

    def dtype(self, code: int, what: str) -> DType:
        try:
            return ONNX_DTYPES[code]
        except KeyError:
            raise self.fail(f"{what} has element type "
                            f"{TensorProto.DataType.Name(code)}, which placer does not support") from None

    def value_type(self, vi: onnx.ValueInfoProto) -> TensorType:
        if not vi.type.HasField("tensor_type"):
            raise self.fail(f"graph input {vi.name!r} is not a tensor")
        tt = vi.type.tensor_type
        dims: list[Dim] = []
        for i, d in enumerate(tt.shape.dim):
            if d.HasField("dim_value"):
                dims.append(int(d.dim_value))
            elif d.dim_param:
                try:
                    dims.append(parse_dim(d.dim_param))
                except ValueError:
                    dims.append(Sym.var(_sym_name(d.dim_param)))
            else:
                dims.append(Sym.var(_sym_name(f"{vi.name}_dim{i}")))
        return TensorType(self.dtype(tt.elem_type, f"graph input {vi.name!r}"), tuple(dims))

    def weight(self, t: onnx.TensorProto, role: WeightRole = WeightRole.UNKNOWN) -> Weight:
        dtype = self.dtype(t.data_type, f"initializer {t.name!r}")
        ttype = TensorType(dtype, tuple(int(d) for d in t.dims))
        numel = ttype.numel
        assert isinstance(numel, int)
        size = dtype.storage_bytes(numel)
        if t.data_location == TensorProto.EXTERNAL:
            info = {e.key: e.value for e in t.external_data}
            length = int(info["length"]) if "length" in info else size
            loc = ExternalLocation(info.get("location", ""), int(info.get("offset", 0)), length)
            return Weight(t.name, ttype, length, role, loc)
        try:
            data = numpy_helper.to_array(t).astype(dtype.to_numpy()).reshape(ttype.static_shape)
        except Exception:  # an exotic packing numpy_helper cannot decode: keep only the size
            data = None
        return Weight(t.name, ttype, size, role, None, data)

    def tie_transposed_copies(self) -> None:
        """Restore weight tying the legacy exporter folded away: an inline 2-D initializer
        equal to the transpose of another becomes a Transpose node of that other weight."""
        by_key: dict[tuple, str] = {}
        for name, w in self.weights.items():
            if w.data is not None and w.type.rank == 2 and w.type.dtype.is_float:
                by_key.setdefault((w.type.shape, hashlib.sha1(w.data.tobytes()).digest()), name)
        users = {i for n in self.proto.graph.node for i in n.input}
        order = {name: i for i, name in enumerate(self.weights)}
        for name, w in list(self.weights.items()):
            if w.data is None or w.type.rank != 2 or not w.type.dtype.is_float or name not in users:
                continue
            key = (w.type.shape[::-1], hashlib.sha1(np.ascontiguousarray(w.data.T).tobytes()).digest())
            other = by_key.get(key)
            if other is None or order[other] >= order[name] or w.type.shape[0] == w.type.shape[1]:
                continue
            del self.weights[name]
            self.nodes.insert(0, Node(self.unique_name(onnx.NodeProto(name=f"tie/{name}")),
                                      OpKind.TRANSPOSE, (other,), (name,), A.TransposeAttrs((1, 0)),
                                      ""))

    # -- nodes ------------------------------------------------------------------------------

    def unique_name(self, n: onnx.NodeProto) -> str:
        base = n.name or f"{n.op_type}_{len(self.nodes)}"
        name, k = base, 0
        while name in self.node_names:
            k += 1
            name = f"{base}_{k}"
        self.node_names.add(name)
        return name

    def constant(self, node_name: str, values: Any, dtype: DType = DType.INT64) -> str:
        arr = np.asarray(values).astype(dtype.to_numpy())
        cname = f"{node_name}/const_{len(self.weights)}"
        self.weights[cname] = Weight(cname, TensorType(dtype, tuple(arr.shape)),
                                     dtype.storage_bytes(arr.size), WeightRole.CONSTANT, None, arr)
        return cname

    def fresh_name(self, base: str) -> str:
        """A node name not used yet (for the extra nodes of an expanded op)."""
        name, k = base, 0
        while name in self.node_names:
            k += 1
            name = f"{base}_{k}"
        self.node_names.add(name)
        return name

    def elem_type(self, value: str) -> int | None:
        """The ONNX element type of ``value`` (stored, input, value_info, or ONNX's own type
        inference, run once on demand)."""
        if value in self.weights:
            return _ONNX_CODE.get(self.weights[value].type.dtype)
        if self._elem_types is None:
            g = self.proto.graph
            known = {vi.name: vi.type.tensor_type.elem_type for vi in (*g.input, *g.value_info, *g.output)
                     if vi.type.HasField("tensor_type") and vi.type.tensor_type.elem_type}
            if any(n.op_type == "CastLike" and n.input[1] not in known and n.input[1] not in self.weights
                   for n in g.node):
                try:
                    inferred = onnx.shape_inference.infer_shapes(self.proto)
                    known.update({vi.name: vi.type.tensor_type.elem_type for vi in inferred.graph.value_info
                                  if vi.type.HasField("tensor_type") and vi.type.tensor_type.elem_type})
                except Exception:  # noqa: BLE001 - inference is a best effort; the caller reports
                    pass
            self._elem_types = known
        return self._elem_types.get(value)

    def convert(self, n: onnx.NodeProto) -> None:
        name = self.unique_name(n)
        domain = "" if n.domain in ("", "ai.onnx") else n.domain
        attrs = {a.name: helper.get_attribute_value(a) for a in n.attribute}
        if domain == "" and n.op_type == "Constant":
            self.add_constant_node(n, name, attrs)
            return
        key = (domain, n.op_type)
        scope = _scope_of(n, self.scope_memo)
        expand = CONTRIB_EXPANDERS.get(key) or SEQUENCE_EXPANDERS.get(key)
        if expand is not None:
            try:
                expand(self, name, attrs, list(n.input), list(n.output), scope)
            except (KeyError, ValueError, TypeError) as err:
                raise self.fail(f"node {name!r} ({n.op_type}): bad attributes: {err}") from None
            return
        spec = ONNX_OPS.get(key)
        if spec is None:
            qualified = f"{domain}.{n.op_type}" if domain else n.op_type
            raise self.fail(f"node {name!r}: op {qualified} (domain {domain or 'ai.onnx'}, opset "
                            f"{self.opsets.get(domain, '?')}) is not supported by placer; "
                            "docs/onnx-ops.md lists the supported ops")
        since = _SINCE.get(key, 1)
        if self.opsets.get(domain, 1) < since:
            raise self.fail(f"node {name!r}: op {n.op_type} exists from opset {since}, but the model "
                            f"imports opset {self.opsets.get(domain, 1)} of {domain or 'ai.onnx'}")
        kind, convert = spec
        inputs, outputs = list(n.input), list(n.output)
        try:
            op_attrs, inputs, outputs = convert(self, name, attrs, inputs, outputs)
        except (KeyError, ValueError, TypeError) as err:
            raise self.fail(f"node {name!r} ({n.op_type}): bad attributes: {err}") from None
        if kind in _VARIADIC and len(inputs) != 2:
            self.add_chain(kind, name, inputs, outputs, scope)
            return
        self.nodes.append(Node(name, kind, tuple(inputs), tuple(outputs), op_attrs, scope))

    def add_chain(self, kind: OpKind, name: str, inputs: list[str], outputs: list[str],
                  scope: str) -> None:
        if len(inputs) == 1:
            self.nodes.append(Node(name, OpKind.IDENTITY, tuple(inputs), tuple(outputs[:1]),
                                   A.NoAttrs(), scope))
            return
        acc = inputs[0]
        for i, x in enumerate(inputs[1:], 1):
            out = outputs[0] if i == len(inputs) - 1 else f"{name}/partial_{i}"
            self.nodes.append(Node(f"{name}" if out == outputs[0] else f"{name}/{i}", kind,
                                   (acc, x), (out,), A.NoAttrs(), scope))
            acc = out

    def add_constant_node(self, n: onnx.NodeProto, name: str, attrs: dict[str, Any]) -> None:
        out = n.output[0]
        if "value" in attrs:
            t = TensorProto()
            t.CopyFrom(attrs["value"])
            t.name = out
            self.weights[out] = self.weight(t, WeightRole.CONSTANT)
            return
        table = {"value_float": DType.FLOAT32, "value_floats": DType.FLOAT32,
                 "value_int": DType.INT64, "value_ints": DType.INT64}
        for key, dtype in table.items():
            if key in attrs:
                arr = np.asarray(attrs[key]).astype(dtype.to_numpy())
                self.weights[out] = Weight(out, TensorType(dtype, tuple(arr.shape)),
                                           dtype.storage_bytes(arr.size), WeightRole.CONSTANT,
                                           None, arr)
                return
        raise self.fail(f"node {name!r}: Constant with attributes {sorted(attrs)} is not supported")


def _topological_order(g: onnx.GraphProto, defined: set[str],
                       fail: Callable[[str], UserError]) -> list[onnx.NodeProto]:
    """Nodes in a stable topological order; UserError on a cycle or a dangling input."""
    producer = {o: i for i, n in enumerate(g.node) for o in n.output if o}
    for n in g.node:
        for x in n.input:
            if x and x not in defined and x not in producer:
                raise fail(f"node {n.name or n.op_type!r} ({n.op_type}) reads %{x}, which no node, "
                           "initializer or graph input defines (dangling input)")
    # Exporters write nodes in topological order already; the heap below would give that same
    # order (each next node is the smallest ready index), so check it in one pass and keep it.
    # (A value written twice is left to the general path and the verifier.)
    done = set(defined)
    for n in g.node:
        if not all(x in done for x in n.input if x) or any(o in producer and o in done for o in n.output):
            break
        done.update(n.output)
    else:
        return list(g.node)
    deps = [{producer[x] for x in n.input if x and x not in defined and x in producer}
            for n in g.node]
    users: dict[int, list[int]] = {}
    for i, d in enumerate(deps):
        for j in d:
            users.setdefault(j, []).append(i)
    missing = [len(d) for d in deps]
    ready = [i for i, m in enumerate(missing) if m == 0]
    order: list[int] = []
    heapq.heapify(ready)
    while ready:
        i = heapq.heappop(ready)
        order.append(i)
        for u in users.get(i, []):
            missing[u] -= 1
            if missing[u] == 0:
                heapq.heappush(ready, u)
    if len(order) != len(g.node):
        stuck = next(n for i, n in enumerate(g.node) if missing[i] > 0)
        raise fail(f"the graph has a cycle through node {stuck.name or stuck.op_type!r} "
                   f"({stuck.op_type})")
    return [g.node[i] for i in order]


def _scope_of(n: onnx.NodeProto, memo: dict[str, str]) -> str:
    """Module path: dynamo's name_scopes metadata, or a legacy '/a/b.0/c/Op' node name.

    ``memo`` (one per import) maps the name_scopes text without its last entry (the node's own
    fx name) to the scope: the nodes of one module share that prefix, and parsing the whole
    text for every node was a third of a 126-layer import.
    """
    scopes = namespace = None
    for p in n.metadata_props:
        if p.key == "pkg.torch.onnx.name_scopes":
            scopes = p.value
        elif p.key == "namespace":
            namespace = p.value
    if scopes:
        cut = scopes.rfind(", ")
        key = scopes[:cut] if cut > 0 else scopes
        scope = memo.get(key)
        if scope is None:
            try:
                parts = ast.literal_eval(scopes)
            except (ValueError, SyntaxError):
                parts = []
            scope = parts[-2] if (isinstance(parts, list) and len(parts) >= 2 and isinstance(parts[-2], str)
                                  and not parts[-2].startswith("_empty")) else ""
            memo[key] = scope
        return scope
    if namespace is not None:
        paths = [seg.split(":")[0].strip() for seg in namespace.split("/")]
        return paths[-2] if len(paths) >= 2 and not paths[-2].startswith("_empty") else ""
    if n.name.startswith("/"):
        return ".".join(p for p in n.name.split("/")[1:-1] if p)
    return ""


# -- converters: (importer, node name, attrs, inputs, outputs) -> (attrs, inputs, outputs) ----

Converted = tuple[A.Attrs, list[str], list[str]]


def _plain(imp: _Importer, name: str, a: dict, ins: list[str], outs: list[str]) -> Converted:
    return A.NoAttrs(), ins, outs


def _gemm(imp: _Importer, name: str, a: dict, ins: list[str], outs: list[str]) -> Converted:
    return A.GemmAttrs(float(a.get("alpha", 1.0)), float(a.get("beta", 1.0)),
                       bool(a.get("transA", 0)), bool(a.get("transB", 0))), ins, outs


_FNUZ = (TensorProto.FLOAT8E4M3FNUZ, TensorProto.FLOAT8E5M2FNUZ)


def _cast(imp: _Importer, name: str, a: dict, ins: list[str], outs: list[str]) -> Converted:
    if int(a["to"]) in _FNUZ:
        # Reading FNUZ data is exact (its values become float32); rounding to it is not
        # representable: placer's 8-bit floats are the OCP E4M3FN and E5M2 formats.
        raise imp.fail(f"node {name!r}: Cast to {TensorProto.DataType.Name(int(a['to']))} is not "
                       "supported; cast to FLOAT8E4M3FN or FLOAT8E5M2 instead")
    return A.CastAttrs(imp.dtype(int(a["to"]), f"Cast {name!r}"), bool(a.get("saturate", 1))), ins, outs


def _cast_like(imp: _Importer, name: str, a: dict, ins: list[str], outs: list[str]) -> Converted:
    code = imp.elem_type(ins[1])
    if code is None:
        raise imp.fail(f"node {name!r}: CastLike target %{ins[1]} has no known element type; "
                       "export with value_info or run onnx.shape_inference first")
    return _cast(imp, name, {"to": code, "saturate": a.get("saturate", 1)}, ins[:1], outs)


def _clip(imp: _Importer, name: str, a: dict, ins: list[str], outs: list[str]) -> Converted:
    if "min" in a or "max" in a:  # opset < 11
        ins = [ins[0], imp.constant(name, a.get("min", -3.4e38), DType.FLOAT32),
               imp.constant(name, a.get("max", 3.4e38), DType.FLOAT32)]
    return A.ClipAttrs(), ins, outs


def _gelu(imp: _Importer, name: str, a: dict, ins: list[str], outs: list[str]) -> Converted:
    approx = a.get("approximate", b"none")
    return A.GeluAttrs(approx.decode() if isinstance(approx, bytes) else approx), ins, outs


def _axis(default: int) -> Callable[..., Converted]:
    def conv(imp: _Importer, name: str, a: dict, ins: list[str], outs: list[str]) -> Converted:
        return A.AxisAttrs(int(a.get("axis", default))), ins, outs
    return conv


def _softmax(imp: _Importer, name: str, a: dict, ins: list[str], outs: list[str]) -> Converted:
    return A.AxisAttrs(int(a.get("axis", -1 if imp.opset >= 13 else 1))), ins, outs


def _split(imp: _Importer, name: str, a: dict, ins: list[str], outs: list[str]) -> Converted:
    if "split" in a:  # opset < 13
        ins = [ins[0], imp.constant(name, list(a["split"]))]
    n = a.get("num_outputs")
    return A.SplitAttrs(int(a.get("axis", 0)), int(n) if n is not None else None), ins, outs


def _norm(imp: _Importer, name: str, a: dict, ins: list[str], outs: list[str]) -> Converted:
    return A.NormAttrs(int(a.get("axis", -1)), float(a.get("epsilon", 1e-5)),
                       int(a.get("stash_type", 1))), ins, outs


def _reduce(imp: _Importer, name: str, a: dict, ins: list[str], outs: list[str]) -> Converted:
    axes = tuple(int(x) for x in a["axes"]) if "axes" in a else None
    return A.ReduceAttrs(axes, bool(a.get("keepdims", 1)),
                         bool(a.get("noop_with_empty_axes", 0))), ins, outs


def _arg_max(imp: _Importer, name: str, a: dict, ins: list[str], outs: list[str]) -> Converted:
    return A.ArgMaxAttrs(int(a.get("axis", 0)), bool(a.get("keepdims", 1)),
                         bool(a.get("select_last_index", 0))), ins, outs


def _top_k(imp: _Importer, name: str, a: dict, ins: list[str], outs: list[str]) -> Converted:
    if "k" in a:  # opset < 10
        ins = [ins[0], imp.constant(name, [int(a["k"])])]
    return A.TopKAttrs(int(a.get("axis", -1)), bool(a.get("largest", 1)),
                       bool(a.get("sorted", 1))), ins, outs


def _reshape(imp: _Importer, name: str, a: dict, ins: list[str], outs: list[str]) -> Converted:
    return A.ReshapeAttrs(bool(a.get("allowzero", 0))), ins, outs


def _transpose(imp: _Importer, name: str, a: dict, ins: list[str], outs: list[str]) -> Converted:
    perm = tuple(int(p) for p in a["perm"]) if "perm" in a else None
    return A.TransposeAttrs(perm), ins, outs


def _slice(imp: _Importer, name: str, a: dict, ins: list[str], outs: list[str]) -> Converted:
    if "starts" in a:  # opset < 10
        ins = [ins[0], imp.constant(name, list(a["starts"])), imp.constant(name, list(a["ends"]))]
        if "axes" in a:
            ins.append(imp.constant(name, list(a["axes"])))
    return A.NoAttrs(), ins, outs


def _squeeze(imp: _Importer, name: str, a: dict, ins: list[str], outs: list[str]) -> Converted:
    axes = tuple(int(x) for x in a["axes"]) if "axes" in a else None
    return A.SqueezeAttrs(axes), ins, outs


def _gather_nd(imp: _Importer, name: str, a: dict, ins: list[str], outs: list[str]) -> Converted:
    return A.GatherNDAttrs(int(a.get("batch_dims", 0))), ins, outs


def _scatter_nd(imp: _Importer, name: str, a: dict, ins: list[str], outs: list[str]) -> Converted:
    r = a.get("reduction", b"none")
    return A.ScatterNDAttrs(r.decode() if isinstance(r, bytes) else r), ins, outs


def _trilu(imp: _Importer, name: str, a: dict, ins: list[str], outs: list[str]) -> Converted:
    return A.TriluAttrs(bool(a.get("upper", 1))), ins, outs


def _shape(imp: _Importer, name: str, a: dict, ins: list[str], outs: list[str]) -> Converted:
    end = a.get("end")
    return A.ShapeAttrs(int(a.get("start", 0)), int(end) if end is not None else None), ins, outs


def _constant_of_shape(imp: _Importer, name: str, a: dict, ins: list[str],
                       outs: list[str]) -> Converted:
    if "value" not in a:
        return A.ConstantOfShapeAttrs(0.0, DType.FLOAT32), ins, outs
    t = a["value"]
    dtype = imp.dtype(t.data_type, f"ConstantOfShape {name!r}")
    v = numpy_helper.to_array(t).reshape(-1)[0].item()
    return A.ConstantOfShapeAttrs(v, dtype), ins, outs


def _rotary(imp: _Importer, name: str, a: dict, ins: list[str], outs: list[str]) -> Converted:
    return A.RotaryAttrs(bool(a.get("interleaved", 0)), int(a.get("num_heads", 0)),
                         int(a.get("rotary_embedding_dim", 0))), ins, outs


def _attention(imp: _Importer, name: str, a: dict, ins: list[str], outs: list[str]) -> Converted:
    scale = a.get("scale")
    prec = a.get("softmax_precision")
    return A.AttentionAttrs(bool(a.get("is_causal", 0)), int(a.get("kv_num_heads", 0)),
                            int(a.get("q_num_heads", 0)), int(a.get("qk_matmul_output_mode", 0)),
                            float(scale) if scale is not None else None,
                            float(a.get("softcap", 0.0)),
                            int(prec) if prec is not None else None,
                            _left_window(int(a.get("left_window_size", -1))),
                            int(a.get("right_window_size", -1))), ins, outs


def _left_window(left: int) -> int:
    """ONNX ``left_window_size`` L (keys p - L .. p; -1 unbounded) as placer's ``window``
    (this many keys ending at the query's position; 0 unbounded): L + 1."""
    if left < -1:
        raise ValueError(f"left_window_size must be -1 or >= 0, got {left}")
    return left + 1


def _is_inf(imp: _Importer, name: str, a: dict, ins: list[str], outs: list[str]) -> Converted:
    return A.IsInfAttrs(bool(a.get("detect_negative", 1)), bool(a.get("detect_positive", 1))), ins, outs


def _cum_sum(imp: _Importer, name: str, a: dict, ins: list[str], outs: list[str]) -> Converted:
    return A.CumSumAttrs(bool(a.get("exclusive", 0)), bool(a.get("reverse", 0))), ins, outs


def _dropout(imp: _Importer, name: str, a: dict, ins: list[str], outs: list[str]) -> Converted:
    if len(ins) > 2 and ins[2] and not _is_false_constant(imp, ins[2]):
        raise imp.fail(f"node {name!r}: Dropout with a training_mode input is not supported "
                       "(placer runs inference); export the model in eval mode")
    return A.NoAttrs(), ins[:1], outs[:1]  # inference: identity; the mask output is dropped


def _is_false_constant(imp: _Importer, value: str) -> bool:
    w = imp.weights.get(value)
    return w is not None and w.data is not None and not np.asarray(w.data).any()


_SIMPLE = {
    "MatMul": OpKind.MATMUL, "Add": OpKind.ADD, "Sub": OpKind.SUB, "Mul": OpKind.MUL,
    "Div": OpKind.DIV, "Pow": OpKind.POW, "Max": OpKind.MAX, "Min": OpKind.MIN, "Sum": OpKind.ADD,
    "Equal": OpKind.EQUAL, "Less": OpKind.LESS, "LessOrEqual": OpKind.LESS_OR_EQUAL,
    "Greater": OpKind.GREATER, "GreaterOrEqual": OpKind.GREATER_OR_EQUAL, "And": OpKind.AND,
    "Or": OpKind.OR, "Where": OpKind.WHERE, "Neg": OpKind.NEG, "Abs": OpKind.ABS,
    "Sqrt": OpKind.SQRT, "Reciprocal": OpKind.RECIPROCAL, "Exp": OpKind.EXP, "Log": OpKind.LOG,
    "Tanh": OpKind.TANH, "Sigmoid": OpKind.SIGMOID, "Erf": OpKind.ERF, "Relu": OpKind.RELU,
    "Cos": OpKind.COS, "Sin": OpKind.SIN, "Not": OpKind.NOT, "IsNaN": OpKind.IS_NAN,
    "Identity": OpKind.IDENTITY, "Expand": OpKind.EXPAND,
    "Tile": OpKind.TILE, "Range": OpKind.RANGE,
}
_VARIADIC = frozenset({OpKind.MAX, OpKind.MIN, OpKind.ADD})

# The one table from ONNX op names to op kinds and attribute converters.
_OPS: dict[str, tuple[OpKind, Callable[..., Converted]]] = {
    **{k: (v, _plain) for k, v in _SIMPLE.items()},
    "Gemm": (OpKind.GEMM, _gemm),
    "Cast": (OpKind.CAST, _cast),
    "CastLike": (OpKind.CAST, _cast_like),
    "Clip": (OpKind.CLIP, _clip),
    "Gelu": (OpKind.GELU, _gelu),
    "Dropout": (OpKind.IDENTITY, _dropout),
    "IsInf": (OpKind.IS_INF, _is_inf),
    "Softmax": (OpKind.SOFTMAX, _softmax),
    "LayerNormalization": (OpKind.LAYER_NORM, _norm),
    "RMSNormalization": (OpKind.RMS_NORM, _norm),
    "RotaryEmbedding": (OpKind.ROTARY_EMBEDDING, _rotary),
    "Attention": (OpKind.ATTENTION, _attention),
    "ReduceMean": (OpKind.REDUCE_MEAN, _reduce),
    "ReduceSum": (OpKind.REDUCE_SUM, _reduce),
    "ReduceMax": (OpKind.REDUCE_MAX, _reduce),
    "ArgMax": (OpKind.ARG_MAX, _arg_max),
    "TopK": (OpKind.TOP_K, _top_k),
    "Reshape": (OpKind.RESHAPE, _reshape),
    "Transpose": (OpKind.TRANSPOSE, _transpose),
    "Concat": (OpKind.CONCAT, _axis(0)),
    "Split": (OpKind.SPLIT, _split),
    "Slice": (OpKind.SLICE, _slice),
    "Squeeze": (OpKind.SQUEEZE, _squeeze),
    "Unsqueeze": (OpKind.UNSQUEEZE, _squeeze),
    "Flatten": (OpKind.FLATTEN, _axis(1)),
    "Gather": (OpKind.GATHER, _axis(0)),
    "GatherND": (OpKind.GATHER_ND, _gather_nd),
    "GatherElements": (OpKind.GATHER_ELEMENTS, _axis(0)),
    "ScatterND": (OpKind.SCATTER_ND, _scatter_nd),
    "OneHot": (OpKind.ONE_HOT, _axis(-1)),
    "Trilu": (OpKind.TRILU, _trilu),
    "Shape": (OpKind.SHAPE, _shape),
    "ConstantOfShape": (OpKind.CONSTANT_OF_SHAPE, _constant_of_shape),
    "CumSum": (OpKind.CUM_SUM, _cum_sum),
}

# Every (domain, op type) placer imports: ONNX's default domain and onnxruntime's contrib ops.
ONNX_OPS: dict[tuple[str, str], tuple[OpKind, Callable[..., Converted]]] = {
    **{("", k): v for k, v in _OPS.items()}, **CONTRIB_OPS,
}
# The first opset of the default domain that defines an op (earlier opsets: a UserError).
_SINCE = {("", "RMSNormalization"): 23, ("", "RotaryEmbedding"): 23, ("", "Attention"): 23,
          ("", "CastLike"): 15}
_ONNX_CODE = {v: k for k, v in reversed(list(ONNX_DTYPES.items()))}

SUPPORTED_OPS = frozenset(_OPS) | {"Constant", "SplitToSequence", "SequenceAt"} | {
    f"{d}.{o}" if d else o for d, o in (*CONTRIB_OPS, *CONTRIB_EXPANDERS)}
