# Every target creates the virtual environment it needs; `make test` is what CI runs.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: demo test chaos lint format clean bench bench-quick bench-venvs

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $@

demo: $(VENV)/.installed
	$(BIN)/python examples/quickstart.py

# Tests run in TEST_WORKERS processes (pytest-xdist): most of a test's time is spent waiting on
# a server or on processes of its own, so more workers than cores still pay. The slowest tests
# are listed at the end: they set how long the run's tail is.
TEST_WORKERS ?= 4

test: $(VENV)/.installed
	$(BIN)/pytest -n $(TEST_WORKERS) --dist worksteal --durations=15

# The long chaos run (20,000 jobs per durable backend, kills and server restarts) and the
# 100,000-job load run; the servers are private, started by the run. A short form is in `make test`.
chaos: $(VENV)/.installed
	$(BIN)/python -m tests.chaos.run

# Each library under benchmark has a venv of its own (their pinned redis clients conflict).
BENCH_VENVS := $(patsubst benchmarks/requirements/%.txt,.bench/%/.installed,$(wildcard benchmarks/requirements/*.txt))

# The interpreter of a venv is BENCH_PYTHON_<name> when set, else $(PYTHON): oban needs 3.12.
BENCH_PYTHON_oban ?= /root/.pyenv/versions/3.12.1/bin/python

.bench/%/.installed: benchmarks/requirements/%.txt
	$(or $(BENCH_PYTHON_$*),$(PYTHON)) -m venv .bench/$*
	.bench/$*/bin/pip install --quiet --upgrade pip
	.bench/$*/bin/pip install --quiet -r $<
	touch $@

bench-venvs: $(BENCH_VENVS)

# queuekit and its peers on the local PostgreSQL and Redis, in one run; results in benchmarks/results/.
bench: bench-venvs
	.bench/queuekit/bin/python -m benchmarks.run
	.bench/queuekit/bin/python -m benchmarks.limits_cost
	.bench/queuekit/bin/python -m benchmarks.cluster_scale
	.bench/queuekit/bin/python -m benchmarks.cost_curves

bench-quick: bench-venvs
	.bench/queuekit/bin/python -m benchmarks.run --quick

lint: $(VENV)/.installed
	$(BIN)/ruff check queuekit tests examples benchmarks
	$(BIN)/ruff format --check queuekit tests examples benchmarks
	$(BIN)/mypy --strict queuekit tests examples benchmarks

format: $(VENV)/.installed
	$(BIN)/ruff format queuekit tests examples benchmarks
	$(BIN)/ruff check --fix queuekit tests examples benchmarks

clean:
	rm -rf $(VENV) .bench .mypy_cache .ruff_cache .pytest_cache
