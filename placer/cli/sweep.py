"""``placer sweep MODEL... --wafers 4-16 --concurrency 1-64:x2 --context 8192,32768 -o DIR``."""

from __future__ import annotations

import json
from typing import Any

import click

from placer.cli.options import granularity_option, json_option, set_option, target_option


def _option_items(items: tuple[str, ...]) -> dict[str, Any]:
    """``--option NAME=VALUE`` as flat compile options; a VALUE is JSON when it parses as JSON
    (``--option 'pins=["layers.0=0"]'``), else the string; each checked against its option's
    type (``placer.sweep.check_sweep_options``)."""
    from placer.errors import UserError
    from placer.sweep import check_sweep_options

    out: dict[str, Any] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise UserError(f"option --option: expected NAME=VALUE, got {item!r}")
        try:
            out[key.strip().replace("-", "_")] = json.loads(value)
        except json.JSONDecodeError:
            out[key.strip().replace("-", "_")] = value.strip()
    return check_sweep_options(out, "option --option")


def _shard(text: str | None) -> tuple[int, int] | None:
    from placer.errors import UserError

    if text is None:
        return None
    k, sep, n = text.partition("/")
    if not (sep and k.isdigit() and n.isdigit() and 1 <= int(k) <= int(n)):
        raise UserError(f"option --shard: expected K/N with 1 <= K <= N, got {text!r}")
    return int(k), int(n)


#: Most local worker processes ``-j`` starts (each loads placer and the model: ~150 MB).
MAX_JOBS = 1024


@click.command("sweep")
@click.argument("models", nargs=-1)
@click.option("--file", "sweep_file", type=click.Path(dir_okay=False), default=None,
              help="TOML sweep file (axes as lists or ranges, an [options] table); options given here win.")
@target_option
@set_option
@click.option("--wafers", default=None, help="Wafer counts: 4,8,16 / 4-16 / 4-16:4 / 1-64:x2 / auto.")
@click.option("--concurrency", default=None, help="Concurrent sequences (list or range).")
@click.option("--context", default=None, help="KV lengths, tokens (list or range).")
@click.option("--weights-dtype", default=None, help="Weight dtypes, e.g. native,fp8.")
@click.option("--kv-dtype", default=None, help="KV dtypes, e.g. native,fp8.")
@click.option("--objective", default=None, help="Objectives, e.g. min-wafers,max-throughput.")
@click.option("--prefill-on", default=None, metavar="TARGETS",
              help="Where prefill runs: none (on the wafers) and/or prefill targets, e.g. none,h100x8 "
                   "(a sweep axis; placer compile --prefill-on).")
@click.option("--prompt", type=int, default=None, help="Prompt length for TTFT, tokens.")
@click.option("--output-tokens", type=int, default=None,
              help="Mean output length per request, tokens ($ and I/O per request).")
@granularity_option
@click.option("--min-tokens-per-s-per-user", type=float, default=None,
              help="Per-user decode floor, tokens/s.")
@click.option("--draft", default=None, metavar="MODEL",
              help="Speculative decoding with this draft model for every point (placer compile --draft).")
@click.option("--draft-length", type=int, default=None, help="Tokens drafted per verification step (k).")
@click.option("--acceptance", type=float, default=None,
              help="Probability the target accepts one drafted token (a, 0 <= a < 1).")
@click.option("--time-limit", type=float, default=None,
              help="CP-SAT deterministic seconds per point (default: placer compile's).")
@click.option("--seed", type=int, default=None)
@click.option("--option", "extra", multiple=True, metavar="NAME=VALUE",
              help="Any other placer compile option by its Python name, for every point (repeatable).")
@click.option("-j", "--jobs", type=click.IntRange(min=1), default=None,
              help="Local worker processes (default: all cores; at most 1,024).")
@click.option("--ray", "ray_address", default=None, metavar="auto|ADDRESS|local",
              help="Run the points on a Ray cluster (needs the ray extra).")
@click.option("--cache", "cache_dir", type=click.Path(file_okay=False), default=None,
              help="Row cache folder (default: DIR/cache); --no-cache to recompute everything.")
@click.option("--no-cache", is_flag=True, help="Neither read nor write the cache.")
@click.option("--shard", default=None, metavar="K/N",
              help="Only every N-th point, from the K-th (1-based): split a sweep across machines that "
                   "share --cache; a last run without --shard assembles the table.")
@click.option("--summary-context", type=click.IntRange(min=0), default=131072, show_default=True,
              help="Per-model summary: KV of one sequence of this many tokens (0: no summary).")
@click.option("--floor", type=float, default=100.0, show_default=True,
              help="Per-model summary: the cheapest point with at least this many tokens/s per user.")
@click.option("-o", "--output", "out_dir", required=True, type=click.Path(file_okay=False),
              help="Folder for sweep.jsonl, sweep.csv and summary.md.")
@json_option
def sweep_command(models: tuple[str, ...], sweep_file: str | None, target_name: str,
                  target_sets: tuple[str, ...], wafers: str | None, concurrency: str | None,
                  context: str | None, weights_dtype: str | None, kv_dtype: str | None, objective: str | None,
                  prefill_on: str | None, prompt: int | None, output_tokens: int | None, granularity: str,
                  min_tokens_per_s_per_user: float | None, draft: str | None, draft_length: int | None,
                  acceptance: float | None,
                  time_limit: float | None, seed: int | None, extra: tuple[str, ...], jobs: int | None,
                  ray_address: str | None, cache_dir: str | None, no_cache: bool, shard: str | None,
                  summary_context: int,
                  floor: float, out_dir: str, as_json: bool) -> None:
    """Compile every point of a grid of settings; write one row per point and the Pareto
    frontier of tokens/s per user against tokens/s per wafer (overall and per precision)."""
    from placer.validate import integer, number_in_range
    from placer.workload import MAX_CONTEXT_TOKENS

    integer(summary_context, "option --summary-context", minimum=0, maximum=MAX_CONTEXT_TOKENS)
    number_in_range(floor, "option --floor", low=0.0)
    if jobs is not None:
        integer(jobs, "option --jobs", minimum=1, maximum=MAX_JOBS)
    import contextlib
    import os
    from pathlib import Path

    from placer.cli.options import parse_sets
    from placer.errors import UserError
    from placer.outputs import prepare_output_folder
    from placer.progress import progress_enabled
    from placer.speculative import speculative_from_flat
    from placer.sweep import check_models_load, load_sweep_file, spec_from_lists
    from placer.sweep_exec import check_ray_address, run_sweep, write_tables
    from placer.sweep_report import render_summary, write_summary

    speculative_from_flat(draft, draft_length, acceptance)  # a bad flag is exit 2, not an error per point
    lists: dict[str, Any] = load_sweep_file(sweep_file) if sweep_file else {}
    options: dict[str, Any] = dict(lists.pop("options", {}))
    given = {"models": list(models) or None, "wafers": wafers, "concurrency": concurrency, "context": context,
             "weights_dtype": weights_dtype, "kv_dtype": kv_dtype, "objective": objective,
             "prefill_on": prefill_on}
    lists.update({k: v for k, v in given.items() if v is not None})
    # --target and --granularity have defaults: only a value given on the command line wins over
    # the sweep file's [options] (the file's target = "wse-mini" was silently replaced by wse3)
    ctx = click.get_current_context()
    defaulted = {name for name in ("target_name", "granularity")
                 if ctx.get_parameter_source(name) is click.core.ParameterSource.DEFAULT}
    fixed = {"target": None if "target_name" in defaulted and "target" in options else target_name,
             "granularity": None if "granularity" in defaulted and "granularity" in options else granularity,
             "prompt": prompt,
             "output_tokens": output_tokens, "min_tokens_per_s_per_user": min_tokens_per_s_per_user,
             "time_limit": time_limit, "seed": seed, "draft": draft, "draft_length": draft_length,
             "acceptance": acceptance}
    options.update({k: v for k, v in fixed.items() if v is not None})
    if target_sets:
        options["target_overrides"] = {**options.get("target_overrides", {}), **parse_sets(target_sets)}
    options.update(_option_items(extra))
    spec = spec_from_lists(lists.pop("models", ()), **lists, options=options)
    if no_cache and cache_dir is not None:
        raise UserError(f"options --cache {cache_dir} and --no-cache contradict each other; give one of them")
    check_models_load(spec)
    parts = _shard(shard)
    if ray_address is not None:
        check_ray_address(ray_address)
    # The folders are checked (created, probed writable) before any point is compiled. Not
    # placer.outputs.open_output_folder: the default cache lives in -o and must survive a killed
    # sweep (resume); a folder made here is removed again if the sweep fails while it is empty.
    # Each output file is written atomically.
    cache = None if no_cache else (cache_dir if cache_dir is not None else str(Path(out_dir) / "cache"))
    made = [p for p in (out_dir, cache) if p is not None and str(p).strip() and not os.path.lexists(p)]
    try:
        prepare_output_folder(out_dir, "-o/--output")
        if cache is not None:
            prepare_output_folder(cache, "--cache", "cache folder")
        result = run_sweep(spec, cache_dir=cache, jobs=jobs, ray_address=ray_address,
                           show_progress=progress_enabled() and not as_json,
                           summary_context=summary_context or None, shard=parts)
        paths = write_tables(result, out_dir)
        paths.update(write_summary(result, out_dir, floor))
    except BaseException:
        for folder in reversed(made):   # the cache (inside -o by default) first
            with contextlib.suppress(OSError):
                os.rmdir(folder)   # only if still empty
        raise
    if as_json:
        from placer.sweep_summary import summarize

        summaries = summarize(result.rows, result.summary_rows, summary_context, floor) \
            if summary_context else []
        click.echo(json.dumps({"points": len(result.rows), "computed": result.computed,
                               "cached": result.cached,
                               "files": {k: str(v) for k, v in paths.items()}, "rows": list(result.rows),
                               "models": summaries}, sort_keys=True))
        return
    from placer.cli.console import echo_markdown

    echo_markdown(render_summary(result, floor))
    also = f" and {len(result.summary_rows)} summary points" if result.summary_rows else ""
    click.echo(f"{len(result.rows)} points{also} ({result.computed} compiled, {result.cached} from the "
               "cache "
               f"or repeated); wrote {', '.join(str(p) for p in paths.values())}")
