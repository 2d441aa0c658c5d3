"""The differential checks' account of a wrong result (tfkata/differential.py): when the learner's array is a
simple slip away from the reference's, the mismatch says which slip, before the numbers."""
from __future__ import annotations

import numpy as np
import pytest

from tfkata.differential import difference, relation

RNG = np.random.RandomState(0)
REF = RNG.randn(2, 5, 4)
SQUARE = RNG.randn(3, 4, 4)


@pytest.mark.parametrize("got, ref, says", [
    (REF * 0.5, REF, "times 0.5 everywhere"),
    (-REF, REF, "times -1 everywhere"),
    (REF + 0.25, REF, "plus 0.25 everywhere"),
    (np.swapaxes(SQUARE, -1, -2), SQUARE, "transposed"),
    (np.concatenate([np.zeros((2, 1, 4)), REF[:, :-1]], 1), REF, "one step later along axis 1"),
    (np.concatenate([REF[:, 1:], REF[:, -1:]], 1), REF, "one step earlier along axis 1"),
    (np.flip(REF, 1), REF, "reversed along axis 1"),
    (REF[[1, 0]], REF, "reversed along axis 0"),  # two rows: swapped is reversed
    (REF[:, [2, 0, 1, 3, 4]], REF, "along axis 1 in another order ([2, 0, 1, 3, 4])"),
    (np.zeros_like(REF), REF, "all zeros where the reference is not"),  # not "times 0: a mean for a sum"
])
def test_a_simple_slip_is_named(got, ref, says):
    assert says in (relation(got, ref) or ""), relation(got, ref)
    assert difference(got, ref).startswith(relation(got, ref) + "; max |diff|"), difference(got, ref)


@pytest.mark.parametrize("got, ref", [
    (REF + RNG.randn(*REF.shape) * 0.1, REF),                    # noise: no relation to claim
    (np.full((3, 4), 0.25), RNG.dirichlet(np.ones(4), 3)),       # uniform weights for learned ones
    (np.array([1.0, np.nan]), np.array([1.0, 2.0])),             # a NaN: the numbers say it
    (np.array([2.0]), np.array([1.0])),                          # one number: nothing to tell apart
    (REF[:, :4], REF),                                           # another shape: difference() says the shape
])
def test_no_relation_is_claimed_where_none_holds(got, ref):
    assert relation(got, ref) is None


def test_equal_arrays_are_no_difference():
    assert difference(REF.copy(), REF) is None


def test_a_mismatch_says_where_the_results_differ_first():
    """Two results that read alike when cut short (the same first values): the line says where they differ
    first, which the learner needs, before the two cut-off descriptions."""
    from types import SimpleNamespace

    from tfkata.differential import Case, Mismatch, compare

    ref = SimpleNamespace(f=lambda n: {"images": np.arange(n * 20.0).reshape(n, 20), "labels": np.arange(n)})
    mine = SimpleNamespace(f=lambda n: {"images": np.arange(n * 20.0).reshape(n, 20), "labels": np.arange(n)[::-1]})
    with pytest.raises(Mismatch) as info:
        compare("f", mine, ref, [Case("n = 4", (4,))], lambda mod, case: mod.f(*case.args))
    line = str(info.value)
    assert line.startswith("f: on n = 4, yours differs from the reference: ['labels']: "), line
    assert line.index("instead of") < line.index("yours gives"), line
