"""The operations page's plain setting: how often the scheduled snapshot runs."""

from __future__ import annotations

from django import forms

MAX_MINUTES = 24 * 60


class SnapshotIntervalForm(forms.Form):
    minutes = forms.IntegerField(
        label="Take a snapshot every",
        min_value=1,
        max_value=MAX_MINUTES,
        help_text="minutes: how often readers see new numbers.",
        widget=forms.NumberInput(attrs={"class": "short"}),
    )
