"""Point labels that do not collide: greedy placement with leader lines.

Everything is measured in display pixels after the axes are laid out. Frontier points
are labelled first, then the most crowded; each label takes the first of the candidate
spots around its marker (nearest first) that covers no marker, line or other label and
stays inside the axes, else the least-covered one. A label set beyond the first ring
gets a thin leader line to its point, which later labels also keep off.
"""

from __future__ import annotations

import math


def _overlap(box, boxes) -> float:
    """Summed intersection area of ``box`` (x0, y0, x1, y1) with each row of ``boxes``."""
    import numpy as np

    if len(boxes) == 0:
        return 0.0
    boxes = np.asarray(boxes, dtype=float)
    w = np.clip(np.minimum(box[2], boxes[:, 2]) - np.maximum(box[0], boxes[:, 0]), 0, None)
    h = np.clip(np.minimum(box[3], boxes[:, 3]) - np.maximum(box[1], boxes[:, 1]), 0, None)
    return float((w * h).sum())


def _candidates() -> list[tuple[float, float, str, str, bool]]:
    """Offsets in points around a marker, nearest first: (dx, dy, ha, va, leader line).
    Twelve directions on rings of growing radius; labels beyond the first ring get a line."""
    out = []
    for radius in (4.0, 9.0, 15.0, 22.0, 30.0):
        leader = radius > 5
        for step in (1, 11, 5, 7, 0, 6, 3, 9, 2, 10, 4, 8):  # diagonals and sides first
            angle = math.radians(30 * step)
            dx, dy = radius * math.cos(angle), radius * math.sin(angle)
            ha = "left" if dx > 1e-6 else "right" if dx < -1e-6 else "center"
            va = "bottom" if dy > 1e-6 else "top" if dy < -1e-6 else "center"
            if ha == "center" or va == "center":  # keep a gap from the marker's edge
                dx, dy = dx * 1.25, dy * 1.25
            out.append((round(dx, 3), round(dy, 3), ha, va, leader))
    return out


def _darker(colour: str, factor: float = 0.6) -> tuple[float, float, float]:
    from matplotlib.colors import to_rgb

    return tuple(factor * c for c in to_rgb(colour))


def _boxes_along(start, end, px_per_pt: float, half: float, ends: bool):
    """Small boxes (``half`` pixels each side of a centre) about every 3 points along the
    segment ``start`` -> ``end``, to keep labels off a line. With ``ends`` the first and
    last sit on the ends (a frontier or fit line); without, the ends are left free (a
    leader line: its ends sit on the marker and the label)."""
    import numpy as np

    (x0, y0), (x1, y1) = start, end
    steps = max(2, int(math.hypot(x1 - x0, y1 - y0) / (3 * px_per_pt)))
    ts = np.linspace(0, 1, steps) if ends else [k / steps for k in range(1, steps)]
    boxes = []
    for t in ts:
        x, y = x0 + t * (x1 - x0), y0 + t * (y1 - y0)
        boxes.append((x - half, y - half, x + half, y + half))
    return boxes


def place_labels(fig, ax, xs, ys, labels, colours, rings, order, line_xy, fontsize: float) -> None:
    """Greedy placement: each label takes the first nearby spot that covers no marker,
    line or other label and stays inside the axes; failing that, the least-covered spot
    (a thin leader line joins a label set further out to its point)."""
    import numpy as np

    renderer = fig.canvas.get_renderer()
    px_per_pt = fig.dpi / 72.0
    pts = ax.transData.transform(np.column_stack([xs, ys]))
    frame_box = ax.get_window_extent(renderer)
    markers = []
    for (x, y), ring in zip(pts, rings, strict=True):
        radius = (6.0 if ring else 4.0) * px_per_pt
        markers.append((x - radius, y - radius, x + radius, y + radius))
    lines = []
    if line_xy is not None and len(line_xy[0]) > 1:
        lp = ax.transData.transform(np.column_stack(line_xy))
        for start, end in zip(lp[:-1], lp[1:], strict=True):
            lines += _boxes_along(start, end, px_per_pt, 1.5, ends=True)
    sizes = {}
    for text in set(labels):
        probe = ax.text(0, 0, text, fontsize=fontsize)
        extent = probe.get_window_extent(renderer)
        sizes[text] = (extent.width, extent.height)
        probe.remove()
    placed: list[tuple[float, float, float, float]] = []
    leaders: list[tuple[float, float, float, float]] = []
    frame_extent = [frame_box.extents]
    for i in order:
        w, h = sizes[labels[i]]
        others = [m for j, m in enumerate(markers) if j != i]
        best, best_score = None, math.inf
        for dx, dy, ha, va, leader in _candidates():
            ax_, ay_ = pts[i][0] + dx * px_per_pt, pts[i][1] + dy * px_per_pt
            x0 = ax_ - (w if ha == "right" else w / 2 if ha == "center" else 0)
            y0 = ay_ - (h if va == "top" else h / 2 if va == "center" else 0)
            box = (x0, y0, x0 + w, y0 + h)
            score = (
                3 * _overlap(box, placed)
                + 2 * _overlap(box, others)
                + 0.5 * _overlap(box, lines)
                + 0.5 * _overlap(box, leaders)
                + 5 * (w * h - _overlap(box, frame_extent))
            )
            segment = _boxes_along(pts[i], (ax_, ay_), px_per_pt, 1.0, ends=False) if leader else []
            if segment:
                score += sum(3 * _overlap(b, placed) + _overlap(b, others) for b in segment)
            if score < best_score:
                best, best_score = (dx, dy, ha, va, leader, box, segment), score
            if score == 0:
                break
        dx, dy, ha, va, leader, box, segment = best
        arrow = {"arrowstyle": "-", "color": "0.6", "lw": 0.5, "shrinkA": 0, "shrinkB": 3}
        ax.annotate(
            labels[i],
            (xs[i], ys[i]),
            xytext=(dx, dy),
            textcoords="offset points",
            ha=ha,
            va=va,
            fontsize=fontsize,
            color=_darker(colours[i]),
            arrowprops=arrow if leader else None,
            zorder=5,
        )
        placed.append(box)
        leaders += segment


def label_order(ax, xs, ys, frontier) -> list[int]:
    """Frontier points first, then the most crowded: sparse points have room to spare."""
    import numpy as np

    pts = ax.transData.transform(np.column_stack([xs, ys]))
    dist = np.hypot(pts[:, None, 0] - pts[None, :, 0], pts[:, None, 1] - pts[None, :, 1])
    crowd = (dist < 60).sum(axis=1)
    first = frontier or [False] * len(xs)
    return sorted(range(len(xs)), key=lambda i: (not first[i], -int(crowd[i]), -ys[i], xs[i]))
