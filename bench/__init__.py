"""Benchmarks of Mailroom against the baselines that bound it, measured in the same run.

`python -m bench` runs every benchmark the landed features allow, prints one table (medians of
at least three runs, min and max, ratios to the baseline of the same run) and writes JSON
results to `bench/results/latest.json`. See the README's "Performance" section.
"""
