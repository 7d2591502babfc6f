"""Template filters and tags for the pages: exact figures, changes with an arrow, times in
the reporting zone (exact ISO time in a tooltip) and status badges (text and shape)."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from django import template
from django.utils import timezone
from django.utils.html import format_html
from django.utils.safestring import SafeString

from aggregation.descriptions import StatusBadge, local_time
from common import formatting

register = template.Library()


@register.filter
def figure(value: Decimal | None, unit: str = "") -> str:
    """{{ value|figure }} or, with the metric's unit, {{ value|figure:metric.unit }}."""
    return "—" if value is None else formatting.figure(value, unit)


@register.filter
def signed_figure(value: Decimal | None, unit: str = "") -> str:
    return "—" if value is None else formatting.signed_figure(value, unit)


@register.filter
def day_text(day: dt.date) -> str:
    return formatting.day_text(day)


@register.filter
def duration_text(duration: dt.timedelta | None) -> str:
    return "—" if duration is None else formatting.duration_text(duration)


@register.filter
def plural(count: int, words: str) -> str:
    """{{ n|plural:"event" }} or {{ n|plural:"day,days" }}."""
    singular, _, plural_form = words.partition(",")
    return formatting.plural(count, singular, plural_form or None)


def time_html(instant: dt.datetime | None) -> SafeString:
    if instant is None:
        return format_html("{}", "—")
    iso = instant.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")
    text = local_time(instant, year=timezone.now().year)
    return format_html('<time datetime="{}" title="{}">{}</time>', iso, iso, text)


def badge_html(badge: StatusBadge) -> SafeString:
    return format_html(
        '<span class="badge badge-{}" title="{}"><span aria-hidden="true">{}</span> {}</span>',
        badge.key,
        badge.hint,
        badge.icon,
        badge.label,
    )


CHANGE_CLASSES = {1: ("up", "▲", "up"), -1: ("down", "▼", "down"), 0: ("flat", "=", "no change")}


def change_html(value: Decimal | None, unit: str = "") -> SafeString:
    """+120.00 with an arrow (▲ up, ▼ down, = none): the direction is in the text as well as
    the colour; screen readers hear "up"/"down". {{ value|change:metric.unit }} adds the unit."""
    if value is None:
        return format_html('<span class="change none">{}</span>', "—")
    css, arrow, words = CHANGE_CLASSES[(value > 0) - (value < 0)]
    return format_html(
        '<span class="change {}"><span aria-hidden="true">{}</span>'
        '<span class="visually-hidden">{}</span> {}</span>',
        css,
        arrow,
        words,
        formatting.signed_figure(value, unit),
    )


register.filter("local_time", time_html)
register.filter("badge", badge_html)
register.filter("change", change_html)


@register.simple_tag
def reporting_zone() -> str:
    from aggregation.selectors import reporting_timezone

    return str(reporting_timezone())


@register.filter
def percent(share: float | None) -> str:
    """0.9731 -> "97.3%", None -> "—"."""
    return "—" if share is None else f"{share:.1%}"


@register.filter
def percent_width(share: float) -> str:
    """A CSS width for a bar drawn to scale (0.5 -> "50.00%")."""
    return f"{max(0.0, min(share, 1.0)) * 100:.2f}%"


@register.filter
def intcomma_plain(count: int) -> str:
    return f"{count:,}"
