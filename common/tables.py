"""What every table on the pages shares: the template, header scopes, and a label on each
cell so that on a phone the rows stack into labelled cards instead of scrolling sideways."""

from __future__ import annotations

import django_tables2 as tables


def _label(bound_column) -> str:
    return str(bound_column.header)


def cell_attrs(*, numeric: bool = False) -> dict:
    """Column attrs (a column's own `td` replaces the table's, so the label is repeated)."""
    css = {"class": "num"} if numeric else {}
    return {"th": {"scope": "col", **css}, "td": {"data-label": _label, **css}, "tf": css}


NUMBER = cell_attrs(numeric=True)
TEXT = cell_attrs()


class PageTable(tables.Table):
    class Meta:
        template_name = "django_tables2/snapagg.html"
        attrs = {"class": "data stack", "th": {"scope": "col"}, "td": {"data-label": _label}}
