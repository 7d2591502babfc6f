"""Reads of the events layer: events and batches (events.py), and when events arrive:
lateness, its histogram and each open day's completeness (lateness.py)."""
