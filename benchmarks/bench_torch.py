"""Benchmark: ``from_torch`` on meta-device Llama-3.1 8B / 70B / 405B (no weight memory).

Run: ``python benchmarks/bench_torch.py [8b 70b 405b]`` (default: all three). Each model runs in
its own child process, so its peak RSS is its own. Printed per model: seconds to build the
meta-device transformers model, to export it (``torch.export``, non-strict, dynamic batch and
seq), to lower the exported program to the IR (``from_exported_program``), the node count, the
parameter count (checked against transformers' and the published figure) and the peak RSS
(GB = 1e9 bytes).
"""

from __future__ import annotations

import json
import resource
import subprocess
import sys
import time
from pathlib import Path

SIZES = {  # hidden, layers, heads, kv heads, ffn, published parameter count
    "8b": (4096, 32, 32, 8, 14336, 8_030_261_248),
    "70b": (8192, 80, 64, 8, 28672, 70_553_706_496),
    "405b": (16384, 126, 128, 8, 53248, 405_853_388_800),
}


def run_one(size: str) -> dict[str, object]:
    """Build, export and lower one model in this process; the measurements as a dict."""
    import torch
    import transformers as tr

    from placer.frontends.torch import (
        _complete_spec,
        _dims_from_strings,
        _symbol_names,
        export_module,
        from_exported_program,
    )

    hidden, layers, heads, kv_heads, ffn, published = SIZES[size]
    t0 = time.perf_counter()
    cfg = tr.LlamaConfig(hidden_size=hidden, intermediate_size=ffn, num_hidden_layers=layers,
                         num_attention_heads=heads, num_key_value_heads=kv_heads, vocab_size=128256,
                         rope_theta=500000.0, max_position_embeddings=131072)
    with torch.device("meta"):
        model = tr.LlamaForCausalLM(cfg).to(torch.bfloat16).eval()
    ids = torch.zeros((2, 8), dtype=torch.long, device="meta")
    kwargs = {"use_cache": False}
    spec = _complete_spec(model, (ids,), kwargs, _dims_from_strings({"input_ids": {0: "batch", 1: "seq"}}))
    t1 = time.perf_counter()
    ep = export_module(model, (ids,), kwargs, spec)
    t2 = time.perf_counter()
    graph = from_exported_program(ep, name=f"llama-3.1-{size}", module=model,
                                  symbol_names=_symbol_names(model, (ids,), kwargs, spec, ep))
    t3 = time.perf_counter()
    torch_params = sum(p.numel() for p in model.parameters())
    return {
        "model": f"llama-3.1-{size}", "build_s": t1 - t0, "export_s": t2 - t1, "lower_s": t3 - t2,
        "fx_nodes": len(ep.graph_module.graph.nodes), "ir_nodes": len(graph.nodes),
        "parameters": graph.parameter_count(), "torch_parameters": torch_params, "published": published,
        "peak_rss_gb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 / 1e9,
    }


def main(argv: list[str]) -> None:
    if argv[:1] == ["--child"]:
        print(json.dumps(run_one(argv[1])))
        return
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from common import machine_header

    print(machine_header())
    print("from_torch on meta-device Llama-3.1 (bf16), example input [2, 8], dynamic batch and seq")
    print(f"{'model':<16}{'build s':>9}{'export s':>10}{'lower s':>9}{'fx nodes':>10}{'IR nodes':>10}"
          f"{'parameters':>18}{'match':>7}{'peak RSS GB':>13}", flush=True)
    for size in argv or list(SIZES):
        proc = subprocess.run([sys.executable, __file__, "--child", size], capture_output=True, text=True)
        if proc.returncode != 0:
            print(f"llama-3.1-{size}: failed: {proc.stderr.strip().splitlines()[-1:]}", flush=True)
            continue
        r = json.loads(proc.stdout.strip().splitlines()[-1])
        match = r["parameters"] == r["torch_parameters"] == r["published"]
        print(f"{r['model']:<16}{r['build_s']:>9.2f}{r['export_s']:>10.2f}{r['lower_s']:>9.2f}"
              f"{r['fx_nodes']:>10,}{r['ir_nodes']:>10,}{r['parameters']:>18,}{'yes' if match else 'NO':>7}"
              f"{r['peak_rss_gb']:>13.2f}", flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
