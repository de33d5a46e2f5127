"""Benchmarks of gradext's ops against eager PyTorch and torch.compile, part of the installed
package: ``python -m gradext bench`` runs every family's (suite.py), ``python -m
gradext.bench.<family>`` one. harness.py times and writes the tables (benchmarks/results/ under
the current directory by default); cuda_smoke.py is the compute-sanitizer run."""
