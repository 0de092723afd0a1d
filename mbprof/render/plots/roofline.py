"""Figures of their own kind: the roofline of a per-layer profile (layers with MAdds at their
intensity against their GFLOP/s, under the memory and compute ceilings) and the phone figure
of ``reproduce`` (scaled latency here against the published one, with a +-25% band)."""

from __future__ import annotations

import math
import textwrap
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from mbprof.core.records import LayerProfile
from mbprof.render.plots import footnote, new_axes, place_labels, save_figure

KIND_COLOURS = {
    "depthwise conv": "#d62728",
    "pointwise conv": "#1f77b4",
    "conv": "#2ca02c",
    "fully connected": "#9467bd",
    "other": "#7f7f7f",
    "unmapped": "#bcbd22",
}
NAMED = 5  # the slowest layers get their module path written beside them


def draw_roofline(profile: LayerProfile, title: str, unstable: str = ""):
    """The figure, not yet saved; ``unstable``: why its timing was unstable (said on it)."""
    drawn = [r for r in profile.rows if r.intensity and r.gflops]
    fig, ax = new_axes((8.0, 5.6))
    xs = [r.intensity for r in drawn] or [profile.ridge]
    low = 10 ** math.floor(math.log10(min(xs + [profile.ridge]) / 2))
    high = 10 ** math.ceil(math.log10(max(xs + [profile.ridge]) * 2))
    grid = [low * (high / low) ** (i / 200) for i in range(201)]
    roof = [min(profile.compute_gflops, x * profile.bandwidth_gbs) for x in grid]
    ax.plot(grid, roof, "-", color="0.2", lw=1.4, zorder=2)
    note = {"textcoords": "offset points", "fontsize": 7.5, "color": "0.25"}
    top = profile.compute_gflops
    ax.annotate(f"memory {profile.bandwidth_gbs:.1f} GB/s", (grid[10], roof[10]), (4, 6), **note)
    ax.annotate(f"compute {top:.1f} GFLOP/s", (grid[-1], top), (-4, 5), ha="right", **note)
    ax.axvline(profile.ridge, color="0.6", lw=0.8, ls=":", zorder=1)
    for kind, colour in KIND_COLOURS.items():
        mine = [r for r in drawn if (r.kind or "other") == kind]
        if not mine:
            continue
        share = sum(r.time_share_pct for r in mine)
        area = [max(6.0, 40.0 * r.time_share_pct) for r in mine]  # at least a dot
        style = {"color": colour, "edgecolors": "white", "linewidths": 0.5, "alpha": 0.9}
        label = f"{kind} ({len(mine)}, {share:.0f}% of the time)"
        mine_xy = [r.intensity for r in mine], [r.gflops for r in mine]
        ax.scatter(*mine_xy, s=area, zorder=3, label=label, **style)
    ax.set(xscale="log", yscale="log", xlim=(low, high))
    top = max([profile.compute_gflops] + [r.gflops for r in drawn])
    bottom = min([r.gflops for r in drawn] + [profile.compute_gflops / 100])
    ax.set_ylim(bottom / 2, top * 2)
    ax.grid(True, which="major", color="0.9", lw=0.7)
    ax.set_axisbelow(True)
    ax.tick_params(labelsize=9)
    ax.set_xlabel("Arithmetic intensity (FLOPs per byte moved: 2 x MAdds x batch / bytes)")
    ax.set_ylabel("Achieved GFLOP/s")
    ax.set_title(title, fontsize=11)
    legend = ax.legend(loc="lower right", fontsize=7.5, framealpha=0.92, edgecolor="0.8")
    for handle in legend.legend_handles:  # one size in the legend: colour is its key
        handle.set_sizes([30])
    fig.canvas.draw()  # lay out the axes so that label positions are measured in place
    named = sorted(range(len(drawn)), key=lambda i: -drawn[i].time_ms)[:NAMED]
    place_labels(
        fig, ax, [r.intensity for r in drawn], [r.gflops for r in drawn],
        [r.path if i in named else "" for i, r in enumerate(drawn)],
        [KIND_COLOURS.get(r.kind or "other", "#7f7f7f") for r in drawn],
        [False] * len(drawn), named, (grid, roof), 6.5,
    )  # fmt: skip
    left_out = [r for r in profile.rows if not (r.intensity and r.gflops)]
    share = sum(r.time_share_pct for r in left_out)
    text = (
        f"Not drawn: {len(left_out)} rows without MAdds (batch norm, activations, additions, "
        f"outside any layer), {share:.0f}% of the time. Dotted: the ridge point, "
        f"{profile.ridge:.1f} FLOP/B. A marker's area is proportional to its layer's share of "
        "time (at least a dot)."
    )
    warning = f"UNSTABLE timing behind this figure: {unstable}." if unstable else ""
    footnote(fig, textwrap.wrap(text, width=150), 0.006, textwrap.wrap(warning, width=130))
    return fig


def plot_roofline(profile: LayerProfile, path: Path, title: str, unstable: str = "") -> None:
    """Draw and save the roofline (PNG, SVG or PDF by the extension), same bytes each time."""
    save_figure(draw_roofline(profile, title, unstable), Path(path))


PHONE_MARKERS = "osD^v<>P"
BAND = 0.25


def draw_phone(rows: Sequence[Mapping[str, Any]], path: Path) -> None:
    """``rows`` with ``series``, ``published_ms`` and ``predicted_ms`` (``phone.csv``)."""
    fig, ax = new_axes((7.0, 6.0))
    values = [v for r in rows for v in (r["published_ms"], r["predicted_ms"])] or [1.0, 10.0]
    low, high = min(values) / 1.3, max(values) * 1.3
    band = [low * (1 - BAND), high * (1 - BAND)], [low * (1 + BAND), high * (1 + BAND)]
    ax.fill_between([low, high], *band, color="0.92", label=f"within {BAND:.0%}")
    ax.plot([low, high], [low, high], color="0.4", linewidth=1, label="measured x k = published")
    for i, series in enumerate(dict.fromkeys(r["series"] for r in rows)):
        mine = [r for r in rows if r["series"] == series]
        mine_xy = [r["published_ms"] for r in mine], [r["predicted_ms"] for r in mine]
        marker = PHONE_MARKERS[i % len(PHONE_MARKERS)]
        ax.scatter(*mine_xy, s=22, marker=marker, alpha=0.8, label=series)
    ax.set(xscale="log", yscale="log", xlim=(low, high), ylim=(low, high))
    ax.set_xlabel("Published phone latency (ms, Pixel 1, TF-Lite, float, one core)")
    ax.set_ylabel("Measured here x fitted scale k (ms)")
    ax.set_title("Phone latency predicted from this machine, one thread")
    ax.legend(fontsize=8, loc="upper left")
    save_figure(fig, path)
