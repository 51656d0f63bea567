"""Benchmark: ``placer export llama-3.1-405b --weights none`` (the unoptimised dynamo export of
a meta-device Llama-3.1-405B, weights as external references only), then ``placer inspect
--json`` of that file.

Measures wall time and peak RSS of fresh processes (the export once, the inspect median of 3)
and checks the inspected totals: 405,853,388,800 parameters and 516,096 KV bytes per token
(126 layers x K and V x 8 KV heads x 128 x 2 bytes). Acceptance for the inspect: under 5 s and
1 GB. Run: ``python benchmarks/bench_export_405b.py`` (needs the export extra); with
``--onnx FILE`` it inspects an earlier export instead of making one (the export takes 76 s on an
idle machine, 45 min under a load of 13 on 2 cores).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import machine_header, measure_command  # noqa: E402

_CLI = "from placer.cli.main import main; main()"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--onnx", type=Path, help="inspect this earlier export instead of exporting")
    args = parser.parse_args()
    print(machine_header())
    with tempfile.TemporaryDirectory() as tmp:
        path = args.onnx or Path(tmp) / "llama405b.onnx"
        export = None
        if args.onnx is None:
            export = measure_command([sys.executable, "-c", _CLI, "export", "llama-3.1-405b", "-o", str(path),
                                      "--weights", "none"], runs=1)
        inspect = measure_command([sys.executable, "-c", _CLI, "inspect", str(path), "--json"], runs=3)
        totals = json.loads(subprocess.run([sys.executable, "-c", _CLI, "inspect", str(path), "--json"],
                                           capture_output=True, text=True, check=True).stdout)["totals"]
        size = path.stat().st_size
    print("| what | median s | min s | max s | peak RSS MB |")
    print("|---|---|---|---|---|")
    rows = [("placer export llama-3.1-405b --weights none", export),
            ("placer inspect --json, that export", inspect)]
    for label, m in rows:
        if m is None:
            continue
        print(f"| {label} | {m.seconds_median:.2f} | {m.seconds_min:.2f} | {m.seconds_max:.2f} | "
              f"{m.peak_rss_bytes / 1e6:.0f} |")
    print(f"\nexported file: {size / 1e6:.1f} MB; parameters {totals['parameters']:,} "
          f"(want 405,853,388,800); KV bytes per token {totals['kv_bytes_per_token']:,} (want 516,096)")


if __name__ == "__main__":
    main()
