"""PyTorch frontend: ``from_torch(module, example_inputs, dynamic_shapes=...)`` through torch.export.

The module is exported with ``torch.export.export(..., strict=False)``, which works on modules
built on the meta device (no weight memory: Llama-3.1-405B lowers with 0.64 GB peak RSS), and the
exported aten graph is lowered op by op through the table in ``placer.frontends.torch_ops``.

- Parameters become ``Weight`` references with role PARAMETER, named by their state-dict names
  (a tied weight once, under its first name); buffers and lifted constants (rotary ``inv_freq``)
  become CONSTANT weights, with inline data when they are real and small.
- Every node's ``scope`` is the innermost module path of ``node.meta["nn_module_stack"]``
  (``model.layers.3.self_attn.q_proj``), so grouping follows module paths.
- torch's shape symbols become ``Sym`` variables named after the ``Dim`` names of
  ``dynamic_shapes`` (``Dim("batch")``, or just ``"batch"``), else ``<input>_<axis>``.
- Value types are torch's own (``node.meta["val"]``); shape tensors that reshape and expand need
  are computed from the graph inputs' dimensions, so the graph is self-contained.
"""

from __future__ import annotations

import inspect
import operator
from typing import Any

import numpy as np

from placer.errors import UserError
from placer.frontends.torch_ops import ATEN_OPS, constant_of_shape_attrs
from placer.ir.attrs import Attrs, AxisAttrs, CastAttrs, ShapeAttrs, SqueezeAttrs
from placer.ir.dtypes import DType
from placer.ir.graph import Graph, GraphBuilder, WeightRole
from placer.ir.ops import OpKind
from placer.ir.symbolic import Dim, Sym, dim_add, dim_mul
from placer.ir.types import TensorType
from placer.ir.verifier import verify

# Python functions on SymInts that torch.export records (operator.mul, sym_max, ...).
_SYMBOLIC_MODULES = ("_operator", "operator", "torch.fx.experimental.sym_node")
# Real (non-meta) constant buffers up to this many elements keep their data inline.
INLINE_CONSTANT_LIMIT = 1 << 16

__all__ = ["export_module", "from_exported_program", "from_torch"]


def from_torch(module: Any, example_inputs: Any, *, dynamic_shapes: Any = None, name: str | None = None,
               example_kwargs: dict[str, Any] | None = None) -> Graph:
    """Export ``module`` with torch.export and lower it to a verified ``placer.ir.Graph``.

    Args:
        module: a ``torch.nn.Module``; may live on the meta device.
        example_inputs: a tuple of positional inputs (or a single tensor).
        dynamic_shapes: as for ``torch.export.export``; a string in place of a ``Dim`` is a
            ``Dim`` of that name (``{"input_ids": {0: "batch", 1: "seq"}}``).
        name: the graph's name (default: the module's class name).
        example_kwargs: keyword inputs, e.g. ``{"use_cache": False}`` for transformers models.

    Raises:
        UserError: the module cannot be exported, or uses an op placer does not support.
    """
    import torch

    if not isinstance(module, torch.nn.Module):
        raise UserError(f"from_torch: expected a torch.nn.Module, got {type(module).__name__}")
    args = tuple(example_inputs) if isinstance(example_inputs, (tuple, list)) else (example_inputs,)
    kwargs = dict(example_kwargs or {})
    shapes = _complete_spec(module, args, kwargs, _dims_from_strings(dynamic_shapes))
    ep = export_module(module, args, kwargs, shapes)
    names = _symbol_names(module, args, kwargs, shapes, ep)
    return from_exported_program(ep, name=name or type(module).__name__, module=module, symbol_names=names)


def export_module(module: Any, args: tuple[Any, ...], kwargs: dict[str, Any], dynamic_shapes: Any) -> Any:
    """``torch.export.export(..., strict=False)``; failures become one-line UserErrors."""
    import torch

    try:
        return torch.export.export(module, args, kwargs=kwargs or None, dynamic_shapes=dynamic_shapes,
                                   strict=False)
    except Exception as e:  # torch raises many types; the user needs the first line of any
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        if "Constraints violated" in first:
            first += " (a dynamic dim whose example size is 0 or 1 is specialized: use sizes >= 2)"
        raise UserError(f"from_torch: torch.export failed for {type(module).__name__}: {first} "
                        "(check example_inputs, example_kwargs and dynamic_shapes)") from None


def from_exported_program(ep: Any, *, name: str = "model", module: Any = None,
                          symbol_names: dict[str, str] | None = None) -> Graph:
    """Lower a ``torch.export.ExportedProgram`` to a verified graph.

    ``module`` (the exported module) lets tied parameters take their first state-dict name;
    ``symbol_names`` maps torch symbols (``s72``) to placer names (``seq``).
    """
    ep = _decompose_unsupported(ep)
    graph = _Lowerer(ep, name, module, symbol_names or {}).run()
    verify(graph)
    return graph


# ----------------------------------------------------------------------------- dynamic shapes

def _dims_from_strings(spec: Any) -> Any:
    """Replace strings by ``torch.export.Dim`` objects of that name (one object per name)."""
    from torch.export import Dim as TorchDim

    made: dict[str, Any] = {}

    def walk(x: Any) -> Any:
        if isinstance(x, str):
            if x not in made:
                made[x] = TorchDim(x)
            return made[x]
        if isinstance(x, dict):
            return {k: walk(v) for k, v in x.items()}
        if isinstance(x, (list, tuple)):
            return type(x)(walk(v) for v in x)
        return x

    return walk(spec)


def _complete_spec(module: Any, args: tuple[Any, ...], kwargs: dict[str, Any], spec: Any) -> Any:
    """A dict spec may leave out static arguments (``use_cache``); torch wants every name."""
    if not isinstance(spec, dict):
        return spec
    try:
        bound = inspect.signature(module.forward).bind(*args, **kwargs).arguments
    except (TypeError, ValueError):
        return spec
    unknown = sorted(set(spec) - set(bound))
    if unknown:
        raise UserError(f"from_torch: dynamic_shapes names {', '.join(unknown)}, which "
                        f"{type(module).__name__}.forward was not given; inputs are: {', '.join(bound)}")
    return {k: spec.get(k) for k in bound}


def _symbol_names(module: Any, args: tuple[Any, ...], kwargs: dict[str, Any], spec: Any,
                  ep: Any) -> dict[str, str]:
    """torch symbol name -> placer name, from the ``Dim`` names in ``spec`` where given, else
    ``<input>_<axis>`` for every bare symbol of a user input."""
    import torch
    import torch.utils._pytree as pytree

    per_tensor: dict[int, dict[int, str]] = {}

    def walk(value: Any, s: Any) -> None:
        if isinstance(value, torch.Tensor):
            items = s.items() if isinstance(s, dict) else enumerate(s) if isinstance(s, (list, tuple)) else ()
            per_tensor[id(value)] = {int(k): d.__name__ for k, d in items
                                     if d is not None and type(d).__name__ == "Dim"}
        elif isinstance(value, (list, tuple)) and isinstance(s, (list, tuple)):
            for v, t in zip(value, s):
                walk(v, t)
        elif isinstance(value, dict) and isinstance(s, dict):
            for k, v in value.items():
                walk(v, s.get(k))

    if spec is not None:
        try:
            bound = inspect.signature(module.forward).bind(*args, **kwargs).arguments
        except (TypeError, ValueError):
            bound = {}
        if isinstance(spec, dict):
            for k, v in bound.items():
                walk(v, spec.get(k))
        elif isinstance(spec, (list, tuple)):
            for v, t in zip(bound.values(), spec):
                walk(v, t)
    leaves = [x for x in pytree.tree_leaves((args, kwargs)) if isinstance(x, torch.Tensor)]
    users = [s.arg.name for s in ep.graph_signature.input_specs if s.kind.name == "USER_INPUT"]
    placeholders = {n.name: n for n in ep.graph_module.graph.nodes if n.op == "placeholder"}
    tensors = [placeholders[u] for u in users if isinstance(placeholders[u].meta.get("val"), torch.Tensor)]
    matched: list[torch.Tensor | None] = list(leaves)
    if len(tensors) != len(leaves):
        matched = [None] * len(tensors)
    out: dict[str, str] = {}
    taken: set[str] = set()
    for node, leaf in zip(tensors, matched):
        given = per_tensor.get(id(leaf), {}) if leaf is not None else {}
        for axis, d in enumerate(node.meta["val"].shape):
            if isinstance(d, int) or not d.node.expr.is_Symbol:
                continue
            sym = str(d.node.expr)
            if sym in out:
                continue
            wanted = given.get(axis)
            if wanted is None:  # torch keeps a Dim's name for all its uses: same name, same size
                wanted = f"{node.name}_{axis}"
                while wanted in taken:
                    wanted += "_"
            out[sym] = wanted
            taken.add(wanted)
    return out


# ----------------------------------------------------------------------------- decompositions

def _decompose_unsupported(ep: Any) -> Any:
    """Run torch's decompositions for the ops the table lacks, and only for those."""
    import torch

    missing = {t for t in _call_targets(ep.graph_module)
               if isinstance(t, torch._ops.OpOverload) and str(t) not in ATEN_OPS}
    if not missing:
        return ep
    table = torch.export.default_decompositions()
    wanted = {op: table[op] for op in missing if op in table}
    if not wanted:
        return ep
    return ep.run_decompositions(wanted)


def _call_targets(gm: Any) -> set[Any]:
    import torch

    out = set()
    for n in gm.graph.nodes:
        if n.op == "call_function":
            out.add(n.target)
        elif n.op == "get_attr":
            sub = getattr(gm, n.target, None)
            if isinstance(sub, torch.fx.GraphModule):
                out |= _call_targets(sub)
    return out


# ----------------------------------------------------------------------------- lowering

def _torch_dtypes() -> dict[Any, DType]:
    import torch

    return {
        torch.float32: DType.FLOAT32, torch.float16: DType.FLOAT16, torch.bfloat16: DType.BFLOAT16,
        torch.float64: DType.FLOAT64, torch.int64: DType.INT64, torch.int32: DType.INT32,
        torch.int16: DType.INT16, torch.int8: DType.INT8, torch.uint8: DType.UINT8, torch.bool: DType.BOOL,
        torch.float8_e4m3fn: DType.FP8_E4M3, torch.float8_e5m2: DType.FP8_E5M2,
    }


def _scope_of(node: Any) -> str:
    stack = node.meta.get("nn_module_stack") or {}
    for path, _cls in reversed(list(stack.values())):
        if not path.startswith("_empty_nn_module_stack"):
            return path.split("@")[0] if "@" in path else path
    return ""


def _eliminate_dead_code(graph: Graph) -> Graph:
    """Drop nodes no output depends on (torch.export keeps some) and the constants only they
    read; parameters stay, so the parameter count is the module's."""
    live = set(graph.outputs)
    kept = []
    for node in reversed(graph.nodes):
        if any(o in live for o in node.outputs if o):
            kept.append(node)
            live.update(i for i in node.inputs if i)
    weights = {k: w for k, w in graph.weights.items() if w.role is WeightRole.PARAMETER or k in live}
    values = live | set(graph.inputs) | set(weights) | {o for n in kept for o in n.outputs if o}
    return graph.replace(nodes=tuple(reversed(kept)), weights=weights,
                         types={k: t for k, t in graph.types.items() if k in values})


def _bind(node: Any) -> dict[str, Any]:
    """The node's arguments by schema name, defaults filled in."""
    schema = node.target._schema
    out: dict[str, Any] = {}
    positional = [a for a in schema.arguments if not a.kwarg_only]
    for arg, value in zip(positional, node.args):
        out[arg.name] = value
    out.update(node.kwargs)
    for arg in schema.arguments:
        if arg.name not in out and arg.has_default_value():
            out[arg.name] = arg.default_value
    return out


class _Lowerer:
    """Walks the exported graph, keeping fx node -> IR value (or tuple of values)."""

    def __init__(self, ep: Any, name: str, module: Any, symbol_names: dict[str, str]) -> None:
        import torch

        self.torch = torch
        self.ep = ep
        self.module = module
        self.symbol_names = symbol_names
        self.builder = GraphBuilder(name)
        self.types: dict[str, TensorType] = {}
        self.dtypes = _torch_dtypes()
        self.sym_sources: dict[str, tuple[str, int]] = {}
        self._dims: dict[Any, Dim] = {}
        self._consts: dict[tuple[Any, ...], str] = {}
        self._dim_values: dict[tuple[Any, ...], str] = {}
        self.scope = ""
        self._counter = 0
        self.name = ""
        self.node: Any = None

    # --- driver -------------------------------------------------------------------------------

    def run(self) -> Graph:
        gm = self.ep.graph_module
        env: dict[Any, Any] = {}
        self._add_inputs(gm, env)
        outputs = self._lower_graph(gm, env, prefix="")
        by_name = {n.name: n for n in gm.graph.nodes}
        for spec in self.ep.graph_signature.output_specs:
            if spec.kind.name != "USER_OUTPUT":
                continue
            node = by_name.get(getattr(spec.arg, "name", None) or "")
            if node is not None and isinstance(env.get(node), str):
                self.builder.output(env[node])
        del outputs
        return _eliminate_dead_code(self.builder.build().replace(types=dict(self.types)))

    def _add_inputs(self, gm: Any, env: dict[Any, Any]) -> None:
        torch = self.torch
        placeholders = {n.name: n for n in gm.graph.nodes if n.op == "placeholder"}
        aliases = self._canonical_names()
        seen: dict[int, str] = {}
        for spec in self.ep.graph_signature.input_specs:
            node = placeholders[spec.arg.name]
            kind = spec.kind.name
            if kind == "USER_INPUT":
                val = node.meta.get("val")
                if not isinstance(val, torch.Tensor):
                    continue
                self.builder.input(node.name, self._set_type(node.name, self.meta_type(val)))
                for axis, d in enumerate(val.shape):
                    if not isinstance(d, int) and d.node.expr.is_Symbol:
                        self.sym_sources.setdefault(str(d.node.expr), (node.name, axis))
                env[node] = node.name
            elif kind in ("PARAMETER", "BUFFER", "CONSTANT_TENSOR"):
                tensor = self._stored_tensor(spec)
                role = WeightRole.PARAMETER if kind == "PARAMETER" else WeightRole.CONSTANT
                if role is WeightRole.CONSTANT and not node.users:
                    continue
                if id(tensor) not in seen:  # tied weights are lifted once per use
                    seen[id(tensor)] = self._add_weight(aliases.get(id(tensor), spec.target), tensor, role)
                env[node] = seen[id(tensor)]
            else:
                raise UserError(f"from_torch: input {spec.arg.name} of kind {kind} is not supported")

    def _canonical_names(self) -> dict[int, str]:
        """id(tensor) -> its first name in the module (tied weights share one name)."""
        if self.module is None:
            return {}
        out: dict[int, str] = {}
        for n, t in list(self.module.named_parameters()) + list(self.module.named_buffers()):
            out.setdefault(id(t), n)
        return out

    def _stored_tensor(self, spec: Any) -> Any:
        if spec.target in self.ep.state_dict:
            return self.ep.state_dict[spec.target]
        return self.ep.constants[spec.target]

    def _add_weight(self, name: str, tensor: Any, role: WeightRole) -> str:
        while name in self.types:
            name += "_"

        dtype = self._dtype(tensor.dtype, name)
        wtype = TensorType(dtype, tuple(int(s) for s in tensor.shape))
        data = None
        if (role is WeightRole.CONSTANT and tensor.device.type != "meta"
                and tensor.numel() <= INLINE_CONSTANT_LIMIT and dtype.to_numpy().kind in "fiub"):
            t = tensor.detach()
            data = (t.float() if dtype is DType.BFLOAT16 else t).cpu().numpy().astype(dtype.to_numpy())
        self.builder.weight(name, wtype, data=data, role=role)
        self._set_type(name, wtype)
        return name

    def _lower_graph(self, gm: Any, env: dict[Any, Any], prefix: str) -> list[Any]:
        torch = self.torch
        outer_scope = self.scope
        for node in gm.graph.nodes:
            if node.op == "placeholder":
                continue
            if node.op == "output":
                return [env.get(a) if isinstance(a, torch.fx.Node) else a for a in node.args[0]]
            if node.op == "get_attr":
                env[node] = getattr(gm, node.target)
                continue
            if node.op != "call_function":
                raise UserError(f"from_torch: node {node.name} is a {node.op}, which is not supported")
            self.node, self.name = node, prefix + node.name
            self.scope = _scope_of(node) or outer_scope
            if node.target is operator.getitem and isinstance(env.get(node.args[0]), (tuple, list)):
                env[node] = env[node.args[0]][node.args[1]]
            elif self._is_symbolic(node):
                continue  # SymInt arithmetic: rebuilt from its expression where it is used
            elif isinstance(node.target, torch._ops.HigherOrderOperator):
                env[node] = self._inline(node, env, prefix)
            else:
                env[node] = self._lower_node(node, env)
        return []

    def _is_symbolic(self, node: Any) -> bool:
        torch = self.torch
        val = node.meta.get("val")
        return isinstance(val, (torch.SymInt, torch.SymFloat, torch.SymBool, int, float, bool)) or (
            not isinstance(node.target, torch._ops.OpOverload)
            and not isinstance(node.target, torch._ops.HigherOrderOperator)
            and getattr(node.target, "__module__", "") in _SYMBOLIC_MODULES)

    def _lower_node(self, node: Any, env: dict[Any, Any]) -> Any:
        lower = ATEN_OPS.get(str(node.target))
        if lower is None:
            raise UserError(f"from_torch: aten op {node.target} (node {node.name}"
                            f"{', module ' + self.scope if self.scope else ''}) is not supported by placer; "
                            "rewrite that part of the model or report the op")
        self.env = env
        return lower(self, node, _bind(node))

    def _inline(self, node: Any, env: dict[Any, Any], prefix: str) -> tuple[Any, ...]:
        """Higher-order ops that only wrap a subgraph (``wrap_with_set_grad_enabled``,
        ``wrap_with_autocast``) are inlined: grad mode and autocast do not change inference."""
        torch = self.torch
        op = node.target.name()
        if op not in ("wrap_with_set_grad_enabled", "wrap_with_autocast"):
            raise UserError(f"from_torch: higher-order op {op} (node {node.name}) is not supported by placer")
        at = next(i for i, a in enumerate(node.args)
                  if isinstance(a, torch.fx.Node) and a.op == "get_attr")
        sub = env[node.args[at]]
        operands = node.args[at + 1:]
        sub_env: dict[Any, Any] = {}
        inner = [n for n in sub.graph.nodes if n.op == "placeholder"]
        for ph, arg in zip(inner, operands):
            if isinstance(arg, torch.fx.Node) and arg in env:
                sub_env[ph] = env[arg]
        scope, self.scope = self.scope, self.scope
        out = self._lower_graph(sub, sub_env, prefix=f"{prefix}{node.name}/")
        self.scope = scope
        return tuple(out)

    # --- types and symbols ---------------------------------------------------------------------

    def _dtype(self, tdtype: Any, where: str) -> DType:
        try:
            return self.dtypes[tdtype]
        except KeyError:
            raise UserError(f"from_torch: {where} has dtype {tdtype}, "
                            "which placer does not support") from None

    def sym_to_dim(self, expr: Any) -> Dim:
        if expr in self._dims:
            return self._dims[expr]
        if expr.is_Integer:
            out: Dim = int(expr)
        elif expr.is_Symbol:
            out = Sym.var(self.symbol_names.get(str(expr), str(expr)))
        elif expr.is_Add:
            out = 0
            for t in expr.args:
                out = dim_add(out, self.sym_to_dim(t))
        elif expr.is_Mul:
            out = 1
            for t in expr.args:
                out = dim_mul(out, self.sym_to_dim(t))
        elif expr.is_Pow and expr.args[1].is_Integer and int(expr.args[1]) > 0:
            out = 1
            base = self.sym_to_dim(expr.args[0])
            for _ in range(int(expr.args[1])):
                out = dim_mul(out, base)
        else:
            where = f" at node {self.name}" if self.name else ""
            raise UserError(f"from_torch: symbolic size {expr}{where} is not a polynomial of the input "
                            "sizes; placer supports sums and products of dynamic dims")
        self._dims[expr] = out
        return out

    def dim(self, x: Any) -> Dim:
        """An int, a SymInt, or an fx node computing a SymInt, as a placer ``Dim``."""
        torch = self.torch
        if isinstance(x, torch.fx.Node):
            x = x.meta.get("val")
        if isinstance(x, bool):
            return int(x)
        if isinstance(x, int):
            return x
        if isinstance(x, torch.SymInt):
            return self.sym_to_dim(x.node.expr)
        raise UserError(f"from_torch: expected an integer size at node {self.name}, got {type(x).__name__}")

    def meta_type(self, val: Any) -> TensorType:
        dtype = self._dtype(val.dtype, f"node {self.name or 'input'}")
        return TensorType(dtype, tuple(self.dim(d) for d in val.shape))

    def out_type(self, node: Any) -> TensorType:
        return self.meta_type(node.meta["val"])

    def out_types(self, node: Any) -> list[TensorType]:
        return [self.meta_type(v) for v in node.meta["val"]]

    def type_of(self, value: str) -> TensorType:
        return self.types[value]

    def _set_type(self, value: str, t: TensorType) -> TensorType:
        self.types[value] = t
        return t

    def result_dtype(self, x: Any, y: Any) -> DType:
        torch = self.torch

        def probe(v: Any) -> Any:
            if isinstance(v, torch.fx.Node):
                val = v.meta.get("val")
                if isinstance(val, torch.SymInt):
                    return 1
                if isinstance(val, torch.SymFloat):
                    return 1.0
                return val
            return v

        return self._dtype(torch.result_type(probe(x), probe(y)), f"node {self.name}")

    # --- values ---------------------------------------------------------------------------------

    def tensor(self, x: Any) -> str:
        torch = self.torch
        if isinstance(x, torch.fx.Node):
            v = self.env.get(x)
            if isinstance(v, str):
                return v
        raise UserError(f"from_torch: node {self.name} ({self.node.target}) expects a tensor, "
                        f"got {getattr(x, 'name', x)!r}")

    def operand(self, x: Any, dtype: DType, *, scalar: bool = False) -> str:
        """A tensor, a Python number or a symbolic integer as a value of ``dtype``."""
        torch = self.torch
        if isinstance(x, torch.fx.Node) and isinstance(self.env.get(x), str):
            return self.cast(self.env[x], dtype)
        if isinstance(x, torch.fx.Node) or isinstance(x, torch.SymInt):
            return self.cast(self.dim_value(self.dim(x), scalar=True), dtype)
        if isinstance(x, (bool, int, float)):
            return self.const(np.array(x), dtype)
        raise UserError(f"from_torch: node {self.name} ({self.node.target}) has an operand of type "
                        f"{type(x).__name__}, which placer does not support")

    def emit(self, kind: OpKind, inputs: list[str], type: TensorType, attrs: Attrs | None = None, *,
             hint: str | None = None) -> str:
        """One node; without ``hint`` it is the fx node's own result and takes its name."""
        out = self.name if hint is None else self._fresh(hint)
        self.builder.op(kind, inputs, attrs, outputs=[out], name=out, scope=self.scope)
        self._set_type(out, type)
        return out

    def emit_multi(self, kind: OpKind, inputs: list[str], types: list[TensorType],
                   attrs: Attrs | None = None, *, hint: str | None = None) -> tuple[str, ...]:
        base = self.name if hint is None else self._fresh(hint)
        outs = [f"{base}.{i}" for i in range(len(types))]
        self.builder.op(kind, inputs, attrs, outputs=outs, name=base, scope=self.scope)
        for o, t in zip(outs, types):
            self._set_type(o, t)
        return tuple(outs)

    def _fresh(self, hint: str) -> str:
        """A new value name derived from the current fx node; fx names have no dots, so these
        never collide with a later node's name."""
        while True:
            self._counter += 1
            name = f"{self.name}.{hint}_{self._counter}"
            if name not in self.types:
                return name

    def cast(self, value: str, dtype: DType, *, name: bool = False) -> str:
        t = self.type_of(value)
        if t.dtype is dtype:
            return value
        return self.emit(OpKind.CAST, [value], t.with_dtype(dtype), CastAttrs(to=dtype),
                         hint=None if name else "cast")

    def const(self, arr: np.ndarray, dtype: DType) -> str:
        arr = np.asarray(arr).astype(dtype.to_numpy())
        key = (dtype, arr.shape, arr.tobytes())
        if key not in self._consts:
            name = self.builder.constant(arr, name=self._fresh("const"), dtype=dtype)
            self._set_type(name, TensorType(dtype, tuple(arr.shape)))
            self._consts[key] = name
        return self._consts[key]

    def ints(self, values: list[int] | tuple[int, ...]) -> str:
        return self.const(np.array(list(values), dtype=np.int64).reshape(len(values)), DType.INT64)

    def filled(self, t: TensorType, value: float | int | bool, *, name: bool = False) -> str:
        """A tensor of type ``t`` filled with ``value``: inline if small and static."""
        from placer.frontends.torch_ops import INLINE_FILL_LIMIT

        if t.is_static and isinstance(t.numel, int) and t.numel <= INLINE_FILL_LIMIT:
            return self.const(np.full(t.static_shape, value), t.dtype)
        return self.emit(OpKind.CONSTANT_OF_SHAPE, [self.shape_value(t.shape)], t,
                         constant_of_shape_attrs(value, t.dtype), hint=None if name else "fill")

    def dim_value(self, d: Dim, *, scalar: bool = False) -> str:
        """The value of size ``d`` as an i64[1] (or i64 scalar) tensor, from the inputs' shapes."""
        if isinstance(d, int):
            return self.const(np.array(d if scalar else [d], dtype=np.int64), DType.INT64)
        key = (str(d), scalar, self.scope)
        if key in self._dim_values:
            return self._dim_values[key]
        one = TensorType(DType.INT64, (1,))
        total = ""
        for monomial, coeff in d.terms:
            term = ""
            for sym in monomial:
                v = self._symbol_value(sym)
                term = v if not term else self.emit(OpKind.MUL, [term, v], one, hint="dim")
            if not term:
                term = self.ints([coeff])
            elif coeff != 1:
                term = self.emit(OpKind.MUL, [term, self.ints([coeff])], one, hint="dim")
            total = term if not total else self.emit(OpKind.ADD, [total, term], one, hint="dim")
        if scalar:
            total = self.emit(OpKind.SQUEEZE, [total], TensorType(DType.INT64, ()), SqueezeAttrs((0,)),
                              hint="dim")
        self._dim_values[key] = total
        return total

    def _symbol_value(self, sym: str) -> str:
        key = ("sym", sym, self.scope)
        if key not in self._dim_values:
            source = next((src for s, src in self.sym_sources.items()
                           if self.symbol_names.get(s, s) == sym), None)
            if source is None:
                raise UserError(f"from_torch: size {sym} used at node {self.name} is not a dimension of any "
                                "input; placer needs every dynamic size to come from an input's shape")
            value, axis = source
            self._dim_values[key] = self.emit(OpKind.SHAPE, [value], TensorType(DType.INT64, (1,)),
                                              ShapeAttrs(axis, axis + 1), hint=f"{sym}")
        return self._dim_values[key]

    def shape_value(self, dims: tuple[Dim, ...]) -> str:
        """A 1-D i64 tensor holding ``dims``; static runs become one constant."""
        if all(isinstance(d, int) for d in dims):
            # The ignore below: all ints (the all(...) above); mypy does not narrow through all().
            return self.ints([int(d) for d in dims])  # type: ignore[arg-type]
        parts: list[str] = []
        run: list[int] = []
        for d in dims:
            if isinstance(d, int):
                run.append(d)
                continue
            if run:
                parts.append(self.ints(run))
                run = []
            parts.append(self.dim_value(d))
        if run:
            parts.append(self.ints(run))
        if len(parts) == 1:
            return parts[0]
        return self.emit(OpKind.CONCAT, parts, TensorType(DType.INT64, (len(dims),)), AxisAttrs(0),
                         hint="shape")

    def reshape_target(self, shape: tuple[Dim, ...]) -> str:
        """Reshape's shape input: the first symbolic dim becomes -1, so the rule can divide."""
        first = next((i for i, d in enumerate(shape) if not isinstance(d, int)), None)
        if first is None:
            # The ignore below: all ints (first is None); mypy does not narrow through next(...).
            return self.ints([int(d) for d in shape])  # type: ignore[arg-type]
        return self.shape_value(tuple(-1 if i == first else d for i, d in enumerate(shape)))

    def slice(self, x: str, dim: int, start: Any, end: Any, step: int, out: TensorType, *,
              hint: str | None = None, name: bool = False) -> str:
        rank = self.type_of(x).rank
        ins = [x, self.dim_value(self._as_dim(start)), self.dim_value(self._as_dim(end)),
               self.ints([dim % rank]), self.ints([step])]
        return self.emit(OpKind.SLICE, ins, out, hint=None if name else (hint or "slice"))

    def _as_dim(self, x: Any) -> Dim:
        if isinstance(x, Sym):
            return x
        return self.dim(x)

    def unsupported(self, node: Any, detail: str) -> None:
        raise UserError(f"from_torch: {detail} (node {node.name}, op {node.target}"
                        f"{', module ' + self.scope if self.scope else ''}) is not supported by placer")

