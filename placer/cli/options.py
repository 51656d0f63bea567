"""Options shared by several subcommands, defined once.

The compile options (``compile_options``) are one click option per flat name of
``placer.options.FLAT_DEFAULTS``, with those defaults, and with choices taken from the enums
they select (``Objective``, ``Solver``, ``Granularity``, ``Layout``); ``compile_options_from`` turns the
parsed values into the ``CompileOptions`` that ``placer.compile`` builds from the same names.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import click

from placer.errors import UserError
from placer.options import FLAT_DEFAULTS, CompileOptions, Granularity, Layout, Objective, Solver
from placer.targets import Target, load_target

target_option = click.option(
    "--target", "target_name", default="wse3", show_default=True,
    help="Built-in target (wse2, wse3, wse-mini) or a TOML file.")
set_option = click.option(
    "--set", "target_sets", multiple=True, metavar="FIELD=VALUE",
    help="Override a target field, e.g. --set clock_hz=9.5e8 (repeatable).")
json_option = click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")


granularity_option = click.option(
    "--granularity", type=click.Choice(Granularity.choices()), default=FLAT_DEFAULTS["granularity"],
    show_default=True,
    help="Placement units: decoder layers, attention/MLP blocks, or MoE experts split into groups.")
weights_dtype_option = click.option(
    "--weights-dtype", default=FLAT_DEFAULTS["weights_dtype"], show_default=True,
    help="native, bf16, fp8, fp4, mxfp4, ...")
dtype_override_option = click.option(
    "--dtype-override", "dtype_overrides", multiple=True, metavar="PATTERN=DTYPE",
    help="Per-weight dtype by glob, e.g. '*.experts.*=mxfp4' (repeatable).")
kv_dtype_option = click.option("--kv-dtype", default=FLAT_DEFAULTS["kv_dtype"], show_default=True,
                               help="KV cache dtype.")


def parse_sets(sets: tuple[str, ...]) -> dict[str, object]:
    """``--set FIELD=VALUE`` items as a mapping; a UserError names a malformed item."""
    overrides: dict[str, object] = {}
    for item in sets:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise UserError(f"option --set: expected FIELD=VALUE, got {item!r}")
        overrides[key.strip()] = value.strip()
    return overrides


def resolve_target(name: str, sets: tuple[str, ...]) -> Target:
    return load_target(name, parse_sets(sets))


def _opt(*decls: str, **kw: Any) -> Callable[[Any], Any]:
    """A click option whose default is the flat default of its parameter name."""
    names = [d for d in decls if not d.startswith("-")]
    name = names[0] if names else decls[0].lstrip("-").replace("-", "_")
    if "default" not in kw and not kw.get("multiple"):
        kw["default"] = FLAT_DEFAULTS[name]
        kw.setdefault("show_default", FLAT_DEFAULTS[name] is not None)
    return click.option(*decls, **kw)


# One entry per compile option; click parameter names are the flat names of FLAT_DEFAULTS
# (``--target``/``--set`` keep their shared names ``target_name``/``target_sets``).
_COMPILE_OPTIONS = (
    _opt("--objective", type=click.Choice(Objective.choices()),
         help="What to optimise (after keeping as many sequences resident as fit)."),
    _opt("--min-tokens-per-s-per-user", type=float, help="Per-user decode floor, tokens/s."),
    _opt("--context", type=int, help="KV length per sequence, tokens (0: the weights alone, no KV)."),
    _opt("--prompt", type=int, help="Prompt length for TTFT, tokens [default: 1024, or --context if less]."),
    _opt("--output-tokens", type=int, help="Mean output length per request, tokens ($ and I/O per request)."),
    _opt("--concurrency", type=int, help="Sequences served at once."),
    _opt("--draft", help="Speculative decoding: the draft model (a zoo name or a model file), placed "
                         "with the target model; needs --draft-length and --acceptance."),
    _opt("--draft-length", type=int, help="Speculative decoding: tokens the draft proposes per "
                                         "verification step (k >= 1)."),
    _opt("--acceptance", type=float, help="Speculative decoding: probability that the target accepts "
                                         "one drafted token (0 <= a < 1)."),
    _opt("--wafers", type=int, help="Use exactly N wafers, each holding units."),
    _opt("--max-wafers", type=int, help="Use at most N wafers (default: the target's count)."),
    weights_dtype_option,
    dtype_override_option,
    kv_dtype_option,
    _opt("--reserve", type=float, help="SRAM fraction kept free (default: the target's)."),
    granularity_option,
    _opt("--layout", type=click.Choice(Layout.choices()),
         help="On each wafer: every unit on the full PE grid in turn (whole), each unit on its own "
              "rectangle as a spatial pipeline (regions), or per wafer the faster (auto)."),
    _opt("--prefill-on", metavar="TARGET",
         help="Run prefill on other hardware (a prefill target: built-in h100x8 or a TOML file) and ship "
              "its KV to the wafers; decode stays on the wafers (default: prefill on the wafers)."),
    _opt("--solver", type=click.Choice(Solver.choices())),
    _opt("--pin", "pins", multiple=True, metavar="PATTERN=WAFER",
         help="Pin units to a wafer, e.g. 'layers.0-9=0' (ranges, globs; repeatable)."),
    _opt("--pin-file", type=click.Path(dir_okay=False), help="One PATTERN=WAFER per line."),
    _opt("--time-limit", type=float,
         help="Limit per CP-SAT solve in CP-SAT's deterministic seconds (work, not wall time: "
              "the plan is the same on any machine under any load; wall time varies)."),
    _opt("--seed", type=int),
)

COMPILE_PARAMS = ("objective", "min_tokens_per_s_per_user", "context", "prompt", "output_tokens",
                  "concurrency", "draft", "draft_length", "acceptance", "wafers", "max_wafers",
                  "weights_dtype", "dtype_overrides", "kv_dtype", "reserve", "granularity", "layout",
                  "prefill_on", "solver", "pins", "pin_file", "time_limit", "seed")


def compile_options(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Decorate a command with ``--target``, ``--set`` and every compile option."""
    for option in reversed((target_option, set_option, *_COMPILE_OPTIONS)):
        fn = option(fn)
    return fn


def compile_options_from(params: dict[str, Any], **extra: Any) -> CompileOptions:
    """The ``CompileOptions`` of a command decorated with ``compile_options`` (its kwargs)."""
    flat = {k: params[k] for k in COMPILE_PARAMS}
    return CompileOptions.from_flat(target=params["target_name"], target_overrides=params["target_sets"],
                                    **flat, **extra)
