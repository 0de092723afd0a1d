"""The Pareto sweep against the definition (no other point at least as good on both
axes and strictly better on one), by hand and on random points."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from mbprof.render.plots import pareto_indices


def dominated(i, xs, ys, x_low, y_high):
    def better_or_equal(j):
        bx = xs[j] <= xs[i] if x_low else xs[j] >= xs[i]
        by = ys[j] >= ys[i] if y_high else ys[j] <= ys[i]
        return bx and by

    return any(better_or_equal(j) and (xs[j], ys[j]) != (xs[i], ys[i]) for j in range(len(xs)))


def test_by_hand():
    # MAdds (M) and top-1 of V2 0.5@160, 0.5@224, V1 0.5@224, V2 1.0@224, V1 1.0@224.
    xs = [50.2, 97.1, 149.5, 300.8, 568.7]
    ys = [61.0, 65.4, 63.3, 72.0, 70.6]
    assert pareto_indices(xs, ys) == [0, 1, 3]
    # Throughput (higher is better) against top-1: the fastest and the most accurate.
    assert pareto_indices([900, 400, 300], [61.0, 72.0, 70.0], x_lower_is_better=False) == [1, 0]


def test_ties_are_kept_together():
    assert pareto_indices([1, 1, 2], [5, 5, 5]) == [0, 1]


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.tuples(st.integers(0, 12), st.integers(0, 12)), min_size=1, max_size=25),
    st.booleans(),
    st.booleans(),
)
def test_matches_the_definition(points, x_low, y_high):
    xs = [float(p[0]) for p in points]
    ys = [float(p[1]) for p in points]
    expected = {i for i in range(len(xs)) if not dominated(i, xs, ys, x_low, y_high)}
    assert set(pareto_indices(xs, ys, x_low, y_high)) == expected
