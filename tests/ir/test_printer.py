"""Golden printed IR. Regenerate with: PLACER_UPDATE_GOLDEN=1 pytest tests/ir/test_printer.py"""

import os
from pathlib import Path

from placer.ir import print_graph
from tests.ir.graphs import tiny_mlp_graph

GOLDEN = Path(__file__).parent.parent / "golden"


def check_golden(name: str, text: str) -> None:
    path = GOLDEN / name
    if os.environ.get("PLACER_UPDATE_GOLDEN"):
        path.write_text(text)
    assert path.read_text() == text, f"{path} differs; regenerate with PLACER_UPDATE_GOLDEN=1"


def test_printer_golden():
    check_golden("tiny_mlp.ir.txt", print_graph(tiny_mlp_graph()))


def test_printer_is_deterministic():
    assert print_graph(tiny_mlp_graph()) == print_graph(tiny_mlp_graph())
