"""A wafer's floorplan as an SVG picture (a pure function of the problem and the answer).

Rectangles are labelled by region and shaded by per-PE SRAM use (white = empty, dark blue =
the PE's whole SRAM); the data path is drawn as arrows between consecutive regions' centres,
other links (values read by several regions) as thin dashed lines. Hovering a rectangle shows
its size, bytes per PE and time. The text is deterministic: same inputs, same bytes.
"""

from __future__ import annotations

from xml.sax.saxutils import escape

from placer.floorplan.problem import Floorplan, FloorplanProblem, shape_of

_WIDTH = 900  # pixels across the grid's columns
_LIGHT, _DARK = (247, 251, 255), (8, 48, 107)


def _shade(fraction: float) -> str:
    f = min(1.0, max(0.0, fraction))
    r, g, b = (round(lo + (hi - lo) * f) for lo, hi in zip(_LIGHT, _DARK))
    return f"#{r:02x}{g:02x}{b:02x}"


def _num(x: float) -> str:
    return f"{x:.2f}".rstrip("0").rstrip(".")


def floorplan_svg(
    problem: FloorplanProblem, floorplan: Floorplan, title: str = "", clock_hz: float = 0.0
) -> str:
    """The SVG text of one wafer's floorplan.

    Args:
        title: a caption above the grid (e.g. the model and wafer index).
        clock_hz: when given, times in the tooltips are in microseconds instead of cycles.
    """
    scale = _WIDTH / problem.cols
    top = 40
    height = problem.rows * scale
    legend = 40
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{_num(_WIDTH + 20)}" '
        f'height="{_num(top + height + legend)}" '
        f'viewBox="0 0 {_num(_WIDTH + 20)} {_num(top + height + legend)}" '
        'font-family="sans-serif">',
        '<defs><marker id="arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="6" markerHeight="6" '
        'orient="auto-start-reverse"><path d="M 0 0 L 10 5 L 0 10 z" fill="#d62728"/></marker></defs>',
        f'<text x="10" y="16" font-size="14">{escape(title)}</text>',
        f'<text x="10" y="32" font-size="11">{problem.rows} x {problem.cols} PEs, '
        f"{len(floorplan.rects)} regions, interval {floorplan.interval_ticks:,} cycles, "
        f"latency {floorplan.latency_ticks:,} cycles ({escape(floorplan.status)})</text>",
        f'<rect x="10" y="{top}" width="{_num(problem.cols * scale)}" height="{_num(height)}" '
        'fill="#eeeeee" stroke="#999999"/>',
    ]
    centres = {}
    for r in floorplan.rects:
        s = shape_of(problem, r)
        region = problem.regions[r.region]
        x, y, w, h = 10 + r.col * scale, top + r.row * scale, r.cols * scale, r.rows * scale
        centres[r.region] = (10 + (r.col + r.cols / 2) * scale, top + (r.row + r.rows / 2) * scale)
        time = f"{s.ticks / clock_hz * 1e6:.3f} us" if clock_hz else f"{s.ticks:,} cycles"
        tip = (
            f"{region.name}: {r.rows} x {r.cols} PEs at ({r.row}, {r.col}), {s.pe_bytes:,} B per PE "
            f"of {problem.pe_sram_bytes:,}, {time}, {s.colours} colours"
        )
        out.append(
            f'<g><title>{escape(tip)}</title><rect x="{_num(x)}" y="{_num(y)}" width="{_num(w)}" '
            f'height="{_num(h)}" fill="{_shade(s.pe_bytes / problem.pe_sram_bytes)}" stroke="#333333" '
            'stroke-width="0.5"/>'
        )
        size = min(12.0, h * 0.8, w * 1.6 / max(1, len(region.name)))
        if size >= 4:
            dark = s.pe_bytes / problem.pe_sram_bytes > 0.55
            cx, cy = x + w / 2, y + h / 2 - min(h / 4, size)  # above the data path through the centre
            transform = ""
            if h > 2 * w and h * 0.8 > size:  # tall strips: write along them
                size = min(12.0, w * 0.8, h * 1.6 / max(1, len(region.name)))
                transform = f' transform="rotate(-90 {_num(cx)} {_num(cy)})"'
            if size >= 4:
                out.append(
                    f'<text x="{_num(cx)}" y="{_num(cy)}" font-size="{_num(size)}" text-anchor="middle" '
                    f'dominant-baseline="middle" fill="{"#ffffff" if dark else "#000000"}"{transform}>'
                    f"{escape(region.name)}</text>"
                )
        out.append("</g>")
    path = {(e.src, e.dst) for e in problem.links if e.dst == e.src + 1}
    for e in sorted(problem.links, key=lambda e: (e.src, e.dst)):
        (x1, y1), (x2, y2) = centres[e.src], centres[e.dst]
        if (e.src, e.dst) in path:
            out.append(
                f'<line x1="{_num(x1)}" y1="{_num(y1)}" x2="{_num(x2)}" y2="{_num(y2)}" stroke="#d62728" '
                'stroke-width="1.5" marker-end="url(#arrow)"/>'
            )
        else:
            out.append(
                f'<line x1="{_num(x1)}" y1="{_num(y1)}" x2="{_num(x2)}" y2="{_num(y2)}" stroke="#d62728" '
                'stroke-width="0.5" stroke-dasharray="3 3" opacity="0.3"/>'
            )
    y0 = top + height + 12
    for i in range(11):
        out.append(
            f'<rect x="{10 + i * 20}" y="{_num(y0)}" width="20" height="10" fill="{_shade(i / 10)}" '
            'stroke="#999999" stroke-width="0.3"/>'
        )
    out.append(
        f'<text x="{10 + 11 * 20 + 8}" y="{_num(y0 + 9)}" font-size="11">per-PE SRAM use, 0 to '
        f"{problem.pe_sram_bytes:,} B; red arrows: data path</text>"
    )
    out.append("</svg>")
    return "\n".join(out) + "\n"
