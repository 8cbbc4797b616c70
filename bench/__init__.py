"""Benchmarks of the gateway (see BENCHMARKS.md); run the scripts, not this package."""
