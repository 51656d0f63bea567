"""The workload a plan serves: context and prompt lengths, concurrency, and dtype policies."""

from __future__ import annotations

import fnmatch
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from placer.errors import UserError
from placer.ir.dtypes import DType
from placer.speculative import SpeculativeOptions
from placer.validate import integer, show_int


def parse_dtype_option(text: str, option: str) -> str:
    """``native`` or a dtype name, canonicalized; a UserError names the option otherwise."""
    if text.strip().lower() == "native":
        return "native"
    try:
        return DType.parse(text).value
    except ValueError as e:
        raise UserError(f"option {option}: {e}") from None


@dataclass(frozen=True)
class DtypePolicy:
    """How weights are stored: ``default`` is ``native`` (the model's own dtypes, including a
    checkpoint's quantization) or a dtype name; ``overrides`` are (glob, dtype) pairs matched in
    order against ``unit/weight`` names, e.g. ``("*.experts.*", "mxfp4")``; the last match wins."""

    default: str = "native"
    overrides: tuple[tuple[str, str], ...] = ()

    def dtype_for(self, weight: str, native: DType, unit: str = "") -> DType:
        choice = self.default
        for pattern, dtype in self.overrides:
            if fnmatch.fnmatchcase(weight, pattern) or (unit and fnmatch.fnmatchcase(
                    f"{unit}/{weight}", pattern)):
                choice = dtype
        if choice == "native" or not native.is_float:
            return native
        return DType(choice)

    @staticmethod
    def parse(default: str, overrides: list[str] | tuple[str, ...] = ()) -> DtypePolicy:
        pairs = []
        for item in overrides:
            pattern, sep, dtype = item.rpartition("=")
            if not sep or not pattern:
                raise UserError(f"option --dtype-override: expected PATTERN=DTYPE, got {item!r}")
            pairs.append((pattern, parse_dtype_option(dtype, "--dtype-override")))
        return DtypePolicy(parse_dtype_option(default, "--weights-dtype"), tuple(pairs))


#: Longest ``--context`` (and ``--prompt``, ``--output-tokens``) placer models: 2^24 tokens, past
#: every published context window (10M tokens); beyond it KV sizes overflow floating point long
#: before they mean anything.
MAX_CONTEXT_TOKENS = 2**24
#: The prompt length when none is given (``--prompt`` omitted): this, or the context if shorter.
PROMPT_TOKENS = 1024
#: ``Workload(prompt_tokens=DEFAULT_PROMPT)``, the default: ``PROMPT_TOKENS`` capped at the context.
DEFAULT_PROMPT = -1
#: Most ``--concurrency`` sequences placer models at once (each holds a KV slot).
MAX_CONCURRENCY = 2**20
_WINDOW = "placer.workload.MAX_CONTEXT_TOKENS, longer than any model's context window"
# (field, option, minimum, cap, what the cap is) of each integer a workload holds.
_LIMITS = (("context_tokens", "--context", 0, MAX_CONTEXT_TOKENS, _WINDOW),
           ("prompt_tokens", "--prompt", 1, MAX_CONTEXT_TOKENS, _WINDOW),
           ("concurrency", "--concurrency", 1, MAX_CONCURRENCY,
            "placer.workload.MAX_CONCURRENCY sequences served at once"),
           ("output_tokens", "--output-tokens", 1, MAX_CONTEXT_TOKENS, _WINDOW))


@dataclass(frozen=True)
class Workload:
    """``context_tokens``: KV length each sequence holds (prompt + generated); ``prompt_tokens``:
    prefill length for time to first token (default: 1,024, or the context if shorter; never
    longer than a non-zero context); ``concurrency``: sequences served at once;
    ``output_tokens``: mean output length per request ($ per request, I/O per request);
    ``speculative``: speculative decoding with a draft model (``placer.speculative``; None: off)."""

    context_tokens: int = 8192
    prompt_tokens: int = -1  # DEFAULT_PROMPT: 1,024 tokens, or the whole context if shorter
    concurrency: int = 1
    weights: DtypePolicy = field(default_factory=DtypePolicy)
    kv_dtype: str = "native"
    output_tokens: int = 256
    speculative: SpeculativeOptions | None = None

    def __post_init__(self) -> None:
        if self.prompt_tokens == DEFAULT_PROMPT:
            context = integer(self.context_tokens, "option --context")
            object.__setattr__(self, "prompt_tokens", min(PROMPT_TOKENS, context) if context > 0
                               else PROMPT_TOKENS)
        for name, option, low, cap, what in _LIMITS:
            value = integer(getattr(self, name), f"option {option}")
            if value < low:
                raise UserError(f"option {option} must be >= {low}, got {value}")
            if value > cap:
                raise UserError(f"option {option}: {show_int(value)} is more than placer's cap of {cap:,} "
                                f"({what}); give at most {cap:,}")
            object.__setattr__(self, name, value)
        if 0 < self.context_tokens < self.prompt_tokens:
            raise UserError(f"option --prompt: a {self.prompt_tokens:,}-token prompt does not fit in "
                            f"--context {self.context_tokens:,} (the KV a sequence holds includes its "
                            f"prompt); give --prompt <= --context, or omit it")

    def kv_dtype_for(self, native: DType) -> DType:
        return native if self.kv_dtype == "native" else DType(self.kv_dtype)

    def to_dict(self) -> dict[str, object]:
        return {
            "context_tokens": self.context_tokens,
            "prompt_tokens": self.prompt_tokens,
            "concurrency": self.concurrency,
            "weights_dtype": self.weights.default,
            "dtype_overrides": [list(p) for p in self.weights.overrides],
            "kv_dtype": self.kv_dtype,
            "output_tokens": self.output_tokens,
            # only with --draft, so plans without speculative decoding keep their bytes
            **({"speculative": self.speculative.to_dict()} if self.speculative is not None else {}),
        }

    @staticmethod
    def from_dict(d: Mapping[str, Any]) -> Workload:
        """Inverse of ``to_dict``. ``d`` is parsed JSON (plan.json), hence ``Any`` values."""
        overrides = tuple((str(a), str(b)) for a, b in d["dtype_overrides"])
        return Workload(int(d["context_tokens"]), int(d["prompt_tokens"]),
                        int(d["concurrency"]), DtypePolicy(str(d["weights_dtype"]), overrides),
                        str(d["kv_dtype"]), int(d.get("output_tokens", 256)),
                        SpeculativeOptions.from_dict(d["speculative"]) if "speculative" in d else None)
