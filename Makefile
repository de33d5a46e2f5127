# Task runner. `make demo`, `make bench` and `make test` each do the whole set-up first
# (scripts/setup.sh).
PYTHON ?= python3
export PYTHON

.PHONY: setup demo bench noise-floor lint test test-python test-cpp test-oldest-torch gpu-check

setup:
	bash scripts/setup.sh

# The main job: VAE training on real data with every estimator, beside plain PyTorch.
demo: setup
	$(PYTHON) -m gradext demo

# Every op's benchmark: one table, CSV and chart (CPU, and CUDA when a GPU is present).
bench: setup
	$(PYTHON) -m gradext bench

# The CPU kernels' arithmetic floor per piece (Philox, Box-Muller, exp, log): docs/performance.md.
noise-floor:
	bash scripts/noise_floor.sh

# The whole test suite: lint, C++ tests (CTest) and the Python tests (pytest).
test: setup lint test-cpp test-python

# ruff's lint rules and formatting (pyproject.toml, [tool.ruff]).
lint:
	$(PYTHON) -m ruff check .
	$(PYTHON) -m ruff format --check .

test-cpp:
	bash scripts/cmake_test.sh

test-python:
	$(PYTHON) -m pytest -q -rs tests

# The build and Python tests against the oldest supported torch (2.11, the GPU machine's).
test-oldest-torch: setup
	bash scripts/check_oldest_torch.sh

# On a machine with a GPU: build (or the prebuilt extension), CUDA tests, compute-sanitizer,
# benchmarks; logs in build/gpu_check, packed into $$OUT when set.
# scripts/prebuild_gpu_extension.sh builds the GPU machine's extension here beforehand.
gpu-check:
	bash benchmarks/gpu_check.sh
