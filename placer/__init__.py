"""placer: layer and KV-cache placement for wafer-scale AI hardware.

The Python API mirrors the CLI. Heavy modules (onnx, torch, ortools) load on first use::

    >>> import placer
    >>> graph = placer.load_graph("llama-3.1-8b")        # a zoo name, an .onnx file or a config.json
    >>> cost = placer.annotate_costs(graph, placer.load_target("wse3"), placer.Workload())
    >>> plan = placer.compile("llama-3.1-70b", target="wse3", context=8192)
    >>> len(plan.wafers), plan.provenance.options.workload.context_tokens
    (4, 8192)

``placer.compile`` takes the CLI's option names (``placer.options.FLAT_DEFAULTS``) or one
``placer.CompileOptions``::

    >>> options = placer.CompileOptions.from_flat(context=8192, concurrency=8, objective="min-latency")
    >>> placer.compile("llama-3.1-8b", options).kv.resident_sequences
    8
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

_API = {
    "load_graph": "placer.pipeline",
    "load_model": "placer.pipeline",
    "from_onnx": "placer.frontends.onnx",
    "from_config": "placer.frontends.hf_config",
    "from_torch": "placer.frontends.torch",
    "annotate_costs": "placer.cost_model",
    "load_target": "placer.targets",
    "Target": "placer.targets",
    "Workload": "placer.workload",
    "DtypePolicy": "placer.workload",
    "compile": ("placer.compiler", "compile_model"),
    "CompileOptions": "placer.options",
    "Plan": "placer.plan",
    "run": ("placer.runner", "run_plan"),
    "UserError": "placer.errors",
    "InfeasibleError": "placer.errors",
}

__all__ = ["__version__", *_API]


def __getattr__(name: str) -> Any:
    spec = _API.get(name)
    if spec is None:
        raise AttributeError(f"module 'placer' has no attribute {name!r}")
    module, attr = (spec, name) if isinstance(spec, str) else spec
    value = getattr(importlib.import_module(module), attr)
    globals()[name] = value
    return value
