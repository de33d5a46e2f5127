"""Test helpers, imported by the test modules (tests/ is on pytest's pythonpath):
common (dtypes, skip marks, tolerances, thread counts), gaussian (the Gaussian kernels' noise in
float64), oracles (independent float64 leave-one-out oracles), stats (statistical tests)."""
