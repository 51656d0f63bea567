"""Partition units across wafers: the integer problem, CP-SAT, the exact DP and baselines."""

from placer.solver.problem import Objective, Problem, build_problem, evaluate
from placer.solver.solve import SOLVERS, Solution, solve

__all__ = ["SOLVERS", "Objective", "Problem", "Solution", "build_problem", "evaluate",
           "solve"]
