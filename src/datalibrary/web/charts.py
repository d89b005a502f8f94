"""Server-side SVG charts for the costs pages: no JavaScript library, no CDN, nothing to build.

Each chart scales to its container (``viewBox``), carries a title and a text alternative,
and every bar has a tooltip (``<title>``) with its exact amount."""

from __future__ import annotations

from decimal import Decimal

from markupsafe import Markup, escape

COLORS = {"compute": "#2f6fb3", "storage": "#e39b2d", "query": "#3a9a5b"}
BAR = "#2f6fb3"


def _fmt(value: Decimal) -> str:
    return f"{value:.2f}"


def stacked_days(
    days: list[dict[str, Decimal | str]], series: tuple[str, ...], currency: str, title: str
) -> Markup:
    """Daily bars stacked by category, a legend under them."""
    width, height, left, bottom, top = 720, 240, 48, 28, 12
    totals = [sum((Decimal(str(d[s])) for s in series), Decimal(0)) for d in days]
    peak = max(totals, default=Decimal(0)) or Decimal(1)
    plot_h = height - bottom - top
    step = (width - left - 8) / max(len(days), 1)
    bar_w = max(step * 0.7, 1)
    parts = [
        f'<svg class="chart" data-chart="daily" viewBox="0 0 {width} {height + 24}" role="img" '
        f'aria-label="{escape(title)}" preserveAspectRatio="xMidYMid meet">',
        f"<title>{escape(title)}</title>",
        f'<line x1="{left}" y1="{top + plot_h}" x2="{width - 4}" y2="{top + plot_h}" stroke="#888"/>',
        f'<text x="{left - 6}" y="{top + 8}" text-anchor="end" font-size="13">{_fmt(peak)}</text>',
        f'<text x="{left - 6}" y="{top + plot_h}" text-anchor="end" font-size="13">0</text>',
    ]
    for i, day in enumerate(days):
        x = left + i * step + (step - bar_w) / 2
        y = top + plot_h
        for name in series:
            value = Decimal(str(day[name]))
            if value <= 0:
                continue
            h = float(value / peak) * plot_h
            y -= h
            parts.append(
                f'<rect class="bar" data-series="{name}" x="{x:.1f}" y="{y:.1f}" width="{bar_w:.1f}" '
                f'height="{h:.1f}" fill="{COLORS.get(name, BAR)}"><title>{escape(str(day["day"]))} {name}: '
                f"{_fmt(value)} {escape(currency)}</title></rect>"
            )
        if len(days) <= 16 or i % max(len(days) // 8, 1) == 0:
            label = str(day["day"])[5:]
            parts.append(
                f'<text x="{x + bar_w / 2:.1f}" y="{height - 10}" text-anchor="middle" '
                f'font-size="13">{label}</text>'
            )
    for j, name in enumerate(series):
        parts.append(
            f'<rect x="{left + j * 110}" y="{height + 8}" width="12" height="12" '
            f'fill="{COLORS.get(name, BAR)}"/>'
            f'<text x="{left + j * 110 + 16}" y="{height + 18}" font-size="14">{name}</text>'
        )
    parts.append("</svg>")
    return Markup("".join(parts))  # noqa: S704 - every text above is escaped or a number


def bars(items: dict[str, Decimal], currency: str, title: str, name: str) -> Markup:
    """Horizontal bars, largest first (top users, top projects, per product)."""
    rows = list(items.items())[:10]
    width, row_h, label_w = 480, 26, 150
    height = max(len(rows), 1) * row_h + 8
    peak = max((v for _, v in rows), default=Decimal(0)) or Decimal(1)
    parts = [
        f'<svg class="chart" data-chart="{escape(name)}" viewBox="0 0 {width} {height}" role="img" '
        f'aria-label="{escape(title)}" preserveAspectRatio="xMinYMin meet">',
        f"<title>{escape(title)}</title>",
    ]
    if not rows:
        parts.append('<text x="4" y="18" font-size="14">No costs in this period.</text>')
    for i, (key, value) in enumerate(rows):
        y = 4 + i * row_h
        w = float(value / peak) * (width - label_w - 80)
        parts.append(
            f'<text x="{label_w - 6}" y="{y + 16}" text-anchor="end" font-size="14">{escape(key[:22])}</text>'
            f'<rect class="bar" x="{label_w}" y="{y + 3}" width="{max(w, 1):.1f}" '
            f'height="{row_h - 8}" fill="{BAR}">'
            f"<title>{escape(key)}: {_fmt(value)} {escape(currency)}</title></rect>"
            f'<text x="{label_w + max(w, 1) + 4:.1f}" y="{y + 16}" '
            f'font-size="14">{_fmt(value)}</text>'
        )
    parts.append("</svg>")
    return Markup("".join(parts))  # noqa: S704 - every text above is escaped or a number
