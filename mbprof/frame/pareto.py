"""The Pareto frontier of configurations on two axes (pure Python, no matplotlib).

A configuration is on the frontier when no other is at least as good on both axes and
strictly better on one. "Good" is per axis: lower for costs (MAdds, latency, memory),
higher for benefits (top-1, throughput).
"""

from __future__ import annotations

from collections.abc import Sequence


def pareto_indices(
    xs: Sequence[float],
    ys: Sequence[float],
    x_lower_is_better: bool = True,
    y_higher_is_better: bool = True,
) -> list[int]:
    """Indices of the non-dominated points, in order of increasing x.

    Points that are equal on both axes are all kept when one of them is on the frontier.
    """
    if len(xs) != len(ys):
        raise ValueError(f"xs and ys differ in length: {len(xs)} and {len(ys)}")
    # Turn both axes into "smaller is better", then sweep in order of the first.
    cost_a = [x if x_lower_is_better else -x for x in xs]
    cost_b = [-y if y_higher_is_better else y for y in ys]
    order = sorted(range(len(xs)), key=lambda i: (cost_a[i], cost_b[i]))
    kept: list[int] = []
    best_b = float("inf")
    last: tuple[float, float] | None = None
    for i in order:
        point = (cost_a[i], cost_b[i])
        if cost_b[i] < best_b or point == last:
            kept.append(i)
            best_b = cost_b[i]
            last = point
    return sorted(kept, key=lambda i: (xs[i], ys[i]))
