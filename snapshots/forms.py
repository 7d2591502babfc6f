"""The day page's "as of" picker."""

from __future__ import annotations

from django import forms

from aggregation.forms import ReportingZoneForm, datetime_local_input, reporting_zone_name


class AsOfForm(ReportingZoneForm):
    as_of = forms.DateTimeField(label="Show this day as it was at", widget=datetime_local_input())

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.fields["as_of"].help_text = f"Time in {reporting_zone_name()}."
