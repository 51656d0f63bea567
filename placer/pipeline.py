"""From any MODEL to a grouped, verified graph: the front half of every command.

MODEL is an ONNX file (or ``onnx.ModelProto``), a Hugging Face ``config.json`` (or a folder
holding one, or a dict), a built-in zoo name (``placer zoo`` lists them), or a ``Graph``.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from placer.errors import UserError
from placer.ir import Graph, VerificationError, verify

if TYPE_CHECKING:
    from placer.ir.passes.group_units import Structure

GRANULARITIES = ("layer", "block", "expert")


@dataclass(frozen=True)
class LoadedModel:
    """A graph ready for costing, and where it came from (for plan provenance)."""

    graph: Graph
    name: str
    sha256: str
    structure_warning: str = ""  # why grouping found fewer layers than the graph has ("" if none)
    # odd exports whose numbers would mislead (placer.frontends.onnx_warnings): static token
    # dims, one stored tensor serving several parameters
    export_findings: tuple[Any, ...] = ()
    # ``analyze_structure`` of the graph (grouping and KV discovery's result; units aside, the
    # same graph): hand it to ``annotate_costs`` so the cost model need not analyse it again
    structure: Structure | None = field(default=None, compare=False, repr=False)


PathArg = str | os.PathLike[str]


def load_graph(model: Any, *, granularity: str = "layer", unit_overrides: PathArg | None = None,
               expert_group_size: int = 0) -> Graph:
    """The grouped graph of ``model``; see ``load_model`` for provenance too."""
    return load_model(model, granularity=granularity, unit_overrides=unit_overrides,
                      expert_group_size=expert_group_size).graph


def load_model(model: Any, *, granularity: str = "layer", unit_overrides: PathArg | None = None,
               expert_group_size: int = 0) -> LoadedModel:
    """Import ``model`` with the right frontend, find KV caches and group placement units.

    Raises:
        UserError: the model cannot be read, or an option is invalid.
    """
    if granularity not in GRANULARITIES:
        raise UserError(f"option --granularity: expected one of {', '.join(GRANULARITIES)}, "
                        f"got {granularity!r}")
    from placer.ir.passes.find_kv_caches import FindKVCaches
    from placer.ir.passes.group_units import GroupUnits, UnitOverrideError, analyze_structure, paused_gc
    from placer.unit_overrides import load_unit_overrides

    with paused_gc():  # large graphs allocate millions of small objects and no cycles
        # the import too: building a 100k-node graph from a config ran ~5 full collections
        # over the growing graph (0.5-1 CPU s for deepseek-v3 and the other large MoE configs)
        graph, name, sha, from_onnx_file = _import(model)
        overrides = load_unit_overrides(unit_overrides) if unit_overrides else ()
        graph = FindKVCaches().run(graph).graph
        # Once, after the KV caches are known (they mark layers too): grouping, its shortfall
        # check and the cost model (through LoadedModel.structure) share this result.
        structure = analyze_structure(graph)
        try:
            graph = GroupUnits(granularity=granularity, overrides=overrides,
                               expert_group_size=expert_group_size).run(graph, structure).graph
        except UnitOverrideError as e:
            raise UserError(str(e)) from None
        try:
            verify(graph, require_units=True)
        except VerificationError as e:
            raise UserError(f"{name}: {e.short}") from None
        from placer.ir.passes.group_units import grouping_shortfall

        reason = "" if overrides else grouping_shortfall(graph, structure)
        from placer.frontends.onnx_warnings import odd_export_findings, warn_findings

        # exporter oddities concern ONNX files only (a config or a torch module has neither)
        findings = tuple(odd_export_findings(graph, name)) if from_onnx_file else ()
    if reason:
        import warnings

        from placer._warnings import PlacerWarning

        warnings.warn(f"{name}: {reason}", PlacerWarning, stacklevel=2)
    warn_findings(findings)
    return LoadedModel(graph, name, sha, reason, findings, structure)


def _import(model: Any) -> tuple[Graph, str, str, bool]:
    """The graph, its name and sha256, and whether the ONNX frontend read it."""
    import hashlib

    if isinstance(model, (str, os.PathLike)) and not str(model).strip():   # Path("") is "."
        raise UserError("MODEL is empty; pass an .onnx file, a config.json (or its folder) or a zoo name "
                        "(placer zoo lists them)")
    if isinstance(model, Graph):
        from placer.ir import to_json

        sha = hashlib.sha256(to_json(model).encode()).hexdigest()
        if any(o and o not in model.types for n in model.nodes for o in n.outputs):
            # A hand-built graph (GraphBuilder) types only its inputs and weights; costs need
            # every value's shape (an untyped MatMul output would cost 0 FLOPs).
            from placer.ir.passes.infer_shapes import infer_shapes
            from placer.ir.shape_values import ShapeError

            try:
                model = infer_shapes(model)
            except ShapeError as e:
                raise UserError(f"{model.name}: {e}") from None
        return model, model.name, sha, False
    if isinstance(model, dict):
        from placer.frontends.hf_config import from_config

        text = json.dumps(model, sort_keys=True)
        return from_config(model), str(model.get("_name_or_path") or model.get("model_type", "config")), \
            hashlib.sha256(text.encode()).hexdigest(), False
    if type(model).__name__ == "ModelProto":
        from placer.frontends.onnx import from_onnx

        return from_onnx(model), model.graph.name or "model", \
            hashlib.sha256(model.SerializeToString()).hexdigest(), True
    if not isinstance(model, (str, os.PathLike)):
        raise UserError("MODEL must be a path, a zoo name, a config dict or a Graph, "
                        f"got {type(model).__name__}")
    path = Path(model)
    if path.is_dir():
        config_path = path / "config.json"
        if not config_path.is_file():
            raise UserError(f"{path}: folder has no config.json; pass an .onnx file or a config.json")
        path = config_path
    if path.is_file():
        if path.suffix == ".json":
            from placer.frontends.hf_config import from_config

            # a config.json is named by its folder (a relative "config.json" by the working folder's)
            folder = path.resolve().parent.name or "config"
            return from_config(str(path)), folder if path.name == "config.json" else path.stem, \
                _sha256_file(path), False
        from placer.frontends.onnx import from_onnx

        return from_onnx(str(path)), path.stem, _sha256_file(path), True
    from placer.zoo import ZOO_MODELS, load_zoo_config

    if str(model) in ZOO_MODELS:
        from placer.frontends.hf_config import from_config

        config = load_zoo_config(str(model))
        text = json.dumps(config, sort_keys=True)
        return from_config(config, name=str(model)), str(model), \
            hashlib.sha256(text.encode()).hexdigest(), False
    raise UserError(f"MODEL {str(model)!r} is not a file, a folder with config.json, or a zoo name "
                    "(run `placer zoo` to list them)")


def _sha256_file(path: Path) -> str:
    import hashlib

    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()
