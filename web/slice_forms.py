"""The period picker of the Periods and Sources pages."""

from __future__ import annotations

import datetime as dt

from django import forms

from aggregation.forms import ReportingZoneForm, datetime_local_input, reporting_zone_name
from aggregation.models import Metric
from aggregation.periods import MAX_RANGE_DAYS, PERIOD_DESCRIPTIONS, GroupBy

CUSTOM = "custom"
PERIOD_CHOICES = [(p.value, text) for p, text in PERIOD_DESCRIPTIONS.items()] + [
    (CUSTOM, "Custom range (choose the days below)")
]
TIME_GROUP_CHOICES = [
    (GroupBy.DAY.value, "Day"),
    (GroupBy.WEEK.value, "Week (Monday to Sunday)"),
    (GroupBy.MONTH.value, "Month"),
    (GroupBy.YEAR.value, "Year"),
]


class PeriodForm(ReportingZoneForm):
    metric = forms.ModelChoiceField(
        queryset=Metric.objects.order_by("name"), to_field_name="name", empty_label=None
    )
    period = forms.ChoiceField(choices=PERIOD_CHOICES, initial="this_month")
    day_from = forms.DateField(
        label="From", required=False, widget=forms.DateInput(attrs={"type": "date"})
    )
    day_to = forms.DateField(
        label="To", required=False, widget=forms.DateInput(attrs={"type": "date"})
    )
    group_by = forms.ChoiceField(label="Group by", choices=TIME_GROUP_CHOICES, initial="day")
    source = forms.CharField(
        required=False, max_length=64, help_text="Only this source's events (leave empty for all)."
    )
    as_of = forms.DateTimeField(
        label="As published at", required=False, widget=datetime_local_input()
    )

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.fields[
            "as_of"
        ].help_text = f"Time in {reporting_zone_name()}. Empty: the figures as they are now."

    def clean(self) -> dict:
        cleaned = super().clean()
        if cleaned.get("period") != CUSTOM:
            return cleaned
        day_from, day_to = cleaned.get("day_from"), cleaned.get("day_to")
        if day_from is None or day_to is None:
            raise forms.ValidationError("A custom range needs both a first and a last day.")
        if day_from > day_to:
            raise forms.ValidationError("The first day is after the last day.")
        if (day_to - day_from) > dt.timedelta(days=MAX_RANGE_DAYS - 1):
            raise forms.ValidationError(f"A range can cover at most {MAX_RANGE_DAYS} days.")
        return cleaned

    def clean_source(self) -> str:
        return self.cleaned_data["source"].replace("\x00", "")
