"""Performance benchmarks: each module prints a table of side-by-side ratios.

Run one with ``python -m tabscope.bench.perf.<name>``.
"""
