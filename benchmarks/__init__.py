"""Benchmarks: `python -m benchmarks.NAME`. Each prints a table and ends with one JSON line."""
