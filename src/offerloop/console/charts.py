"""Charts of the console drawn on the server as inline SVG: horizontal bars, a heatmap, paired bars and
intervals around zero. No script and no style attribute (the console's CSP allows neither inline): colours
are presentation attributes. Every chart is an image with a title and a description; the page shows the same
figures as a table next to it, for screen readers and for copying."""

from __future__ import annotations

import math
from collections.abc import Sequence

from markupsafe import Markup, escape

WIDTH = 640
ROW = 26
LABEL_W = 180
PAD = 8
INK, MUTED, BAR, BAR2, GRID = "#1b1f24", "#4a5563", "#0b5cad", "#d97706", "#c9d1da"


def _num(x: float) -> str:
    return f"{x:.1f}".rstrip("0").rstrip(".")


def _clip(text: str, chars: int = 26) -> str:
    return text if len(text) <= chars else text[: chars - 1] + "…"


def _svg(ident: str, title: str, desc: str, height: float, body: list[str]) -> Markup:
    head = (
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {_num(height)}" role="img" '
        f'aria-labelledby="{escape(ident)}-t {escape(ident)}-d" id="{escape(ident)}" font-family="system-ui, sans-serif" '
        f'font-size="12"><title id="{escape(ident)}-t">{escape(title)}</title>'
        f'<desc id="{escape(ident)}-d">{escape(desc)}</desc>'
    )
    return Markup(head + "".join(body) + "</svg>")


def bars(ident: str, title: str, rows: Sequence[tuple[str, float, str]]) -> Markup:
    """One horizontal bar per (label, value, text shown at its end); negative values are drawn as zero."""
    top = max((v for _, v, _ in rows), default=0.0)
    span = WIDTH - LABEL_W - 110
    body = []
    for i, (label, value, text) in enumerate(rows):
        y = PAD + i * ROW
        w = 0.0 if top <= 0 or not math.isfinite(value) else max(0.0, value) / top * span
        body.append(
            f'<text x="{LABEL_W - 6}" y="{y + 16}" text-anchor="end" fill="{INK}">{escape(_clip(label))}</text>'
            f'<rect x="{LABEL_W}" y="{y + 4}" width="{_num(w)}" height="{ROW - 8}" fill="{BAR}">'
            f"<title>{escape(label)}: {escape(text)}</title></rect>"
            f'<text x="{_num(LABEL_W + w + 6)}" y="{y + 16}" fill="{MUTED}">{escape(text)}</text>'
        )
    desc = f"{len(rows)} bars, the longest {_num(top)}"
    return _svg(ident, title, desc, PAD * 2 + max(1, len(rows)) * ROW, body)


def _heat(share: float) -> str:
    """White to the accent blue, by share in [0, 1] (text turns white on the darker half)."""
    s = min(1.0, max(0.0, share))
    r, g, b = (round(255 + (t - 255) * s) for t in (11, 92, 173))
    return f"#{r:02x}{g:02x}{b:02x}"


def heatmap(
    ident: str,
    title: str,
    rows: Sequence[str],
    columns: Sequence[str],
    values: Sequence[Sequence[float | None]],
) -> Markup:
    """A grid of shares (0..1) as percentages; None cells (not observable yet) are left blank."""
    cols = max(1, len(columns))
    cell_w = max(22.0, (WIDTH - 90) / cols)
    body = [
        f'<text x="{_num(90 + (j + 0.5) * cell_w)}" y="14" text-anchor="middle" fill="{MUTED}">{escape(c)}</text>'
        for j, c in enumerate(columns)
    ]
    for i, (label, line) in enumerate(zip(rows, values, strict=True)):
        y = 20 + i * 22
        body.append(
            f'<text x="84" y="{y + 15}" text-anchor="end" fill="{INK}">{escape(_clip(label, 12))}</text>'
        )
        for j, v in enumerate(line):
            x = 90 + j * cell_w
            if v is None:
                continue
            pct = f"{v * 100:.0f}%"
            body.append(
                f'<rect x="{_num(x)}" y="{y}" width="{_num(cell_w - 2)}" height="20" fill="{_heat(v)}" stroke="{GRID}">'
                f"<title>{escape(label)}, month {escape(columns[j])}: {pct}</title></rect>"
                f'<text x="{_num(x + cell_w / 2 - 1)}" y="{y + 14}" text-anchor="middle" font-size="10" '
                f'fill="{"#ffffff" if v > 0.5 else INK}">{pct}</text>'
            )
    desc = f"{len(rows)} rows by {len(columns)} columns; darker is a larger share"
    return _svg(ident, title, desc, 24 + max(1, len(rows)) * 22, body)


def paired(ident: str, title: str, labels: Sequence[str], first: tuple[str, Sequence[float]],
           second: tuple[str, Sequence[float]]) -> Markup:  # fmt: skip
    """Two bars per label (e.g. actual and predicted), with a legend."""
    top = max([*first[1], *second[1], 0.0])
    span = WIDTH - LABEL_W - 80
    body = [
        f'<rect x="{LABEL_W}" y="4" width="12" height="12" fill="{BAR}"/><text x="{LABEL_W + 16}" y="14" fill="{INK}">{escape(first[0])}</text>'
        f'<rect x="{LABEL_W + 140}" y="4" width="12" height="12" fill="{BAR2}"/><text x="{LABEL_W + 156}" y="14" fill="{INK}">{escape(second[0])}</text>'
    ]
    for i, label in enumerate(labels):
        y = 24 + i * (ROW + 10)
        body.append(
            f'<text x="{LABEL_W - 6}" y="{y + 18}" text-anchor="end" fill="{INK}">{escape(_clip(label))}</text>'
        )
        for k, (name, values, colour) in enumerate(((*first, BAR), (*second, BAR2))):
            v = float(values[i])
            w = 0.0 if top <= 0 or not math.isfinite(v) else max(0.0, v) / top * span
            yy = y + k * 14
            body.append(
                f'<rect x="{LABEL_W}" y="{yy}" width="{_num(w)}" height="12" fill="{colour}">'
                f"<title>{escape(label)}, {escape(name)}: {v:.3f}</title></rect>"
                f'<text x="{_num(LABEL_W + w + 4)}" y="{yy + 10}" font-size="10" fill="{MUTED}">{v:.2f}</text>'
            )
    return _svg(ident, title, f"{len(labels)} pairs of bars", 30 + max(1, len(labels)) * (ROW + 10), body)


def intervals(ident: str, title: str, rows: Sequence[tuple[str, float, float, float]]) -> Markup:
    """Each (label, estimate, low, high) as a point and its interval on a shared axis with zero marked."""
    finite = [x for _, e, lo, hi in rows for x in (e, lo, hi) if math.isfinite(x)]
    lo_all, hi_all = min([*finite, 0.0]), max([*finite, 0.0])
    if hi_all - lo_all <= 0:
        hi_all, lo_all = 1.0, -1.0
    span = WIDTH - LABEL_W - 30

    def x(v: float) -> float:
        return LABEL_W + (v - lo_all) / (hi_all - lo_all) * span

    height = PAD * 2 + max(1, len(rows)) * ROW + 16
    body = [
        f'<line x1="{_num(x(0))}" y1="4" x2="{_num(x(0))}" y2="{_num(height - 16)}" stroke="{MUTED}" stroke-dasharray="4 3"/>'
        f'<text x="{_num(x(0))}" y="{_num(height - 4)}" text-anchor="middle" fill="{MUTED}">0</text>'
    ]
    for i, (label, est, lo, hi) in enumerate(rows):
        y = PAD + i * ROW + 12
        if not all(math.isfinite(v) for v in (est, lo, hi)):
            continue
        body.append(
            f'<text x="{LABEL_W - 6}" y="{y + 4}" text-anchor="end" fill="{INK}">{escape(_clip(label))}</text>'
            f'<line x1="{_num(x(lo))}" y1="{y}" x2="{_num(x(hi))}" y2="{y}" stroke="{BAR}" stroke-width="3"/>'
            f'<circle cx="{_num(x(est))}" cy="{y}" r="5" fill="{BAR2}">'
            f"<title>{escape(label)}: {est:.4f} [{lo:.4f}, {hi:.4f}]</title></circle>"
        )
    return _svg(ident, title, f"{len(rows)} estimates with 95% intervals", height, body)
