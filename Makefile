# make run   : create .venv (Python 3.10, pinned deps), fetch MovieLens-100k, run the whole DAG locally
# make test  : same bootstrap, then the test suite
# Offline: make run MOVIELENS_MIRROR=../shared/data/ml-100k.zip

SHELL := /bin/bash
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
PIP_VERSION := 24.2
export TF_USE_LEGACY_KERAS := 1
export MOVIELENS_MIRROR

# Python 3.10: `python3.10` on PATH if it runs, else pyenv's 3.10 install (pyenv root), else fail.
PYTHON310 ?= $(shell for c in python3.10 $$(pyenv root 2>/dev/null)/versions/3.10*/bin/python3.10; do \
	"$$c" -c 'import sys; assert sys.version_info[:2] == (3, 10)' >/dev/null 2>&1 && { echo "$$c"; break; }; done)

RUN_ARGS ?=
PYTEST_ARGS ?=

.PHONY: venv run test test-fast lint fmt clean print-python flink-job-server test-deps

venv: $(STAMP)

$(STAMP): setup.py constraints.txt
	@test -n "$(PYTHON310)" || { echo "Python 3.10 not found: install it (e.g. pyenv install 3.10) or pass PYTHON310=/path/to/python3.10"; exit 1; }
	@echo "Creating $(VENV) with $(PYTHON310)"
	rm -rf $(VENV)
	$(PYTHON310) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade "pip==$(PIP_VERSION)"
	$(BIN)/pip install --quiet --constraint constraints.txt --editable ".[dev]"
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/recommender run $(RUN_ARGS)

# Whole test files spread over 2 processes (pytest-xdist): the DAG runs are mostly one Python thread each.
PYTEST_WORKERS ?= 2

test: $(STAMP)
	$(BIN)/pytest -n $(PYTEST_WORKERS) --dist loadfile $(PYTEST_ARGS)

test-fast: $(STAMP)
	$(BIN)/pytest -m "not slow and not e2e" $(PYTEST_ARGS)

# Beam's Flink job server for `recommender run --beam-runner flink`, fetched with Maven and verified (a run
# fetches it too when missing); kept in ~/.cache/recommender (RECOMMENDER_CACHE), never in the repository.
flink-job-server: $(STAMP)
	$(BIN)/python -m pipeline.flink.artifacts

# What the tests fetch with Maven on a clean machine: the job server, and the Flink operator's CRD that
# tests/manifests_test.py checks kubeflow/manifests/flink/ against.
test-deps: flink-job-server
	$(BIN)/python tests/flink_operator_crd.py

lint: $(STAMP)
	$(BIN)/ruff check . && $(BIN)/ruff format --check .

fmt: $(STAMP)
	$(BIN)/ruff check --fix . && $(BIN)/ruff format .

clean:
	rm -rf $(VENV) artifacts .pytest_cache .ruff_cache *.egg-info

print-python:
	@echo $(PYTHON310)
