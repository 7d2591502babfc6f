"""Helpers that know no app: numbers, formatting, charts, tables, access rules, API
plumbing and database helpers. Nothing here imports an app (lint-imports checks it)."""
