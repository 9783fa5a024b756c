"""Benchmarks that print figures measured side by side in one run (ours, raw limit, common)."""
