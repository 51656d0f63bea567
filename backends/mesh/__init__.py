"""The emulated core mesh: a wafer is a grid of PEs whose state arrays have leading axes
[rows, cols]; data moves only between neighbours, and observers collect cycles, hops, link
bytes and peak PE memory per kernel."""

from placer.backends.mesh.grid import MeshSpec, Wafer
from placer.backends.mesh.ledger import SramLedger, SramOverflowError
from placer.backends.mesh.observer import KernelStats, StatsObserver

__all__ = ["KernelStats", "MeshSpec", "SramLedger", "SramOverflowError", "StatsObserver", "Wafer"]
