"""Benchmarks: scripts that print figures against the targets of issue 6 and record them in
docs/benchmarks.md. They are not tests: nothing here asserts on wall-clock time."""
