"""Reads of the snapshots layer: a day's history, as-of and the job log (history.py), and
the explanation of each snapshot's change by the exact events behind it (explanations.py)."""
