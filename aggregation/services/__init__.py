"""Writes of the aggregation layer: the day totals and their ledger of contributions
(ledger.py, the only writer of both tables) and the reconcile record (reconcile.py)."""
