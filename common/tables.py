"""What every table on the pages shares: the template, header scopes, and a label on each
cell so that on a phone the rows stack into labelled cards instead of scrolling sideways."""

from __future__ import annotations

import html
import re

import django_tables2 as tables
import tablib
from django.http import HttpResponse
from django.utils.html import strip_tags


def _label(bound_column) -> str:
    return str(bound_column.header)


def cell_attrs(*, numeric: bool = False, wrap_header: bool = False) -> dict:
    """Column attrs (a column's own `td` replaces the table's, so the label is repeated).
    `wrap_header`: a long header may take two lines, so a wide table fits the page."""
    css = {"class": "num"} if numeric else {}
    header = {"class": " ".join(filter(None, [css.get("class"), "wrap"]))} if wrap_header else css
    return {"th": {"scope": "col", **header}, "td": {"data-label": _label, **css}, "tf": css}


NUMBER = cell_attrs(numeric=True)
TEXT = cell_attrs()
NUMBER_LONG_HEADER = cell_attrs(numeric=True, wrap_header=True)


class PageTable(tables.Table):
    class Meta:
        template_name = "django_tables2/snapagg.html"
        attrs = {"class": "data stack", "th": {"scope": "col"}, "td": {"data-label": _label}}


EXPORT_PARAMETER = "export"


def export_requested(request) -> bool:
    return request.GET.get(EXPORT_PARAMETER) == "csv"


_HIDDEN = re.compile(r'<span[^>]*(?:aria-hidden="true"|class="visually-hidden")[^>]*>[^<]*</span>')


def cell_text(value: object) -> str:
    """A cell as plain text: what a reader sees, without the page's markup, the glyphs
    hidden from screen readers, or the words shown only to them."""
    text = _HIDDEN.sub("", str(value))
    text = strip_tags(re.sub(r"<br\s*/?>", " · ", text))
    return re.sub(r"\s+", " ", html.unescape(text)).strip()


def _rows(table: tables.Table) -> tuple[list[str], list[list[str]]]:
    # django-tables2's export rows (every row, not only the page shown).
    header, *rows = list(table.as_values())
    return [cell_text(name) for name in header], [[cell_text(c) for c in row] for row in rows]


def _csv_response(dataset: tablib.Dataset, filename: str) -> HttpResponse:
    response = HttpResponse(dataset.export("csv"), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


def table_csv_response(table: tables.Table, *, filename: str) -> HttpResponse:
    """The whole table as CSV (tablib), cells as the text the page shows."""
    header, rows = _rows(table)
    return _csv_response(tablib.Dataset(*rows, headers=header), filename)


def tables_csv_response(
    parts: list[tuple[str, tables.Table]], *, first_header: str, filename: str
) -> HttpResponse:
    """Several tables with the same columns as one CSV, a first column naming each part."""
    dataset = tablib.Dataset()
    for label, table in parts:
        header, rows = _rows(table)
        if not dataset.headers:
            dataset.headers = [first_header, *header]
        for row in rows:
            dataset.append([label, *row])
    return _csv_response(dataset, filename)
