"""Checks on an ONNX ModelProto before placer trusts any of its numbers.

placer never reads external weight files, so the sizes it plans with come from metadata: a
tensor's dims and element type, and an external tensor's ``offset``/``length`` entries. A
malformed file must not become a plan (a negative length once made a 100 GB model "fit" on one
wafer), so the metadata is checked first, each failure one ``UserError`` line naming the file,
the tensor or node and the field:

* IR version and every opset known to the installed onnx (default domain) or positive, one
  opset_import per domain ('' and 'ai.onnx' are one domain);
* initializer names unique;
* initializers: an element type onnx knows, dims >= 0, inline data whose length equals
  dims x element size (raw bytes or typed fields), or external data whose ``location`` is a
  relative path inside the model's folder (no absolute path, no ``..``, no symlink leading out),
  whose ``offset`` and ``length`` are non-negative integers, whose length equals the bytes
  the dims and element type need, and whose ``offset + length`` lies inside its file (only the
  file's size is read). When every external file is absent the weights are references only
  (``placer export --weights none``, a meta-device export, an .onnx copied without its data):
  ``inspect`` and ``compile`` plan from the metadata, ``run`` needs the files. Some files
  present and others absent is a broken copy and an error;
* graph inputs, outputs and value_info: element types onnx knows, static dims >= 0 and at most
  ``MAX_DIM``, a graph input of at most ``MAX_ELEMENTS`` static elements; an input sharing an
  initializer's name has its type and dims;
* default-domain nodes: input and output counts, attribute names and attribute types the op's
  schema allows, every attribute it requires (``Cast`` without ``to``);
* after import (``check_operand_types``): a default-domain node's input element types are ones
  its schema's type constraints take at the model's opset, one type for the inputs a constraint
  binds (no ``MatMul`` of float and int64, no ``Gather`` indices of float);
* after import (``check_declared_types``): a graph output's or value_info's declared element type
  and static dims agree with what placer infers from its producer;
* external data files that exist are regular files (a folder or a symlink loop is an error,
  not an absent file);
* every graph output is produced by a node or is a graph input or initializer;
* at most ``MAX_NODES`` nodes and ``MAX_INITIALIZERS`` initializers (documented caps; a file
  past them is refused before any per-node work).
"""

from __future__ import annotations

import math
import os
import stat
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import onnx
from onnx import TensorProto

from placer.errors import UserError

MAX_NODES = 5_000_000
MAX_INITIALIZERS = 5_000_000
#: Largest static dim of a graph input, output or value_info (int32's; real dims are far smaller),
#: and most elements of one graph input with static dims: past them sizes overflow the solver.
MAX_DIM = 2**31 - 1
MAX_ELEMENTS = 2**40
#: An external tensor's offset + length must stay below this (the largest file offset, int64).
MAX_FILE_OFFSET = 2**63 - 1

_FOUR_BIT = {TensorProto.INT4, TensorProto.UINT4, TensorProto.FLOAT4E2M1}
_KNOWN_TYPES = set(TensorProto.DataType.values()) - {TensorProto.UNDEFINED}
_TYPED_FIELDS = ("float_data", "int32_data", "int64_data", "double_data", "uint64_data", "string_data")


def _element_bits(data_type: int) -> int | None:
    """Bits per element of a numeric ONNX type (None for strings)."""
    if data_type == TensorProto.STRING:
        return None
    if data_type in _FOUR_BIT:
        return 4
    try:
        np_type = onnx.helper.tensor_dtype_to_np_dtype(data_type)
    except (KeyError, ValueError, TypeError):
        return None
    return int(np_type.itemsize) * 8


def tensor_bytes(t: onnx.TensorProto) -> int | None:
    """Bytes the tensor's dims and element type need (None when not a fixed-size type)."""
    bits = _element_bits(t.data_type)
    if bits is None:
        return None
    return math.ceil(math.prod(int(d) for d in t.dims) * bits / 8)


def _check_location(location: str, where: str, model_dir: Path | None) -> None:
    if not location:
        raise UserError(f"{where}: external data has no 'location'; give the weight file's name")
    if "\x00" in location:
        raise UserError(f"{where}: external data location contains a NUL byte")
    path = Path(location)
    if path.is_absolute() or location.startswith(("/", "\\")) or ":" in path.parts[0]:
        raise UserError(f"{where}: external data location {location!r} is absolute; it must be a path "
                        f"relative to the model's folder")
    if ".." in path.parts or ".." in location.replace("\\", "/").split("/"):
        raise UserError(f"{where}: external data location {location!r} leaves the model's folder ('..')")
    if model_dir is not None:
        base = os.path.realpath(model_dir)
        resolved = os.path.realpath(os.path.join(base, location))
        if os.path.commonpath([base, resolved]) != base:
            raise UserError(f"{where}: external data location {location!r} leads out of the model's "
                            f"folder through a symlink")


def _check_int_field(value: str, key: str, where: str) -> int:
    text = value.strip()
    if not text.isdigit():
        raise UserError(f"{where}: external data {key} {value!r} is not a non-negative integer")
    return int(text)


def _check_initializer(t: onnx.TensorProto, label: str, model_dir: Path | None,
                       external_sizes: dict[str, int | None] | None = None,
                       checked_locations: set[str] | None = None) -> None:
    """``checked_locations``: locations that already passed ``_check_location`` in this model
    (the check resolves real paths; a full-size export names one file ~1,000 times)."""
    where = f"{label}: initializer {t.name!r}"
    if t.data_type not in _KNOWN_TYPES:
        raise UserError(f"{where}: element type {t.data_type} is not an ONNX type")
    if any(d < 0 for d in t.dims):
        raise UserError(f"{where}: dims {list(t.dims)} contain a negative size")
    expected = tensor_bytes(t)
    if t.data_location == TensorProto.EXTERNAL:
        if t.HasField("raw_data") or any(len(getattr(t, f)) for f in _TYPED_FIELDS):
            raise UserError(f"{where}: its data location is EXTERNAL but it also holds data in the model "
                            f"file; a tensor keeps its data in one place (the file is corrupt or was edited)")
        info: dict[str, str] = {}
        for entry in t.external_data:
            if entry.key in info:
                raise UserError(f"{where}: external data key {entry.key!r} is given twice")
            info[entry.key] = entry.value
        location = info.get("location", "")
        if checked_locations is None or location not in checked_locations:
            _check_location(location, where, model_dir)
            if checked_locations is not None:
                checked_locations.add(location)
        offset = _check_int_field(info["offset"], "offset", where) if "offset" in info else 0
        length = expected or 0
        if "length" in info:
            length = _check_int_field(info["length"], "length", where)
            if expected is not None and length != expected:
                raise UserError(f"{where}: external data length {length:,} B differs from the {expected:,} B "
                                f"its dims {list(t.dims)} and element type need; re-export the model")
        if offset + length > MAX_FILE_OFFSET:
            raise UserError(f"{where}: external data offset {offset:,} + length {length:,} B in {location!r} "
                            f"is past any file's end (2^63 B); the file is corrupt or was edited")
        if model_dir is not None and external_sizes is not None:
            size = external_sizes.get(location)
            if size is not None and offset + length > size:
                raise UserError(f"{where}: external data ends at byte {offset + length:,} (offset {offset:,} "
                                f"+ length {length:,}) but {location!r} holds {size:,} B; the weight file "
                                f"is truncated or belongs to another export")
        return
    numel = math.prod(int(d) for d in t.dims)
    if t.HasField("raw_data"):
        typed = [f for f in _TYPED_FIELDS if len(getattr(t, f))]
        if typed:
            raise UserError(f"{where}: holds both raw_data and {typed[0]}; a tensor keeps its data in one "
                            f"of them (the file is corrupt or was edited)")
        if expected is not None and len(t.raw_data) != expected:
            raise UserError(f"{where}: raw data is {len(t.raw_data):,} B but dims {list(t.dims)} need "
                            f"{expected:,} B; the file is corrupt or was edited")
        return
    counts = {f: len(getattr(t, f)) for f in _TYPED_FIELDS if len(getattr(t, f))}
    if not counts:
        if numel:
            raise UserError(f"{where}: dims {list(t.dims)} but no data")
        return
    field, count = next(iter(counts.items()))
    want = math.ceil(numel / 2) if t.data_type in _FOUR_BIT else numel
    if t.data_type in (TensorProto.COMPLEX64, TensorProto.COMPLEX128):
        want = 2 * numel
    if len(counts) > 1 or count != want:
        raise UserError(f"{where}: {field} holds {count:,} values but dims {list(t.dims)} need {want:,}; "
                        f"the file is corrupt or was edited")


def check_model_proto(proto: onnx.ModelProto, label: str, model_dir: Path | None = None) -> None:
    """Raise a one-line ``UserError`` for the first malformed field of ``proto``."""
    if proto.ir_version > onnx.IR_VERSION:
        raise UserError(f"{label}: IR version {proto.ir_version} is newer than the {onnx.IR_VERSION} the "
                        f"installed onnx ({onnx.__version__}) knows; re-export with an older IR version")
    newest = onnx.defs.onnx_opset_version()
    if not proto.opset_import:   # onnx's checker requires one from IR version 3 on: ops mean what it says
        raise UserError(f"{label}: the model imports no opset (opset_import is empty), so its ops have no "
                        f"defined meaning; re-export it (an exporter writes the opset it used)")
    seen_domains: set[str] = set()
    for imp in proto.opset_import:
        domain = "" if imp.domain == "ai.onnx" else imp.domain
        if domain in seen_domains:
            raise UserError(f"{label}: opset of domain {imp.domain or 'ai.onnx'!r} is imported twice; "
                            f"keep one opset_import per domain")
        seen_domains.add(domain)
        if imp.version < 1:
            raise UserError(f"{label}: opset of domain {imp.domain or 'ai.onnx'!r} is {imp.version}; "
                            f"opsets start at 1")
        if imp.domain in ("", "ai.onnx") and imp.version > newest:
            raise UserError(f"{label}: default-domain opset {imp.version} is newer than {newest}, the newest "
                            f"the installed onnx ({onnx.__version__}) knows; re-export at opset <= {newest}")
    g = proto.graph
    if len(g.node) > MAX_NODES or len(g.initializer) > MAX_INITIALIZERS:
        raise UserError(f"{label}: {len(g.node):,} nodes and {len(g.initializer):,} initializers, past "
                        f"placer's caps of {MAX_NODES:,} and {MAX_INITIALIZERS:,}")
    names: set[str] = set()
    for t in g.initializer:
        if t.name in names:
            raise UserError(f"{label}: initializer {t.name!r} is defined twice; initializer names must be "
                            f"unique (re-export the model)")
        names.add(t.name)
    sizes = external_file_sizes(g, model_dir) if model_dir is not None else None
    checked: set[str] = set()
    for t in g.initializer:
        _check_initializer(t, label, model_dir, sizes, checked)
    _check_graph_values(g, label, {t.name: t for t in g.initializer})
    _check_node_schemas(proto, label)
    if not g.output:
        raise UserError(f"{label}: the graph has no outputs, so it computes nothing; declare its outputs "
                        f"(e.g. logits) and re-export")
    producer: dict[str, str] = {i.name: "a graph input" for i in g.input}
    producer.update({t.name: "an initializer" for t in g.initializer})
    for n in g.node:
        for o in n.output:
            if not o:
                continue
            if o in producer:   # SSA: one definition per value
                raise UserError(f"{label}: value {o!r} is defined twice, by {producer[o]} and by node "
                                f"{n.name or n.op_type!r} ({n.op_type}); each value has one producer "
                                f"(rename one output)")
            producer[o] = f"node {n.name or n.op_type!r} ({n.op_type})"
    produced = set(producer)
    for out in g.output:
        if out.name not in produced:
            raise UserError(f"{label}: graph output {out.name!r} is produced by no node; fix or remove it")


def _check_graph_values(g: onnx.GraphProto, label: str, initializers: dict[str, onnx.TensorProto]) -> None:
    """Graph inputs, outputs and value_info: element types onnx knows, static dims >= 0 and at
    most ``MAX_DIM``, at most ``MAX_ELEMENTS`` elements per input; an input that shares an
    initializer's name (its default value) has the initializer's type and dims."""
    for kind, values in (("graph input", g.input), ("graph output", g.output), ("value_info", g.value_info)):
        for vi in values:
            if not vi.type.HasField("tensor_type"):
                continue
            tt = vi.type.tensor_type
            where = f"{label}: {kind} {vi.name!r}"
            if tt.elem_type and tt.elem_type not in _KNOWN_TYPES:
                raise UserError(f"{where}: element type {tt.elem_type} is not an ONNX type")
            static = [d.dim_value for d in tt.shape.dim if d.HasField("dim_value")]
            if any(d < 0 for d in static):
                raise UserError(f"{where}: dims {static} contain a negative size")
            if any(d > MAX_DIM for d in static):
                raise UserError(f"{where}: dim {max(static):,} is past placer's cap of {MAX_DIM:,} per "
                                f"dimension (placer.frontends.onnx_checks.MAX_DIM); use a symbolic dim")
            if kind == "graph input" and math.prod(static) > MAX_ELEMENTS:
                raise UserError(f"{where}: its static dims {static} hold {math.prod(static):.3g} elements, "
                                f"past placer's cap of {MAX_ELEMENTS:,} (onnx_checks.MAX_ELEMENTS)")
            init = initializers.get(vi.name) if kind == "graph input" else None
            if init is not None:
                dims = [d.dim_value if d.HasField("dim_value") else None for d in tt.shape.dim]
                same_dims = not tt.HasField("shape") or (
                    len(dims) == len(init.dims) and all(d is None or d == i for d, i in zip(dims, init.dims)))
                if (tt.elem_type and tt.elem_type != init.data_type) or not same_dims:
                    raise UserError(f"{where} shares initializer {vi.name!r}'s name but not its type and "
                                    f"dims ({list(init.dims)}); rename one of them or make them agree")


def _check_node_schemas(proto: onnx.ModelProto, label: str) -> None:
    """Each default-domain node that onnx has a schema for: input and output counts within the
    schema's, attribute names the schema knows, the attributes it requires (other domains and
    unknown ops are the importer's to report)."""
    opset = next((imp.version for imp in proto.opset_import if imp.domain in ("", "ai.onnx")), None)
    if opset is None:
        return
    schemas: dict[str, object] = {}
    for n in proto.graph.node:
        if n.domain not in ("", "ai.onnx"):
            continue
        if n.op_type not in schemas:
            try:
                schemas[n.op_type] = onnx.defs.get_schema(n.op_type, opset, "")
            except onnx.defs.SchemaError:
                schemas[n.op_type] = None
        schema = schemas[n.op_type]
        if not isinstance(schema, onnx.defs.OpSchema):
            continue
        where = f"{label}: node {n.name or n.op_type!r} ({n.op_type})"
        inputs = len(n.input)
        if not schema.min_input <= inputs <= schema.max_input:
            raise UserError(f"{where} has {inputs} inputs; {n.op_type} takes {schema.min_input} to "
                            f"{schema.max_input} at opset {opset}")
        outputs = len(n.output)
        if not schema.min_output <= outputs <= schema.max_output:
            raise UserError(f"{where} has {outputs} outputs; {n.op_type} gives {schema.min_output} to "
                            f"{schema.max_output} at opset {opset}")
        unknown = [a.name for a in n.attribute if a.name not in schema.attributes]
        if unknown:
            raise UserError(f"{where} has attribute {unknown[0]!r}, which {n.op_type} does not have at "
                            f"opset {opset}")
        given = {a.name for a in n.attribute}
        lacking = [k for k, spec in schema.attributes.items() if spec.required and k not in given]
        if lacking:
            raise UserError(f"{where} lacks attribute {lacking[0]!r}, which {n.op_type} requires at "
                            f"opset {opset}; add it")
        for a in n.attribute:
            want = schema.attributes[a.name].type
            if a.type and a.type != want:
                raise UserError(f"{where}: attribute {a.name!r} has type {_attr_type(a.type)}, "
                                f"but {n.op_type}'s {a.name!r} is {_attr_type(want)} at opset {opset}; "
                                f"fix the attribute")


def _attr_type(code: object) -> str:
    try:
        return str(onnx.AttributeProto.AttributeType.Name(int(code)))  # type: ignore[call-overload]  # onnx's enum types are untyped ints
    except ValueError:
        return f"unknown type {code}"


#: Default-domain ops whose schema puts all these inputs in one type constraint ``T``.
_SAME_TYPE_INPUTS: dict[str, slice] = {
    **{op: slice(0, None) for op in ("Add", "Sub", "Mul", "Div", "Max", "Min", "Mean", "Sum", "Equal",
                                      "Less", "LessOrEqual", "Greater", "GreaterOrEqual", "And", "Or", "Xor",
                                      "Concat")},
    "Where": slice(1, 3),
}


def check_operand_types(proto: onnx.ModelProto, types: Mapping[str, Any], dtypes: Mapping[int, Any],
                        label: str) -> None:
    """Each default-domain node's inputs have element types its schema takes at the model's
    opset, as onnx's checker and onnxruntime require (placer would otherwise take the first
    input's type and go on): a type its constraint allows (no ``Relu`` of int64, no ``Gather``
    indices of float), and one type for all the inputs one constraint binds (``Add``'s ``A`` and
    ``B``, ``MatMul``'s). An input's type is the file's (initializer, ``Constant``, graph input,
    value_info), else the one placer inferred (``dtypes``: ONNX code -> placer dtype); inputs of
    unknown type, other domains and ops without a schema are not checked."""
    g = proto.graph
    for n in g.node:
        span = _SAME_TYPE_INPUTS.get(n.op_type) if n.domain in ("", "ai.onnx") else None
        if span is None:
            continue
        typed = [(name, types[name].dtype) for name in n.input[span] if name and name in types]
        kinds = {dtype for _, dtype in typed}
        if len(kinds) > 1:
            shown = ", ".join(f"{name!r} {dtype.name.lower()}" for name, dtype in typed)
            raise UserError(f"{label}: node {n.name or n.op_type!r} ({n.op_type}) takes inputs of one "
                            f"element type, got {shown}; insert a Cast")
    opset = next((imp.version for imp in proto.opset_import if imp.domain in ("", "ai.onnx")), None)
    if opset is None:
        return
    declared = _declared_codes(g)
    codes_of: dict[Any, set[int]] = {}
    for code, dtype in dtypes.items():
        codes_of.setdefault(dtype, set()).add(code)
    schemas: dict[str, _Typing | None] = {}
    for n in g.node:
        if n.domain not in ("", "ai.onnx"):
            continue
        if n.op_type not in schemas:
            schemas[n.op_type] = _typing(n.op_type, opset)
        typing = schemas[n.op_type]
        if typing is None:
            continue
        bound: dict[str, tuple[str, str, int]] = {}  # constraint -> (param, value, code)
        for i, value in enumerate(n.input):
            param = typing.param(i)
            if not value or param is None:
                continue
            formal, key, allowed, homogeneous = param
            if value in declared:
                codes = {declared[value]}
            elif value in types and types[value].dtype in codes_of:
                codes = codes_of[types[value].dtype]
            else:
                continue
            where = f"{label}: node {n.name or n.op_type!r} ({n.op_type}): input {formal!r} (%{value})"
            code = min(codes)
            if allowed and not codes & allowed:
                shown = ", ".join(_TYPE_NAMES[c] for c in sorted(allowed, key=_TYPE_NAMES.__getitem__))
                what = f"its {key}" if key else "it"
                raise UserError(f"{where} is {_TYPE_NAMES[code]}, which {n.op_type} does not take at opset "
                                f"{opset} ({what}: {shown}); insert a Cast or fix the producer")
            if key is None or not homogeneous:
                continue
            first = bound.setdefault(key, (formal, value, code))
            if dtypes.get(first[2]) != dtypes.get(code) and first[2] != code:
                raise UserError(f"{where} is {_TYPE_NAMES[code]}, but input {first[0]!r} (%{first[1]}) is "
                                f"{_TYPE_NAMES[first[2]]}; {n.op_type}'s {key} is one element type for "
                                f"both: insert a Cast")


#: ONNX element type code -> the name the op schemas use (``tensor(float)``'s ``float``).
_TYPE_NAMES = {code: str(TensorProto.DataType.Name(code)).lower() for code in _KNOWN_TYPES}
_TYPE_CODES = {name: code for code, name in _TYPE_NAMES.items()}


class _Typing:
    """An op schema's input type constraints: per formal input, its constraint's name (None for
    a fixed type), the tensor element types allowed (empty: not checked) and whether a variadic
    input's values share one type."""

    def __init__(self, schema: onnx.defs.OpSchema) -> None:
        constraints = {c.type_param_str: list(c.allowed_type_strs) for c in schema.type_constraints}
        self.params: list[tuple[str, str | None, set[int], bool]] = []
        for p in schema.inputs:
            key: str | None = p.type_str if p.type_str in constraints else None
            strs = constraints[p.type_str] if key else [p.type_str]
            allowed = {_TYPE_CODES[s[7:-1]] for s in strs
                       if s.startswith("tensor(") and s.endswith(")") and s[7:-1] in _TYPE_CODES}
            if len(allowed) != sum(s.startswith("tensor(") for s in strs):
                allowed = set()  # a type placer does not name: leave the input unchecked
            self.params.append((p.name, key, allowed, bool(p.is_homogeneous)))
        self.variadic = bool(schema.inputs) and \
            schema.inputs[-1].option == onnx.defs.OpSchema.FormalParameterOption.Variadic

    def param(self, i: int) -> tuple[str, str | None, set[int], bool] | None:
        if i < len(self.params):
            return self.params[i]
        return self.params[-1] if self.variadic else None


def _typing(op_type: str, opset: int) -> _Typing | None:
    try:
        return _Typing(onnx.defs.get_schema(op_type, opset, ""))
    except onnx.defs.SchemaError:
        return None


def _declared_codes(g: onnx.GraphProto) -> dict[str, int]:
    """Element types the file itself gives: initializers, ``Constant`` outputs, graph inputs and
    value_info (graph outputs and value_info of produced values were checked against placer's
    inference already)."""
    out = {vi.name: vi.type.tensor_type.elem_type for vi in (*g.value_info, *g.input)
           if vi.type.HasField("tensor_type") and vi.type.tensor_type.elem_type in _KNOWN_TYPES}
    out.update({t.name: t.data_type for t in g.initializer if t.data_type in _KNOWN_TYPES})
    fixed = {"value_float": TensorProto.FLOAT, "value_floats": TensorProto.FLOAT,
             "value_int": TensorProto.INT64, "value_ints": TensorProto.INT64,
             "value_string": TensorProto.STRING, "value_strings": TensorProto.STRING}
    for n in g.node:
        if n.op_type != "Constant" or n.domain not in ("", "ai.onnx") or not n.output:
            continue
        for a in n.attribute:
            if a.name == "value" and a.t.data_type in _KNOWN_TYPES:
                out[n.output[0]] = a.t.data_type
            elif a.name in fixed:
                out[n.output[0]] = fixed[a.name]
    return out


def check_declared_types(g: onnx.GraphProto, types: Mapping[str, Any], dtypes: Mapping[int, Any],
                         label: str) -> None:
    """Each graph output and value_info of a node's output that placer typed: the declared element type is the
    one placer inferred from the producers, and the declared static dims match (a symbolic or
    missing dim matches anything; a declaration of another rank must at least hold as many
    elements when both shapes are static). A contradiction is an error naming the value."""
    produced = {o for n in g.node for o in n.output if o}  # not weights: quantized ones are retyped
    for kind, values in (("graph output", g.output), ("value_info", g.value_info)):
        for vi in values:
            got = types.get(vi.name)
            if got is None or vi.name not in produced or not vi.type.HasField("tensor_type"):
                continue
            tt = vi.type.tensor_type
            where = f"{label}: {kind} {vi.name!r}"
            declared = dtypes.get(tt.elem_type) if tt.elem_type else None
            if declared is not None and declared != got.dtype:
                raise UserError(f"{where} is declared {TensorProto.DataType.Name(tt.elem_type)}, but its "
                                f"producer gives {got.dtype.name.lower()}; fix or drop the declaration")
            if not tt.HasField("shape"):
                continue
            dims = [d.dim_value if d.HasField("dim_value") else None for d in tt.shape.dim]
            shape = tuple(got.shape)
            if len(dims) == len(shape):
                clash = any(d is not None and isinstance(s, int) and d != s for d, s in zip(dims, shape))
            else:  # another rank: only a different element count (exporters write [] for [1])
                static = None not in dims and all(isinstance(s, int) for s in shape)
                clash = static and math.prod(d or 0 for d in dims) != math.prod(int(s) for s in shape)
            if clash:
                shown = [d if d is not None else "?" for d in dims]
                raise UserError(f"{where} is declared with shape {shown}, but its producer gives "
                                f"{[s if isinstance(s, int) else str(s) for s in shape]}; fix or drop the "
                                f"declaration")


def external_file_sizes(g: onnx.GraphProto, model_dir: Path) -> dict[str, int | None]:
    """Size of each external data file the initializers name (None: the file is absent).

    Absent files are a supported case when every one is absent: an export of weights as
    references only (``placer export --weights none``, a meta-device export, or an .onnx file
    copied without its data), which ``inspect`` and ``compile`` plan from the metadata alone.
    Some files present and others absent is a broken copy: a ``UserError`` names the first
    initializer whose file is missing."""
    sizes: dict[str, int | None] = {}
    owner: dict[str, str] = {}
    for t in g.initializer:
        if t.data_location != TensorProto.EXTERNAL:
            continue
        location = next((e.value for e in t.external_data if e.key == "location"), "")
        if not location or location in sizes or "\x00" in location or Path(location).is_absolute():
            continue
        owner[location] = t.name
        path = model_dir / location
        try:
            st = path.stat()
        except FileNotFoundError:
            sizes[location] = None
            continue
        except (OSError, ValueError) as e:   # a symlink loop, a path component that is a file, ...
            reason = getattr(e, "strerror", None) or str(e)
            raise UserError(f"{path}: external data file of initializer {t.name!r} cannot be read "
                            f"({reason})") from None
        if not stat.S_ISREG(st.st_mode):
            raise UserError(f"{path}: external data file of initializer {t.name!r} is not a regular file "
                            f"(a folder or device); give the weight file's name")
        sizes[location] = st.st_size
    present = [loc for loc, size in sizes.items() if size is not None]
    missing = [loc for loc, size in sizes.items() if size is None]
    if present and missing:
        raise UserError(f"{model_dir / missing[0]}: external data file of initializer "
                        f"{owner[missing[0]]!r} is missing while {present[0]!r} is present; copy the "
                        f"model's data files with it")
    return sizes
