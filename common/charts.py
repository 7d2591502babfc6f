"""Geometry for the server-rendered SVG charts (no JavaScript).

The SVGs hold shapes and `<title>` tooltips only; their axis labels and legends are HTML
beside them, so text stays readable when the chart shrinks to a phone's width. The plot
stretches to its box (preserveAspectRatio="none", non-scaling strokes); a step chart's
markers are small SVGs of their own placed in percent over it, so they keep their shape at
any width. Positions are floats (they are drawing, not values); every number a reader sees
is formatted from the exact Decimal.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from decimal import Decimal

WIDTH = 600
HEIGHT = 200
PAD = 10  # room for markers at the edges


@dataclass(frozen=True)
class ValueScale:
    low: Decimal
    high: Decimal

    @classmethod
    def spanning(cls, values: list[Decimal]) -> ValueScale:
        low = min([Decimal(0), *values])
        high = max([Decimal(0), *values])
        if high == low:
            high = low + 1
        return cls(low=low, high=high)

    @classmethod
    def fitting(cls, values: list[Decimal]) -> ValueScale:
        """For a line: start at 0 unless the values sit far above it, so that a small
        restatement of a large value stays visible (the axis labels say where it starts)."""
        low, high = min(values), max(values)
        spread = high - low
        if low <= 0 or not spread or spread * 3 >= high:
            return cls.spanning(values)
        return cls(low=max(low - spread / 4, Decimal(0)), high=high + spread / 4)

    @property
    def ticks(self) -> list[Decimal]:
        """Three labelled values, top to bottom: high, middle, low."""
        return [self.high, (self.high + self.low) / 2, self.low]

    @property
    def starts_at_zero(self) -> bool:
        return self.low == 0

    def y(self, value: Decimal) -> float:
        share = float((value - self.low) / (self.high - self.low))
        return round(HEIGHT - PAD - share * (HEIGHT - 2 * PAD), 2)


@dataclass(frozen=True)
class TimeScale:
    start: dt.datetime
    end: dt.datetime

    def x(self, instant: dt.datetime) -> float:
        share = (instant - self.start) / (self.end - self.start)
        return round(PAD + share * (WIDTH - 2 * PAD), 2)


# --- Trend: one bar per day ------------------------------------------------------------


@dataclass(frozen=True)
class Bar:
    x: float
    y: float
    width: float
    height: float
    status: str
    title: str
    href: str | None


@dataclass(frozen=True)
class BarChart:
    bars: list[Bar]
    zero_y: float
    scale: ValueScale
    width: int = WIDTH
    height: int = HEIGHT


@dataclass(frozen=True)
class BarInput:
    value: Decimal
    status: str
    title: str
    href: str | None = None


def bar_chart(items: list[BarInput]) -> BarChart:
    scale = ValueScale.spanning([item.value for item in items])
    zero_y = scale.y(Decimal(0))
    slot = (WIDTH - 2 * PAD) / max(len(items), 1)
    bars = []
    for index, item in enumerate(items):
        top = scale.y(item.value)
        bars.append(
            Bar(
                x=round(PAD + index * slot + slot * 0.1, 2),
                y=min(top, zero_y),
                width=round(slot * 0.8, 2),
                # A zero still shows as a hairline, so "no events" is visible as such.
                height=max(abs(zero_y - top), 1.0),
                status=item.status,
                title=item.title,
                href=item.href,
            )
        )
    return BarChart(bars=bars, zero_y=zero_y, scale=scale)


# --- Step chart: a day's value across its snapshots -------------------------------------


@dataclass(frozen=True)
class StepInput:
    taken_at: dt.datetime
    value: Decimal
    marker: str
    title: str
    href: str | None = None


@dataclass(frozen=True)
class Marker:
    x: float
    y: float
    shape: str
    points: str
    title: str
    href: str | None

    @property
    def left_percent(self) -> float:
        return round(self.x / WIDTH * 100, 3)

    @property
    def top_percent(self) -> float:
        return round(self.y / HEIGHT * 100, 3)


@dataclass(frozen=True)
class VerticalLine:
    x: float
    kind: str
    title: str


@dataclass(frozen=True)
class StepChart:
    path: str
    markers: list[Marker]
    lines: list[VerticalLine] = field(default_factory=list)
    scale: ValueScale | None = None
    times: TimeScale | None = None
    zero_y: float = HEIGHT - PAD
    width: int = WIDTH
    height: int = HEIGHT


def _shape_points(shape: str, x: float = 0.0, y: float = 0.0, r: float = 6.0) -> str:
    """Polygon points, around (x, y), of the marker shapes drawn as polygons (circles are
    circles)."""
    corners = {
        "triangle": [(x, y - r), (x + r, y + r * 0.8), (x - r, y + r * 0.8)],
        "square": [(x - r * 0.8, y - r * 0.8), (x + r * 0.8, y - r * 0.8),
                   (x + r * 0.8, y + r * 0.8), (x - r * 0.8, y + r * 0.8)],
        "diamond": [(x, y - r), (x + r, y), (x, y + r), (x - r, y)],
    }.get(shape, [])  # fmt: skip
    return " ".join(f"{px:.2f},{py:.2f}" for px, py in corners)


def _time_scale(steps: list[StepInput], extra: list[dt.datetime]) -> TimeScale:
    instants = [step.taken_at for step in steps] + extra
    start, end = min(instants), max(instants)
    span = max(end - start, dt.timedelta(hours=1))
    return TimeScale(start=start - span * 0.02, end=start + span * 1.06)


def step_chart(
    steps: list[StepInput], *, lines: list[tuple[dt.datetime, str, str]] = ()
) -> StepChart:
    """A step-after line through the snapshot values, one marker per snapshot, and
    vertical reference lines (kind, title) that fall inside the time range."""
    if not steps:
        return StepChart(path="", markers=[])
    times = _time_scale(
        steps, [instant for instant, _, _ in lines if instant <= steps[-1].taken_at]
    )
    scale = ValueScale.fitting([step.value for step in steps])
    commands = [f"M {times.x(steps[0].taken_at)} {scale.y(steps[0].value)}"]
    for step in steps[1:]:
        commands.append(f"H {times.x(step.taken_at)} V {scale.y(step.value)}")
    commands.append(f"H {WIDTH - PAD}")
    markers = [
        Marker(
            x=times.x(step.taken_at),
            y=scale.y(step.value),
            shape=step.marker,
            points=_shape_points(step.marker),
            title=step.title,
            href=step.href,
        )
        for step in steps
    ]
    verticals = [
        VerticalLine(x=times.x(instant), kind=kind, title=title)
        for instant, kind, title in lines
        if times.start <= instant <= times.end
    ]
    return StepChart(
        path=" ".join(commands),
        markers=markers,
        lines=verticals,
        scale=scale,
        times=times,
        zero_y=scale.y(max(Decimal(0), scale.low)),
    )
