# Task runner. `make bench` and `make test` each do the whole set-up first (scripts/setup.sh).
PYTHON ?= python3
export PYTHON

.PHONY: setup bench test test-python test-cpp gpu-check

setup:
	bash scripts/setup.sh

# The main job: the benchmark tables (CPU, and CUDA when a GPU is present).
bench: setup
	$(PYTHON) benchmarks/bench_gaussian.py
	$(PYTHON) benchmarks/bench_gumbel.py
	$(PYTHON) benchmarks/bench_score_function.py

# The whole test suite: C++ tests (CTest) and the Python tests (pytest).
test: setup test-cpp test-python

test-cpp:
	bash scripts/cmake_test.sh

test-python:
	$(PYTHON) -m pytest -q -rs tests

# On a machine with a GPU: build, CUDA tests, compute-sanitizer, benchmarks; logs to $$OUT.
gpu-check:
	bash benchmarks/gpu_check.sh
