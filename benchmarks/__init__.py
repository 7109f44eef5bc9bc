"""Side-by-side measurements of what servegen's output costs and gives.

Run ``python -m benchmarks run --help``. Every figure is printed next to a baseline
measured in the same run; see benchmarks/README.md for the method and
docs/benchmarks.md for the latest results.
"""
