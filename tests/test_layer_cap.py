"""The layer cap (``placer.frontends.hf_reader.MAX_LAYERS``, raised by ``PLACER_MAX_LAYERS``):
a config past it is one line on stderr and exit 2 naming the cap and the variable, before any
work that grows with the layers; within it (raised or not) the config is read."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from placer.frontends.hf_reader import MAX_LAYERS, MAX_LAYERS_ENV

_SMALL = dict(model_type="llama", hidden_size=32, intermediate_size=64, num_attention_heads=4,
              num_key_value_heads=2, vocab_size=64)


def _placer(args: list[str], env_cap: str | None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != MAX_LAYERS_ENV}
    if env_cap is not None:
        env[MAX_LAYERS_ENV] = env_cap
    return subprocess.run([sys.executable, "-m", "placer", *args], capture_output=True, text=True,
                          env=env, timeout=300)


def _config(tmp_path, layers: int, **extra: object) -> str:
    path = tmp_path / "config.json"
    path.write_text(json.dumps({**_SMALL, "num_hidden_layers": layers, **extra}))
    return str(path)


@pytest.mark.parametrize("model_type", ["llama", "phi3"])  # phi3: through transformers (fallback)
def test_100000_layers_are_refused_at_the_default_cap(tmp_path, model_type: str) -> None:
    extra = {"pad_token_id": 0} if model_type == "phi3" else {}
    r = _placer(["inspect", _config(tmp_path, 100_000, model_type=model_type, **extra)], None)
    assert r.returncode == 2
    lines = [line for line in r.stderr.splitlines() if not line.startswith("[transformers]")]
    assert len(lines) == 1 and "Traceback" not in r.stderr
    assert f"cap of {MAX_LAYERS:,}" in lines[0] and f"{MAX_LAYERS_ENV}=100000" in lines[0]
    assert "num_hidden_layers" in lines[0] and r.stdout == ""


def test_the_variable_moves_the_cap_both_ways(tmp_path) -> None:
    config = _config(tmp_path, 3)
    low = _placer(["inspect", config], "2")
    assert low.returncode == 2 and "cap of 2;" in low.stderr and len(low.stderr.splitlines()) == 1
    ok = _placer(["inspect", config, "--json"], "3")
    assert ok.returncode == 0, ok.stderr
    units = [u["name"] for u in json.loads(ok.stdout)["units"]]
    assert units == ["embed", "layers.0", "layers.1", "layers.2", "head"]


def test_a_bad_variable_is_a_one_line_error(tmp_path) -> None:
    r = _placer(["inspect", _config(tmp_path, 3), "--json"], "many")
    assert r.returncode == 2
    assert json.loads(r.stdout) == {"error": f"environment variable {MAX_LAYERS_ENV} must be an integer "
                                             "from 1 to 100,000 (about 2 CPU s and 50 MB per 1,000 layers), "
                                             "got 'many'", "exit": 2}
    r = _placer(["inspect", _config(tmp_path, 3), "--json"], str(10**18))   # no ceiling read 10^8 layers
    assert r.returncode == 2 and "from 1 to 100,000" in json.loads(r.stdout)["error"], r.stdout
