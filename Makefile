# The set-up commands of the README: `make run`, `make test` and `make gpu-suite`.
# `run` and `test` create .venv in the repository root on first use and reinstall
# only when pyproject.toml changes.
#
# TORCH_INDEX chooses the CUDA build of torch: the default index's torch 2.14.1 is
# the CUDA 13.0 build, which needs an NVIDIA driver >= 580. On an older driver
# (`hwnas doctor` shows the driver's newest CUDA) pick a matching build, e.g.
#   make test TORCH_INDEX=https://download.pytorch.org/whl/cu126
# or the CPU-only build with .../whl/cpu. Empty = the default index.
#
# `make gpu-suite` does not create a virtual environment: it installs hwnas into
# the Python named by PY without touching its dependencies (a GPU machine brings
# its own torch, CUDA and onnxruntime; nothing is downloaded), installs any wheels
# carried in WHEELS (mlxtend, say) the same way, and runs benchmarks/gpu_suite.py:
#   make gpu-suite PY=python3
PYTHON ?= python3
PY ?= $(PYTHON)
VENV := .venv
BIN := $(VENV)/bin
TORCH := torch==2.14.1 torchvision==0.29.1
TORCH_INDEX ?=
WHEELS ?= .whl
SUITE_ARGS ?=

.PHONY: run test mutation gpu-suite gpu-suite-dry-run clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet $(if $(TORCH_INDEX),--index-url $(TORCH_INDEX)) $(TORCH)
	$(BIN)/pip install --quiet -e .
	touch $@

# The TensorRT API-surface test reads two wheels as zip files (tests/tensorrt_api.txt says why they are
# downloaded, not installed); without them it skips and says how to fetch them.
TRT_API := $(VENV)/tensorrt-api

$(VENV)/.installed-dev: pyproject.toml tests/tensorrt_api.txt $(VENV)/.installed
	$(BIN)/pip install --quiet -e '.[dev]'
	$(BIN)/pip download --quiet --no-deps --only-binary=:all: --python-version 3.11 --platform manylinux_2_28_x86_64 \
		-d $(TRT_API) -r tests/tensorrt_api.txt \
		|| echo "make test: could not download the TensorRT API wheels; tests/test_tensorrt_api.py will skip"
	touch $@

run: $(VENV)/.installed
	$(BIN)/hwnas search

test: $(VENV)/.installed-dev
	$(BIN)/python -m pytest

# Mutation testing of the numeric core (issue #31; docs/contributing.md): every target of
# [tool.hwnas.mutation] in pyproject.toml against its own tests, about an hour on 2 cores; not run by CI.
#   make mutation MUTATION_ARGS="--target profiler-stats"     (one target, minutes)
MUTATION_ARGS ?=
MUTATION_OUT ?= benchmarks/results/mutation/$(shell date -u +%Y-%m-%d).json
mutation: $(VENV)/.installed-dev
	MPLBACKEND=Agg OMP_NUM_THREADS=1 nice -n 15 $(BIN)/python -m tools.mutation --out $(MUTATION_OUT) $(MUTATION_ARGS)

gpu-suite:
	$(PY) -m pip install --quiet --no-deps --no-build-isolation --no-index -e . \
		|| echo "gpu-suite: could not install hwnas into $(PY); running it from the source tree"
	if ls $(WHEELS)/*.whl >/dev/null 2>&1; then $(PY) -m pip install --quiet --no-deps --no-index $(WHEELS)/*.whl; fi
	PYTHONUNBUFFERED=1 $(PY) benchmarks/gpu_suite.py $(SUITE_ARGS)

# A missing ONNX Runtime CUDA provider or TensorRT fails the suite (exit 1), a dry run included;
# SUITE_ARGS=--allow-missing makes it a skip.
gpu-suite-dry-run:
	$(PY) benchmarks/gpu_suite.py --dry-run $(SUITE_ARGS)

clean:
	rm -rf $(VENV) build *.egg-info
