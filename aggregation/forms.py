"""The dashboard's filter: which metric, which days."""

from __future__ import annotations

import datetime as dt

from django import forms
from django.utils import timezone

from aggregation.models import Metric
from aggregation.selectors import reporting_timezone


class ReportingZoneForm(forms.Form):
    """A form whose date-times without an offset are read in the reporting time zone (the
    zone the pages show times in), and whose date-time inputs are datetime-local pickers."""

    def full_clean(self) -> None:
        with timezone.override(reporting_timezone()):
            super().full_clean()


def datetime_local_input() -> forms.DateTimeInput:
    return forms.DateTimeInput(
        attrs={"type": "datetime-local", "step": 1}, format="%Y-%m-%dT%H:%M:%S"
    )


def reporting_zone_name() -> str:
    return str(reporting_timezone())


class DayFilterForm(forms.Form):
    metric = forms.ModelChoiceField(
        queryset=Metric.objects.order_by("name"),
        to_field_name="name",
        empty_label=None,
        required=False,
        label="Metric",
    )
    day_from = forms.DateField(
        required=False, label="From", widget=forms.DateInput(attrs={"type": "date"})
    )
    day_to = forms.DateField(
        required=False, label="To", widget=forms.DateInput(attrs={"type": "date"})
    )

    def clean(self) -> dict:
        cleaned = super().clean()
        day_from: dt.date | None = cleaned.get("day_from")
        day_to: dt.date | None = cleaned.get("day_to")
        if day_from and day_to and day_from > day_to:
            self.add_error("day_to", "“To” must be on or after “From”.")
        return cleaned
