"""Benchmarks of chatflow against a hand-written minimal Temporal baseline, on one machine, in one command.

    python -m bench            # full run (the better part of an hour)
    python -m bench --quick    # smoke run (a few minutes)

Results go to bench/results/latest.json, latest.md and the PNG plots beside them.
"""
