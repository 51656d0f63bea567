"""Running a sweep: the row cache, local worker processes or Ray, progress, and the result table.

Executors only decide *where* ``placer.sweep.point_row`` runs; each point's row depends on its
inputs alone and the table is assembled in grid order, so every executor gives the same table.

* local (default): a pool of ``jobs`` worker processes (default: all cores), started once with
  placer, OR-Tools and the frontends imported (warm), each compiling many points; ``jobs=1``
  compiles in this process. Points go out in batches of one model (``batches``), which load
  the model once.
* Ray (``ray_address``: ``auto``, ``ray://HOST:PORT``, ``HOST:PORT``, or ``local`` for a local
  cluster of ``jobs`` CPUs): one Ray task per batch on Ray's reused worker processes; the driver
  keeps the cache. An already initialised Ray (``ray.init(...)`` by the caller) is used as is.

The cache is a folder of one JSON file per row, named by the point's input hash, written
atomically as soon as the row arrives: a killed sweep loses only the points in flight.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from placer.errors import UserError
from placer.fileio import write_atomic
from placer.sweep import SweepSpec, code_digest, point_keys, point_rows, precision_of
from placer.sweep_frontier import frontier_flags


class RowCache:
    """Rows by input hash under ``root`` (None: no cache). Only deterministic outcomes are kept
    (``ok`` and ``infeasible``); an ``error`` row (bad input) is recomputed next time."""

    def __init__(self, root: str | os.PathLike[str] | None) -> None:
        self.root = Path(root) if root is not None else None

    def _path(self, key: str) -> Path:
        assert self.root is not None
        return self.root / key[:2] / f"{key}.json"

    def get(self, key: str) -> dict[str, Any] | None:
        if self.root is None:
            return None
        try:
            return json.loads(self._path(key).read_text())
        except (FileNotFoundError, json.JSONDecodeError):
            return None

    def put(self, key: str, row: Mapping[str, Any]) -> None:
        if self.root is not None and row.get("status") in ("ok", "infeasible"):
            # keys in the row's own order (not sorted): sweep.csv's columns follow the rows' key
            # order, so a cached row must read back as the computed one did
            write_atomic(self._path(key), json.dumps(row) + "\n")


@dataclass(frozen=True)
class SweepResult:
    rows: tuple[dict[str, Any], ...]    # grid order, with frontier flags
    computed: int                       # points compiled in this run
    cached: int                         # points read from the cache (or repeated)
    summary_rows: tuple[dict[str, Any], ...] = ()   # rows of the per-model summary points
    summary_context: int | None = None

    @property
    def frontier(self) -> list[dict[str, Any]]:
        return [r for r in self.rows if r.get("frontier")]


def _warm_worker() -> None:
    """Import what every point needs once per worker process (not once per point)."""
    import placer.compiler  # noqa: F401
    import placer.cost_model  # noqa: F401
    import placer.frontends.hf_config  # noqa: F401
    import placer.solver.cpsat  # noqa: F401


Batch = list[tuple[str, dict[str, Any]]]
Rows = list[tuple[str, dict[str, Any]]]

# Most points of one model a batch holds: a batch loads its model once (``point_rows``), while
# small batches keep the workers evenly busy and the progress bar moving.
MAX_BATCH = 8


def batches(todo: Sequence[tuple[str, dict[str, Any]]], jobs: int) -> list[Batch]:
    """``todo`` as tasks: points of one (model, granularity) together, in runs of at most
    ``min(MAX_BATCH, ceil(len(todo) / (4 x jobs)))`` (about four tasks per worker or more;
    one run per model when ``jobs`` is 1: this process compiles them all in turn)."""
    size = max(1, min(MAX_BATCH, -(-len(todo) // (4 * jobs)))) if jobs > 1 else max(1, len(todo))
    groups: dict[tuple[str, str], Batch] = {}
    for key, point in todo:
        groups.setdefault((str(point["model"]), str(point.get("granularity"))), []).append((key, point))
    return [g[i:i + size] for g in groups.values() for i in range(0, len(g), size)]


def _keyed_rows(batch: Batch) -> tuple[Rows, str]:
    """The rows of one batch, with the digest of the placer source that computed them."""
    rows = point_rows(point for _, point in batch)
    return [(key, row) for (key, _), row in zip(batch, rows)], code_digest()


def _same_code(stream: Iterator[tuple[Rows, str]]) -> Iterator[tuple[str, dict[str, Any]]]:
    """Rows of workers that run the driver's placer source, else a one-line error: a Ray node
    with another placer installed would put its rows in a table (and a cache keyed by the
    driver's source) that another executor computes differently."""
    mine = code_digest()
    for rows, digest in stream:
        if digest != mine:
            raise UserError(f"placer sweep: a worker ran placer source {digest[:12]}, this process has "
                            f"{mine[:12]} (another placer on a Ray node, or files edited during the "
                            "sweep); install the same placer on every node and run again")
        yield from rows


def _run_local(todo: Sequence[Batch], jobs: int) -> Iterator[tuple[Rows, str]]:
    if jobs <= 1 or len(todo) <= 1:
        for batch in todo:   # in this process: one row at a time (the progress bar moves)
            for (key, _), row in zip(batch, point_rows(point for _, point in batch)):
                yield [(key, row)], code_digest()
        return
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor, as_completed

    # forkserver: workers start from a clean server process (no threads of the parent, which
    # fork would copy mid-state), and stay alive for many points.
    ctx = multiprocessing.get_context("forkserver")
    pool = ProcessPoolExecutor(max_workers=min(jobs, len(todo)), mp_context=ctx, initializer=_warm_worker)
    try:
        futures = [pool.submit(_keyed_rows, batch) for batch in todo]
        for f in as_completed(futures):
            yield f.result()
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


#: Seconds ``--ray HOST:PORT`` may take to accept a TCP connection before the sweep is refused
#: (Ray itself retries an unreachable address for minutes, printing a warning every few seconds).
RAY_CONNECT_TIMEOUT_S = 5.0


def check_ray_address(address: str) -> None:
    """Ray is importable and ``address`` (``auto``, ``local``, ``HOST:PORT`` or
    ``ray://HOST:PORT``) names a reachable host: a TCP connection within
    ``RAY_CONNECT_TIMEOUT_S``; a ``UserError`` naming ``--ray`` and the address otherwise."""
    import importlib.util
    import socket

    if importlib.util.find_spec("ray") is None:   # (not imported here: it takes seconds)
        raise UserError("option --ray: ray is not installed; pip install 'placer-wafer[ray]'") from None
    if address in ("auto", "local"):
        return
    hostport = address.removeprefix("ray://")
    host, sep, port_text = hostport.rpartition(":")
    host = host.removeprefix("[").removesuffix("]")   # [::1]:6379
    if not (sep and host and port_text.isdigit() and 1 <= int(port_text) <= 65535):
        raise UserError(f"option --ray {address!r:.120}: expected auto, local, HOST:PORT or ray://HOST:PORT")
    try:
        with socket.create_connection((host, int(port_text)), timeout=RAY_CONNECT_TIMEOUT_S):
            pass
    except OSError as e:
        why = "timed out" if isinstance(e, TimeoutError) else (e.strerror or type(e).__name__)
        raise UserError(f"option --ray {address}: cannot connect to {host}:{port_text} ({why} within "
                        f"{RAY_CONNECT_TIMEOUT_S:g} s); start the cluster (ray start --head) or give its "
                        f"address") from None


def _quiet_ray() -> dict[str, Any]:
    """``ray.init`` arguments that keep Ray's Python log lines off stderr (placer's errors are one line)."""
    import logging

    os.environ.setdefault("RAY_BACKEND_LOG_LEVEL", "error")
    return {"log_to_driver": False, "logging_level": logging.ERROR}


class _stderr_off:
    """File descriptor 2 pointed at /dev/null for the block: Ray's C++ core writes its connection
    warnings ("Failed to connect to GCS ...", one every few seconds) straight to it."""

    def __enter__(self) -> None:
        import sys

        sys.stderr.flush()
        self._saved = os.dup(2)
        null = os.open(os.devnull, os.O_WRONLY)
        os.dup2(null, 2)
        os.close(null)

    def __exit__(self, *exc: object) -> None:
        os.dup2(self._saved, 2)
        os.close(self._saved)


def _run_ray(todo: Sequence[Batch], address: str, jobs: int) -> Iterator[tuple[Rows, str]]:
    try:
        import ray
    except ImportError:
        raise UserError("option --ray: ray is not installed; pip install 'placer-wafer[ray]'") from None
    if not ray.is_initialized():   # (one the caller initialised is used as is)
        check_ray_address(address)
        if address == "local":
            ray.init(num_cpus=jobs, include_dashboard=False, **_quiet_ray())
        else:
            try:
                with _stderr_off():
                    ray.init(address=address, **_quiet_ray())
            except (ConnectionError, RuntimeError, ValueError) as e:
                first = str(e).splitlines()[0] if str(e) else type(e).__name__
                raise UserError(f"option --ray {address}: cannot connect ({first})") from None
    task = ray.remote(num_cpus=1)(_keyed_rows)
    pending = [task.remote(batch) for batch in todo]
    while pending:
        done, pending = ray.wait(pending, num_returns=min(len(pending), 16), timeout=1.0)
        for ref in done:
            yield ray.get(ref)


def run_points(points: Sequence[dict[str, Any]], *, cache_dir: str | os.PathLike[str] | None = None,
               jobs: int | None = None, ray_address: str | None = None,
               show_progress: bool = False) -> tuple[list[dict[str, Any]], int]:
    """The row of every point (in order) and how many were compiled (the rest: cache, repeats)."""
    jobs = jobs or os.cpu_count() or 1
    keys = point_keys(points)
    cache = RowCache(cache_dir)
    rows: dict[str, dict[str, Any]] = {}
    pending: dict[str, dict[str, Any]] = {}     # a point repeated in the grid is compiled once
    for key, point in zip(keys, points):
        if key in rows or key in pending:
            continue
        row = cache.get(key)
        if row is not None:
            rows[key] = row
        else:
            pending[key] = dict(point)
    todo = list(pending.items())
    tasks = batches(todo, jobs)
    stream = _run_ray(tasks, ray_address, jobs) if ray_address else _run_local(tasks, jobs)
    with _progress(len(todo), show_progress) as advance:
        for key, row in _same_code(stream):
            cache.put(key, row)
            rows[key] = row
            advance()
    return [dict(rows[k]) for k in keys], len(todo)


def run_sweep(spec: SweepSpec, *, cache_dir: str | os.PathLike[str] | None = None, jobs: int | None = None,
              ray_address: str | None = None, show_progress: bool = False,
              summary_context: int | None = None, shard: tuple[int, int] | None = None) -> SweepResult:
    """Compile every point of ``spec`` that the cache does not hold; return the whole table.

    With ``summary_context``, also the points of the per-model summary
    (``placer.sweep_summary.summary_points``), in the same batch of work. With ``shard=(k, n)``
    only the grid points ``i`` with ``i % n == k - 1`` (and the summary points in shard 1): n
    machines sharing one cache folder each run one shard, then one more run without a shard
    assembles the whole table from the cache."""
    from placer.sweep_summary import summary_points

    points = spec.points()
    extra = summary_points(spec, summary_context) if summary_context is not None else []
    if shard is not None:
        k, n = shard
        points = points[k - 1::n]
        extra = extra if k == 1 else []
    all_rows, computed = run_points([*points, *extra], cache_dir=cache_dir, jobs=jobs,
                                    ray_address=ray_address, show_progress=show_progress)
    table = all_rows[:len(points)]
    for flag_name, group in (("frontier", None), ("frontier_precision", precision_of)):
        for row, flag in zip(table, frontier_flags(table, group)):
            row[flag_name] = flag
    return SweepResult(tuple(table), computed, len(points) + len(extra) - computed,
                       tuple(all_rows[len(points):]), summary_context)


class _progress:
    """A rich progress bar with ETA on a terminal (``show``), nothing otherwise."""

    def __init__(self, total: int, show: bool) -> None:
        self.total, self.show = total, show and total > 0
        self._bar: Any = None

    def __enter__(self) -> Any:
        if not self.show:
            return lambda: None
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )

        self._bar = Progress(TextColumn("compiling points"), BarColumn(), MofNCompleteColumn(),
                             TimeElapsedColumn(), TextColumn("ETA"), TimeRemainingColumn(),
                             console=Console(stderr=True), transient=False)
        self._bar.start()
        task = self._bar.add_task("sweep", total=self.total)
        return lambda: self._bar.advance(task)

    def __exit__(self, *exc: object) -> None:
        if self._bar is not None:
            self._bar.stop()


# ---------------------------------------------------------------------------------------------
# Output files

_FIRST = ("model", "wafers", "concurrency", "context", "weights_dtype", "kv_dtype", "objective", "prefill_on",
          "status")


def columns(rows: Sequence[Mapping[str, Any]]) -> list[str]:
    """CSV columns: settings and status first, then figures in first-seen order, message last."""
    seen = dict.fromkeys(_FIRST)
    for r in rows:
        seen.update(dict.fromkeys(k for k in r if k != "message"))
    return [*seen, "message"]


def write_tables(result: SweepResult, out_dir: str | os.PathLike[str]) -> dict[str, Path]:
    """``sweep.jsonl`` (one JSON object per point) and ``sweep.csv`` in ``out_dir``, atomically."""
    import csv
    import io

    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise UserError(f"option -o: {out} exists and is not a folder")
    jsonl = "".join(json.dumps(r, sort_keys=True) + "\n" for r in result.rows)
    buf = io.StringIO()
    cols = columns(result.rows)
    w = csv.DictWriter(buf, fieldnames=cols, lineterminator="\n")
    w.writeheader()
    for r in result.rows:
        w.writerow({c: "auto" if c == "wafers" and r.get(c) is None else r.get(c, "") for c in cols})
    paths = {"jsonl": out / "sweep.jsonl", "csv": out / "sweep.csv"}
    write_atomic(paths["jsonl"], jsonl)
    write_atomic(paths["csv"], buf.getvalue())
    return paths
