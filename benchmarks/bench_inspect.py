"""Benchmark: ``placer inspect --json`` on the Llama-3.1-405B-shaped synthetic ONNX.

Measures, median of 5 fresh processes: wall time including Python start-up and imports, and
peak RSS. Acceptance: under 5 s and 1 GB. Run: ``python benchmarks/bench_inspect.py``.
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import machine_header, measure_command  # noqa: E402

from placer.synthetic import write_llama_like_onnx  # noqa: E402

SHAPE_405B = dict(layers=126, hidden=16384, heads=128, kv_heads=8, head_dim=128, ffn=53248, vocab=128256)
_CLI = "from placer.cli.main import main; main()"
_IMPORT = "import placer.cli.main"


def main() -> None:
    print(machine_header())
    with tempfile.TemporaryDirectory() as tmp:
        path = write_llama_like_onnx(Path(tmp) / "llama405b.onnx", **SHAPE_405B)
        try:
            imports = measure_command([sys.executable, "-c", _IMPORT])
            full = measure_command([sys.executable, "-c", _CLI, "inspect", str(path), "--json"])
        finally:
            os.unlink(str(path) + ".data")
    print("| what | median s | min s | max s | peak RSS MB |")
    print("|---|---|---|---|---|")
    for label, m in (("python + import placer.cli.main", imports),
                     ("placer inspect --json, 405B-shaped ONNX", full)):
        print(f"| {label} | {m.seconds_median:.2f} | {m.seconds_min:.2f} | {m.seconds_max:.2f} | "
              f"{m.peak_rss_bytes / 1e6:.0f} |")


if __name__ == "__main__":
    main()
