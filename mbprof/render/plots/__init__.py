"""Scatter plots of configurations with their Pareto frontier (matplotlib, Agg).

Each point is one configuration, labelled ``width@resolution`` (``d1.2`` added when the
depth multiplier is not 1), coloured by model family. When one axis is accuracy
(top-1, top-5) the Pareto frontier is drawn and returned. When neither is (latency
against MAdds) a least-squares line is drawn instead, with the correlation in the
legend: how well one predicts the other on this machine. A log axis is asked for
(``log_x``, ``log_y``) and refused when a value is <= 0.

One idea a file, in the order a figure is made:

- ``axes``: the plottable columns (``AXES``, aliases), units and the frontier rule;
- ``checks``: refusing a missing axis, a cell that is not a number, a bad figure path;
- ``points``: the rows drawn, their labels, families, frontier; the correlation;
- ``styles``: a fixed colour per family, a marker per model;
- ``draw``: the figure itself, its footnote, saving it with the same bytes every time;
- ``labels``: placing point labels so they do not collide, with leader lines;
- ``frontier``: ``plot_frame`` (check, draw, save) and the document ``plot`` prints.

matplotlib is imported inside the functions that draw, so importing this package is
cheap. Import from the package, not from its files: the split is an inner matter.
"""

from mbprof.render.plots.axes import (
    ALIASES,
    AXES,
    BYTES_MB_FROM,
    Axis,
    available_axes,
    axis_label,
    axis_scale,
    has_frontier,
    resolve_axis,
)
from mbprof.render.plots.checks import (
    FIGURE_SUFFIXES,
    LABEL_COLUMNS,
    check_axes,
    check_figure_path,
    check_plot_values,
)
from mbprof.render.plots.draw import draw_figure, save_figure
from mbprof.render.plots.frontier import PlotResult, frontier_document, plot_frame
from mbprof.render.plots.points import correlation, plot_points, point_label
from mbprof.render.plots.styles import FAMILY_COLOURS, MARKERS, OTHER_COLOURS, family_of

__all__ = [
    "ALIASES",
    "AXES",
    "BYTES_MB_FROM",
    "FAMILY_COLOURS",
    "FIGURE_SUFFIXES",
    "LABEL_COLUMNS",
    "MARKERS",
    "OTHER_COLOURS",
    "Axis",
    "PlotResult",
    "available_axes",
    "axis_label",
    "axis_scale",
    "check_axes",
    "check_figure_path",
    "check_plot_values",
    "correlation",
    "draw_figure",
    "family_of",
    "frontier_document",
    "has_frontier",
    "plot_frame",
    "plot_points",
    "point_label",
    "resolve_axis",
    "save_figure",
]
