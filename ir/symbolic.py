"""Symbolic dimensions: integer polynomials over named symbols such as ``batch`` and ``seq``.

ONNX's own shape inference forgets that ``Reshape(x, [-1, 4096])`` of a ``[batch, seq, 4096]``
tensor has ``batch*seq`` rows; a polynomial keeps it. Only what shape rules need is supported:
sums, products, and exact division.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

Monomial = tuple[str, ...]  # sorted symbol names, with repetition for powers


@dataclass(frozen=True)
class Sym:
    """A polynomial with integer coefficients. Build with ``Sym.var("seq")`` and arithmetic."""

    terms: tuple[tuple[Monomial, int], ...]  # sorted, no zero coefficients

    @staticmethod
    def var(name: str) -> Sym:
        return Sym(((((name,)), 1),))

    @staticmethod
    def _make(terms: Mapping[Monomial, int]) -> Dim:
        items = tuple(sorted((m, c) for m, c in terms.items() if c != 0))
        if not items:
            return 0
        if len(items) == 1 and items[0][0] == ():
            return items[0][1]
        return Sym(items)

    def _dict(self) -> dict[Monomial, int]:
        return dict(self.terms)

    @property
    def symbols(self) -> frozenset[str]:
        return frozenset(s for m, _ in self.terms for s in m)

    def __add__(self, other: Dim) -> Dim:
        out = self._dict()
        for m, c in _terms(other).items():
            out[m] = out.get(m, 0) + c
        return Sym._make(out)

    __radd__ = __add__

    def __neg__(self) -> Dim:
        return Sym._make({m: -c for m, c in self.terms})

    def __sub__(self, other: Dim) -> Dim:
        return self + (-other if isinstance(other, int) else -other)

    def __rsub__(self, other: Dim) -> Dim:
        return (-self) + other

    def __mul__(self, other: Dim) -> Dim:
        out: dict[Monomial, int] = {}
        for m1, c1 in self.terms:
            for m2, c2 in _terms(other).items():
                m = tuple(sorted(m1 + m2))
                out[m] = out.get(m, 0) + c1 * c2
        return Sym._make(out)

    __rmul__ = __mul__

    def evaluate(self, bindings: Mapping[str, int]) -> int:
        """The integer value under ``bindings``; KeyError names a missing symbol."""
        total = 0
        for m, c in self.terms:
            v = c
            for s in m:
                v *= bindings[s]
            total += v
        return total

    def substitute(self, bindings: Mapping[str, Dim]) -> Dim:
        """Replace the bound symbols (by ints or other polynomials)."""
        total: Dim = 0
        for m, c in self.terms:
            v: Dim = c
            for s in m:
                v = dim_mul(v, bindings.get(s, Sym.var(s)))
            total = dim_add(total, v)
        return total

    def __str__(self) -> str:
        parts = []
        for m, c in sorted(self.terms, key=lambda t: (-len(t[0]), t[0])):
            body = "*".join(m)
            if not body:
                parts.append(str(c))
            elif c == 1:
                parts.append(body)
            elif c == -1:
                parts.append("-" + body)
            else:
                parts.append(f"{c}*{body}")
        return "+".join(parts).replace("+-", "-")


Dim = int | Sym


def _terms(d: Dim) -> dict[Monomial, int]:
    if isinstance(d, Sym):
        return d._dict()
    return {(): int(d)} if d else {}


def dim_add(a: Dim, b: Dim) -> Dim:
    if isinstance(a, int) and isinstance(b, int):
        return a + b
    return Sym._make({**{}, **_sum(_terms(a), _terms(b))})


def _sum(x: dict[Monomial, int], y: dict[Monomial, int]) -> dict[Monomial, int]:
    out = dict(x)
    for m, c in y.items():
        out[m] = out.get(m, 0) + c
    return out


def dim_sub(a: Dim, b: Dim) -> Dim:
    return dim_add(a, dim_mul(b, -1))


def dim_mul(a: Dim, b: Dim) -> Dim:
    if isinstance(a, int) and isinstance(b, int):
        return a * b
    if isinstance(a, int):
        a, b = b, a
    return a * b


def dim_prod(dims: tuple[Dim, ...] | list[Dim]) -> Dim:
    out: Dim = 1
    for d in dims:
        out = dim_mul(out, d)
    return out


def dim_div(a: Dim, b: Dim) -> Dim | None:
    """Exact quotient ``a / b``, or None when it is not a polynomial
    (``64*batch*past + 64*batch*seq`` by ``past + seq`` is ``64*batch``)."""
    if isinstance(b, int):
        if b == 0:
            return None
        if isinstance(a, int):
            return a // b if a % b == 0 else None
        if all(c % b == 0 for _, c in a.terms):
            return Sym._make({m: c // b for m, c in a.terms})
        return None
    if len(b.terms) != 1:
        return _long_div(a, b)
    # Division by a single monomial whose coefficient divides every term.
    (bm, bc), = b.terms
    out: dict[Monomial, int] = {}
    for m, c in _terms(a).items():
        rest = list(m)
        for s in bm:
            if s not in rest:
                return None
            rest.remove(s)
        if c % bc:
            return None
        out[tuple(rest)] = c // bc
    return Sym._make(out)


def _long_div(a: Dim, b: Sym) -> Dim | None:
    """Multivariate long division by a polynomial ``b`` with lexicographic leading terms; the
    quotient is returned only when the remainder is exactly 0, so it is always exact."""
    lead_b, coeff_b = max(b.terms)
    quotient: Dim = 0
    rest: Dim = a
    for _ in range(64):
        if rest == 0:
            return quotient
        if not isinstance(rest, Sym):
            return None
        lead_r, coeff_r = max(rest.terms)
        m = list(lead_r)
        for s in lead_b:
            if s not in m:
                return None
            m.remove(s)
        if coeff_r % coeff_b:
            return None
        term = dim_mul(dim_prod([Sym.var(s) for s in m]) if m else 1, coeff_r // coeff_b)
        quotient = dim_add(quotient, term)
        rest = dim_sub(rest, dim_mul(term, b))
    return None


def dim_eval(d: Dim, bindings: Mapping[str, int]) -> int:
    return d.evaluate(bindings) if isinstance(d, Sym) else int(d)


def dim_str(d: Dim) -> str:
    return str(d)


_TOKEN = re.compile(r"\s*([+-]?)\s*(\d+\*)?([A-Za-z_][\w.]*(?:\*[A-Za-z_][\w.]*)*|\d+)")


def parse_dim(text: str | int) -> Dim:
    """Parse the text form printed by ``str(Sym)``: ``batch*seq+3``, ``-seq``, ``128``."""
    if isinstance(text, int):
        return text
    s = text.strip()
    if re.fullmatch(r"-?\d+", s):
        return int(s)
    out: Dim = 0
    pos = 0
    while pos < len(s):
        m = _TOKEN.match(s, pos)
        if not m or m.end() == pos:
            raise ValueError(f"cannot parse dimension {text!r}")
        sign = -1 if m.group(1) == "-" else 1
        coeff = int(m.group(2)[:-1]) if m.group(2) else 1
        body = m.group(3)
        if body.isdigit():
            term: Dim = int(body) * coeff * sign
        else:
            term = coeff * sign
            for name in body.split("*"):
                term = dim_mul(term, Sym.var(name))
        out = dim_add(out, term)
        pos = m.end()
    return out
