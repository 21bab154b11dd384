"""Server-drawn SVG charts (no script needed): bar heights and polyline points from a series, in viewBox units."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

WIDTH = 600
HEIGHT = 160
PAD = 4


@dataclass(frozen=True)
class Bar:
    x: float
    y: float
    width: float
    height: float
    value: int
    label: str
    positive: bool


def zero_y(series: list[tuple[dt.date, int]]) -> float:
    """Where the zero line of ``bars`` is (viewBox units from the top)."""
    top = max((0, *(v for _, v in series)))
    bottom = min((0, *(v for _, v in series)))
    span = (top - bottom) or 1
    return round(PAD + (HEIGHT - 2 * PAD) * top / span, 2)


def bars(series: list[tuple[dt.date, int]]) -> list[Bar]:
    """One bar per day around the zero line (profit up, loss down)."""
    if not series:
        return []
    top = max(0, *(v for _, v in series))
    bottom = min(0, *(v for _, v in series))
    span = (top - bottom) or 1
    inner = HEIGHT - 2 * PAD
    zero = zero_y(series)
    step = WIDTH / len(series)
    out = []
    for index, (day, value) in enumerate(series):
        size = inner * abs(value) / span
        y = zero - size if value >= 0 else zero
        out.append(
            Bar(
                x=round(index * step + step * 0.1, 2),
                y=round(y, 2),
                width=round(step * 0.8, 2),
                height=round(max(size, 0.5 if value else 0), 2),
                value=value,
                label=day.isoformat(),
                positive=value >= 0,
            )
        )
    return out


def polyline(series: list[tuple[dt.datetime, int]]) -> str:
    """The ``points`` attribute of a line through the series, time on x, value on y."""
    if not series:
        return ""
    start, end = series[0][0].timestamp(), series[-1][0].timestamp()
    low = min(v for _, v in series)
    high = max(v for _, v in series)
    width_s = (end - start) or 1
    span = (high - low) or 1
    inner = HEIGHT - 2 * PAD
    points = []
    for moment, value in series:
        x = (moment.timestamp() - start) / width_s * WIDTH if end > start else WIDTH / 2
        y = PAD + inner * (high - value) / span if high > low else HEIGHT / 2
        points.append(f"{x:.1f},{y:.1f}")
    if len(points) == 1:  # one reading: a flat line across
        level = points[0].split(",")[1]
        points = [f"0,{level}", f"{WIDTH},{level}"]
    return " ".join(points)
