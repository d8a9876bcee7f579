"""Benchmarks of chatflow against the raw Temporal client, on one machine, in one command.

    python -m bench            # full run (several minutes)
    python -m bench --quick    # smoke run (under two minutes)

Results go to bench/results/latest.json and latest.md.
"""
