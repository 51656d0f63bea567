"""Observers: accounting of cycles, hops, link bytes and peak PE memory, kept out of kernels.

A wafer emits events (``on_compute``, ``on_transfer``, ``on_memory``) tagged with the current
kernel label; ``StatsObserver`` sums them per (wafer, kernel).
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class KernelStats:
    """Totals of one kernel label on one wafer. Cycles are the busiest PE's (critical path)."""

    calls: int = 0
    compute_cycles: int = 0
    comm_cycles: int = 0
    hops: int = 0
    link_bytes: int = 0
    peak_pe_bytes: int = 0

    @property
    def cycles(self) -> int:
        return self.compute_cycles + self.comm_cycles

    def add(self, other: KernelStats) -> None:
        self.calls += other.calls
        self.compute_cycles += other.compute_cycles
        self.comm_cycles += other.comm_cycles
        self.hops += other.hops
        self.link_bytes += other.link_bytes
        self.peak_pe_bytes = max(self.peak_pe_bytes, other.peak_pe_bytes)


@dataclass
class StatsObserver:
    """Sums events per (wafer, kernel)."""

    stats: dict[tuple[str, str], KernelStats] = field(default_factory=dict)

    def _get(self, wafer: str, kernel: str) -> KernelStats:
        return self.stats.setdefault((wafer, kernel), KernelStats())

    def on_kernel(self, wafer: str, kernel: str) -> None:
        self._get(wafer, kernel).calls += 1

    def on_compute(self, wafer: str, kernel: str, cycles: int) -> None:
        self._get(wafer, kernel).compute_cycles += cycles

    def on_transfer(self, wafer: str, kernel: str, hops: int, link_bytes: int, cycles: int) -> None:
        s = self._get(wafer, kernel)
        s.hops += hops
        s.link_bytes += link_bytes
        s.comm_cycles += cycles

    def on_memory(self, wafer: str, kernel: str, pe_bytes: int) -> None:
        s = self._get(wafer, kernel)
        s.peak_pe_bytes = max(s.peak_pe_bytes, pe_bytes)

    def per_wafer(self) -> dict[str, KernelStats]:
        out: dict[str, KernelStats] = {}
        for (wafer, _), s in self.stats.items():
            out.setdefault(wafer, KernelStats()).add(s)
        return out

    def per_kernel(self, wafer: str) -> dict[str, KernelStats]:
        return {k: s for (w, k), s in sorted(self.stats.items()) if w == wafer}

    def total(self) -> KernelStats:
        out = KernelStats()
        for s in self.stats.values():
            out.add(s)
        return out

    def reset(self) -> None:
        self.stats.clear()
