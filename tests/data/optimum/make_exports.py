"""Make the Optimum exports in this folder: tiny random Llama, Qwen2 and GPT-2 models exported by
``optimum-cli export onnx --task text-generation-with-past`` (the form of many ONNX LLMs on the
model hub), for ``tests/frontends/test_onnx_optimum.py``.

Optimum (optimum-onnx 0.1) pins transformers < 4.58, which the dev environment (transformers 5)
cannot hold, so the exports are committed and this script is run by hand in its own venv:

    python -m venv /tmp/optimum-venv
    /tmp/optimum-venv/bin/pip install torch==2.13.0 optimum-onnx onnx onnxruntime
    /tmp/optimum-venv/bin/python tests/data/optimum/make_exports.py

Made with torch 2.13.0, transformers 4.57.6, optimum 2.1.0, optimum-onnx 0.1.0, onnx 1.23.2
(the TorchScript exporter, opset 18). Every parameter is drawn at random (norms too), so that
no two tensors are equal. Writes ``<family>.onnx`` (weights inline, ~200 kB) and
``<family>.config.json`` (the transformers config, for the parameter-count oracle).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import torch
import transformers as tr

HERE = Path(__file__).resolve().parent
COMMON = dict(vocab_size=96, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
              num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=64)
CONFIGS = {
    "llama": lambda: tr.LlamaConfig(**COMMON),
    "qwen2": lambda: tr.Qwen2Config(**COMMON),
    "gpt2": lambda: tr.GPT2Config(vocab_size=96, n_embd=32, n_layer=2, n_head=4, n_positions=64),
}


def main() -> None:
    cli = Path(sys.executable).with_name("optimum-cli")
    with tempfile.TemporaryDirectory() as tmp:
        for family, make in CONFIGS.items():
            torch.manual_seed(0)
            model = tr.AutoModelForCausalLM.from_config(make()).eval()
            with torch.no_grad():
                for p in model.parameters():
                    p.normal_(0, 0.05)
            hf, out = Path(tmp) / f"hf_{family}", Path(tmp) / f"out_{family}"
            model.save_pretrained(hf)
            subprocess.run([str(cli), "export", "onnx", "--model", str(hf), "--task",
                            "text-generation-with-past", str(out)], check=True)
            shutil.copyfile(out / "model.onnx", HERE / f"{family}.onnx")
            config = json.loads((hf / "config.json").read_text())
            (HERE / f"{family}.config.json").write_text(json.dumps(config, indent=1, sort_keys=True) + "\n")
            print(family, sum(p.numel() for p in model.parameters()), "parameters")


if __name__ == "__main__":
    main()
