"""Pass infrastructure: a pass is a small frozen dataclass with a kebab-case ``name``; it
returns the new graph and whether it changed anything. The manager verifies between passes."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar, Protocol

from placer.ir.graph import Graph
from placer.ir.verifier import verify


@dataclass(frozen=True)
class PassResult:
    graph: Graph
    changed: bool


class Pass(Protocol):
    name: ClassVar[str]

    def run(self, graph: Graph) -> PassResult: ...


@dataclass(frozen=True)
class PassManager:
    passes: Sequence[Pass]
    verify_each: bool = True

    def run(self, graph: Graph) -> Graph:
        for p in self.passes:
            graph = p.run(graph).graph
            if self.verify_each:
                verify(graph)
        return graph
