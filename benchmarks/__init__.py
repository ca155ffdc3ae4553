"""Benchmarks of wink_middleware: ``python -m benchmarks`` prints the table (``--quick`` for a short run).

Every comparison is measured side by side in one run, in alternating rounds, and reported as medians
and ratios: the figures are meant for a shared, noisy machine.
"""
