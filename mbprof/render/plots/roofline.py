"""The roofline of a per-layer profile: every layer with MAdds drawn at its arithmetic
intensity (FLOPs per byte moved) against the GFLOP/s it achieved, under the machine's two
ceilings (memory bandwidth x intensity, rising, then the compute ceiling), coloured by
layer kind; the slowest layers are named. Layers without MAdds (batch norm, activations,
additions) have no intensity and are left out (the footnote says how much time they take).
matplotlib (Agg) is imported inside the function that draws.
"""

from __future__ import annotations

from pathlib import Path

from mbprof.core.records import LayerProfile

KIND_COLOURS = {
    "depthwise conv": "#d62728",
    "pointwise conv": "#1f77b4",
    "conv": "#2ca02c",
    "fully connected": "#9467bd",
    "other": "#7f7f7f",
    "unmapped": "#bcbd22",
}
NAMED = 5  # the slowest layers get their module path written beside them


def draw_roofline(profile: LayerProfile, title: str):
    """The figure, not yet saved."""
    import math

    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    drawn = [r for r in profile.rows if r.intensity and r.gflops]
    fig = Figure(figsize=(8.0, 5.6), dpi=150, layout="constrained")
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    xs = [r.intensity for r in drawn] or [profile.ridge]
    low = 10 ** math.floor(math.log10(min(xs + [profile.ridge]) / 2))
    high = 10 ** math.ceil(math.log10(max(xs + [profile.ridge]) * 2))
    grid = [low * (high / low) ** (i / 200) for i in range(201)]
    roof = [min(profile.compute_gflops, x * profile.bandwidth_gbs) for x in grid]
    ax.plot(grid, roof, "-", color="0.2", lw=1.4, zorder=2)
    ax.annotate(
        f"memory {profile.bandwidth_gbs:.1f} GB/s",
        (grid[10], roof[10]),
        textcoords="offset points",
        xytext=(4, 6),
        fontsize=7.5,
        color="0.25",
        rotation=0,
    )
    ax.annotate(
        f"compute {profile.compute_gflops:.1f} GFLOP/s",
        (grid[-1], profile.compute_gflops),
        textcoords="offset points",
        xytext=(-4, 5),
        ha="right",
        fontsize=7.5,
        color="0.25",
    )
    ax.axvline(profile.ridge, color="0.6", lw=0.8, ls=":", zorder=1)
    for kind, colour in KIND_COLOURS.items():
        mine = [r for r in drawn if (r.kind or "other") == kind]
        if not mine:
            continue
        share = sum(r.time_share_pct for r in mine)
        ax.scatter(
            [r.intensity for r in mine],
            [r.gflops for r in mine],
            s=[18 + 6 * r.time_share_pct for r in mine],
            color=colour,
            edgecolors="white",
            linewidths=0.5,
            alpha=0.9,
            zorder=3,
            label=f"{kind} ({len(mine)}, {share:.0f}% of the time)",
        )
    for r in sorted(drawn, key=lambda r: -r.time_ms)[:NAMED]:
        ax.annotate(
            r.path, (r.intensity, r.gflops), textcoords="offset points", xytext=(5, -3),
            fontsize=6.5, color="0.3",
        )  # fmt: skip
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlim(low, high)
    top = max([profile.compute_gflops] + [r.gflops for r in drawn])
    bottom = min([r.gflops for r in drawn] + [profile.compute_gflops / 100])
    ax.set_ylim(bottom / 2, top * 2)
    ax.grid(True, which="major", color="0.9", lw=0.7)
    ax.set_axisbelow(True)
    ax.tick_params(labelsize=9)
    ax.set_xlabel("Arithmetic intensity (FLOPs per byte moved: 2 x MAdds x batch / bytes)")
    ax.set_ylabel("Achieved GFLOP/s")
    ax.set_title(title, fontsize=11)
    ax.legend(loc="lower right", fontsize=7.5, framealpha=0.92, edgecolor="0.8")
    left_out = [r for r in profile.rows if not (r.intensity and r.gflops)]
    share = sum(r.time_share_pct for r in left_out)
    import textwrap

    footnote = (
        f"Not drawn: {len(left_out)} rows without MAdds (batch norm, activations, additions, "
        f"outside any layer), {share:.0f}% of the time. Dotted: the ridge point, "
        f"{profile.ridge:.1f} FLOP/B. A marker's area grows with its layer's share of time."
    )
    lines = textwrap.wrap(footnote, width=150)
    fig.text(0.01, 0.006, "\n".join(lines), fontsize=6.5, color="0.35", va="bottom")
    bottom = 0.012 + 0.022 * len(lines)
    fig.get_layout_engine().set(rect=(0, bottom, 1, 1 - bottom))
    return fig


def plot_roofline(profile: LayerProfile, path: Path, title: str) -> None:
    """Draw and save the roofline (PNG, SVG or PDF by the extension), same bytes each time."""
    from mbprof.render.plots import save_figure

    save_figure(draw_roofline(profile, title), Path(path))
