# The two commands a newcomer needs: `make run` and `make test`. Everything else is a helper.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: venv run run-shared test lint format typecheck kafka kafka-stop test-faults bench mutation clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[test]' -e ./dev
	touch $(STAMP)

venv: $(STAMP)

## The whole pipeline on the local broker, in the foreground; Ctrl-C stops everything.
run: venv
	bash scripts/run-dev.sh

## The production topology on this host: Kafka, Redis, OpenSearch, S3 (s3proxy), the registry, nginx
## in front of two producers, two members per group with their own data dirs; Ctrl-C stops all.
run-shared: venv
	bash scripts/run-shared.sh

## Lint, then the whole suite against a real broker (started for the session if none is given).
test: lint
	$(BIN)/pytest

## Every fault scenario on a three-node local cluster (10 minutes or so); prints the ledger
## and appends it to build/faults/ledger.jsonl. `make test` runs only the quick ones.
test-faults: venv
	$(BIN)/pytest -m faults tests/faults

## Benchmarks, every comparison side by side in one run (about 25 minutes; not part of `make test`):
## results.json, results.md and latency.png in docs/benchmarks/. `make bench BENCH_QUICK=1` is a
## shorter run of the same rounds into build/bench/; docs/benchmarks/README.md lists every BENCH_* knob.
## The load generator (vegeta) is built into the venv with `go install` on the first run.
BENCH_STAMP := $(VENV)/.bench-installed
$(BENCH_STAMP): $(STAMP)
	$(BIN)/pip install -q -e '.[test,bench]'
	touch $(BENCH_STAMP)

bench: $(BENCH_STAMP)
	@command -v go >/dev/null || { echo "make bench: installing Go, to build the load generator (Debian package)"; \
	  apt-get install -y -qq golang-go || { apt-get update -qq && apt-get install -y -qq golang-go; }; }
	$(BIN)/python -m bench

## Mutation testing (mutmut) of the pure-logic modules against their unit tests, on a copy of the
## tree; prints every surviving mutant and the score per module (not part of `make test`).
MUTATION_STAMP := $(VENV)/.mutation-installed
$(MUTATION_STAMP): $(STAMP)
	$(BIN)/pip install -q -e '.[test,mutation]'
	touch $(MUTATION_STAMP)

mutation: $(MUTATION_STAMP)
	$(BIN)/python scripts/mutation.py

lint: venv
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: venv
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

typecheck: venv
	$(BIN)/mypy hookstream producer consumers schemas dev/hookstream_dev

## The local broker on its own (data kept across restarts).
kafka: venv
	$(BIN)/hookstream kafka start
	$(BIN)/hookstream topics create

kafka-stop: venv
	$(BIN)/hookstream kafka stop

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .mypy_cache
