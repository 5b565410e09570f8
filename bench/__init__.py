"""Benchmarks: each prints its figures, a baseline measured in the same run, and the ratio."""
