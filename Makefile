# Two commands on a fresh machine: `make run` and `make test`.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
SCENARIO ?= scenarios/baseline.yaml

.PHONY: run test setup bench clean help

help:
	@echo "make run    - set up .venv and run $(SCENARIO)"
	@echo "make test   - set up .venv and run the test suite"
	@echo "make clean  - remove .venv and caches (runs/ is kept)"

$(BIN)/recsim: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	@touch $@

setup: $(BIN)/recsim

run: setup
	$(BIN)/recsim run $(SCENARIO)

test: setup
	$(BIN)/python -m pytest -q -n auto --dist loadfile

clean:
	rm -rf $(VENV) .pytest_cache build *.egg-info

bench: setup
	$(BIN)/python -m pip install --quiet -e ".[bench]"
	$(BIN)/python benchmarks/run.py $(BENCH_ARGS) --out benchmarks/last-result.json
