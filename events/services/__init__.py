"""Writes of the events layer, one module a topic: ingest (store a batch durably), enqueue
(publish its apply), apply (add it to the day totals exactly once), sweep (re-enqueue what
was left behind) and quarantine (decide on held too-late events)."""
