# The two README commands: `make run` and `make test`. Both install first (a no-op while up to date).
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
PYTEST_ARGS ?=

.PHONY: install test run bench clean

install: $(STAMP)

$(STAMP): pyproject.toml
	-scripts/install_fashion_mnist
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[dev]"
	touch $(STAMP)

# Tests run in a loopback-only network namespace when possible (scripts/offline), so none can reach out.
test: install
	PYTHON=$(PY) scripts/offline $(PY) -m pytest $(PYTEST_ARGS)

# The embedded default study (Ray Tune + MLflow on CPU, loopback only); `python -m study.run --help` for more.
run: install
	PYTHON=$(PY) scripts/offline $(PY) -m study.run

bench: install
	$(PY) benchmarks/step_overhead.py

clean:
	rm -rf $(VENV) .pytest_cache
