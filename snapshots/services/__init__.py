"""Writes of the snapshots layer: the snapshot job (run.py) and the reconcile, which checks
the totals against the events and the snapshots (reconcile.py)."""
