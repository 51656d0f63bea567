import pytest
from hypothesis import given
from hypothesis import strategies as st

from placer.ir.symbolic import Sym, dim_add, dim_div, dim_eval, dim_mul, dim_sub, parse_dim

batch, seq, past = Sym.var("batch"), Sym.var("seq"), Sym.var("past")


def test_arithmetic_normalizes():
    assert dim_add(seq, 0) == seq
    assert dim_sub(seq, seq) == 0
    assert dim_mul(batch, seq) == dim_mul(seq, batch)
    assert str(dim_mul(batch, seq)) == "batch*seq"
    assert str(dim_add(past, seq)) == "past+seq"
    assert dim_mul(seq, 0) == 0
    assert isinstance(dim_add(dim_sub(seq, 3), 3), Sym)


def test_exact_division_recovers_reshape_minus_one():
    numel = dim_mul(dim_mul(batch, seq), 4096)
    assert dim_div(numel, 4096) == dim_mul(batch, seq)
    assert dim_div(numel, dim_mul(batch, 4096)) == seq
    assert dim_div(numel, 3) is None
    assert dim_div(dim_add(seq, 1), seq) is None
    assert dim_div(dim_add(seq, past), dim_add(past, seq)) == 1


@pytest.mark.parametrize("text", ["batch*seq", "past+seq", "2*batch*seq-3", "-seq", "7", "seq*seq+seq"])
def test_parse_inverts_str(text):
    d = parse_dim(text)
    assert parse_dim(str(d)) == d


polys = st.recursive(
    st.one_of(st.integers(-5, 9), st.sampled_from([batch, seq, past])),
    lambda inner: st.one_of(
        st.tuples(inner, inner).map(lambda t: dim_add(*t)),
        st.tuples(inner, inner).map(lambda t: dim_mul(*t)),
        st.tuples(inner, inner).map(lambda t: dim_sub(*t)),
    ),
    max_leaves=6,
)


@given(polys, polys, st.integers(1, 9), st.integers(1, 9), st.integers(1, 9))
def test_polynomials_evaluate_like_integers(a, b, vb, vs, vp):
    env = {"batch": vb, "seq": vs, "past": vp}
    assert dim_eval(dim_add(a, b), env) == dim_eval(a, env) + dim_eval(b, env)
    assert dim_eval(dim_mul(a, b), env) == dim_eval(a, env) * dim_eval(b, env)
    assert parse_dim(str(a)) == a
    q = dim_div(dim_mul(a, b), b) if b != 0 else None
    if q is not None:
        assert dim_eval(q, env) * dim_eval(b, env) == dim_eval(a, env) * dim_eval(b, env)


def test_division_by_a_polynomial():
    total = dim_mul(dim_mul(batch, 64), dim_add(past, seq))
    assert dim_div(total, dim_add(past, seq)) == dim_mul(batch, 64)
    assert dim_div(dim_add(dim_mul(seq, seq), dim_mul(seq, 2)), dim_add(seq, 2)) == seq
    assert dim_div(dim_add(seq, 1), dim_add(seq, 2)) is None
