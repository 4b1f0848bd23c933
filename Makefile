# The two set-up commands of the README: `make run` and `make test`.
# Both create .venv in the repository root on first use and reinstall only
# when pyproject.toml changes.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
TORCH := torch==2.14.1 torchvision==0.29.1

.PHONY: run test gpu-suite clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet $(TORCH)
	$(BIN)/pip install --quiet -e .
	touch $@

$(VENV)/.installed-dev: pyproject.toml $(VENV)/.installed
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $@

run: $(VENV)/.installed
	$(BIN)/hwnas search

test: $(VENV)/.installed-dev
	$(BIN)/python -m pytest

gpu-suite: $(VENV)/.installed-dev
	$(BIN)/python benchmarks/gpu_suite.py

clean:
	rm -rf $(VENV) build *.egg-info
