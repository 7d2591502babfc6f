"""The anomaly rule for late corrections (docs/operations.md, "Anomaly flags").

A late correction is a snapshot whose change comes from late or too-late events. Its size is
measured relative to the day: ratio = |change| / |value before the change|. It is compared
with the largest late correction each recent day got (the metric's last
ANOMALY_HISTORY_SIZE days with late corrections), not with every past correction: a metric
whose partner sends each day as one file the next morning gets one large correction a day
among many small ones (stragglers, one per snapshot), and measured against those small
ones every morning's file would look unusual. "Unusual" means larger than a day's largest
correction usually is, measured robustly:

    score = (ratio - median) / scale,  scale = max(1.4826 * MAD, 0.25 * median)

over those days' largest ratios (median and MAD, the median absolute deviation: one huge
past correction moves neither, unlike a mean and standard deviation). 1.4826 * MAD
estimates a standard deviation for normal data, so the score reads as a robust z-score and
the default threshold 3.5 is Iglewicz and Hoaglin's usual cut-off. The floor on the scale
stops a perfectly regular history (MAD 0) from flagging a correction only slightly above
the usual. No flag before ANOMALY_MIN_HISTORY past days with late corrections.
"""

from __future__ import annotations

import statistics
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal

from django.conf import settings

from common.numbers import decimal_str

MAD_TO_SIGMA = Decimal("1.4826")
MEDIAN_FLOOR = Decimal("0.25")
SCORE_PLACES = Decimal("0.01")
RATIO_PLACES = Decimal("0.000001")


@dataclass(frozen=True)
class AnomalyRule:
    threshold: Decimal
    min_history: int

    @classmethod
    def from_settings(cls) -> AnomalyRule:
        return cls(
            threshold=Decimal(settings.ANOMALY_THRESHOLD),
            min_history=settings.ANOMALY_MIN_HISTORY,
        )


def correction_ratio(*, change: Decimal, value: Decimal) -> Decimal | None:
    """|change| relative to the day's value before it; None when that value was 0 (a day
    that had nothing yet has no size to compare the change with)."""
    before = value - change
    if before == 0:
        return None
    return abs(change) / abs(before)


def history_ratios(corrections: Iterable[tuple[Decimal, Decimal]]) -> list[Decimal]:
    """Ratios of past corrections given as (change, value) pairs (each day's largest, as
    late_corrections_recent reads them); unmeasurable ones skipped."""
    ratios = (correction_ratio(change=change, value=value) for change, value in corrections)
    return [ratio for ratio in ratios if ratio is not None]


def anomaly_score(
    *, change: Decimal, value: Decimal, history: list[Decimal], rule: AnomalyRule
) -> dict[str, str] | None:
    """{"score", "threshold", "detail"} when this correction is unusually large, else None."""
    ratio = correction_ratio(change=change, value=value)
    if ratio is None or len(history) < rule.min_history:
        return None
    median = statistics.median(history)
    mad = statistics.median(abs(past - median) for past in history)
    scale = max(MAD_TO_SIGMA * mad, MEDIAN_FLOOR * median)
    if scale == 0:  # every past correction was 0: any change is unusual, but unscorable
        return None
    score = ((ratio - median) / scale).quantize(SCORE_PLACES)
    if score <= rule.threshold:
        return None
    return {
        "score": decimal_str(score),
        "threshold": decimal_str(rule.threshold),
        "detail": (
            f"A late correction of {_percent(ratio)} of the day's value, where a day's largest "
            f"late correction is usually {_percent(median)} (median over the last "
            f"{len(history)} days with late corrections of this metric, spread "
            f"{_percent(scale)}): {decimal_str(score)} spreads above the usual, more than the "
            f"threshold {decimal_str(rule.threshold)}."
        ),
    }


def _percent(ratio: Decimal) -> str:
    return f"{decimal_str((ratio * 100).quantize(Decimal('0.01')))}%"
