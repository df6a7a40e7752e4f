# The two commands a user needs: `make audit` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: programs bench-programs setup engine test-images image audit test bench bench-cache bench-watch bench-isolation bench-neighbours bench-retention bench-prove lint docs clean

$(BIN)/portcullis: pyproject.toml requirements.lock requirements-dev.lock
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -r requirements.lock -r requirements-dev.lock
	$(BIN)/pip install -q --no-deps -e .
	@touch $@

## setup: create .venv/ with portcullis, its pinned runtime dependencies (requirements.lock) and the dev tools (requirements-dev.lock)
setup: $(BIN)/portcullis

## engine: make sure a Docker engine is reachable (installs and starts one on Debian/Ubuntu as root)
engine:
	@bash scripts/ensure-engine.sh

## programs: every external program the tests call (scripts/programs.tsv), installed where missing (Debian, root)
programs:
	@bash scripts/install-programs.sh test

## bench-programs: the same for the benchmarks too (the peers Trivy, syft and hadolint, GNU time)
bench-programs:
	@bash scripts/install-programs.sh test bench

## test-images: build the offline test images the integration tests use
test-images: engine
	@bash scripts/build-test-images.sh
	@bash scripts/start-test-registry.sh

## image: build the Portcullis container image (Dockerfile) offline from wheels; kept when its inputs are unchanged
image: setup test-images
	@bash scripts/build-portcullis-image.sh

## audit: audit the local Docker engine, its host and its files
audit: setup engine
	$(BIN)/portcullis audit

## test: set up everything, check lint and types, and run the whole test suite
test: programs setup engine test-images image
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks
	$(BIN)/mypy
	$(BIN)/lint-imports --no-cache --no-logo
	$(BIN)/python -m pytest -q

## bench: audit wall time and API calls at 7, 67 and 500 containers (benchmarks/results/audit.*)
bench: bench-programs setup engine test-images
	$(BIN)/python benchmarks/audit_bench.py

## bench-cache: the layer cache against Trivy's own cache, the bars of issue 14 §2 (benchmarks/results/cache.*)
bench-cache: bench-programs setup engine test-images
	$(BIN)/python benchmarks/cache_bench.py

## bench-retention: pruning 105,000 findings on SQLite and PostgreSQL, trimming the layer cache (benchmarks/results/retention.*)
bench-retention: programs setup
	$(BIN)/python benchmarks/retention_bench.py

## bench-watch: `portcullis watch` latency, 50 containers started in a burst (benchmarks/results/watch.*)
bench-watch: setup engine test-images
	$(BIN)/python benchmarks/watch_bench.py

## bench-isolation: native vs runc vs gVisor vs a KVM VM, issue 16 §1 (benchmarks/results/runtimes.*)
bench-isolation: bench-programs setup engine test-images
	$(BIN)/python benchmarks/runtimes_bench.py

## bench-neighbours: noisy neighbours, the runc, runsc and VM matrix with and without limits, then runc and VM unpinned, about 28 min (benchmarks/results/neighbours*.*)
bench-neighbours: programs setup engine test-images
	$(BIN)/python benchmarks/neighbours_bench.py
	$(BIN)/python benchmarks/neighbours_bench.py --unpinned

## bench-prove: how closely the disk and egress caps prove holds, and each proof's time (benchmarks/results/prove-limits.*)
bench-prove: programs setup engine test-images
	$(BIN)/python benchmarks/prove_limits_bench.py

## lint: ruff, mypy and the import contracts (.importlinter)
lint: setup
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/mypy
	$(BIN)/lint-imports --no-cache --no-logo

## docs: regenerate docs/rules from the rule metadata
docs: setup
	$(BIN)/python -m portcullis.cli.docs docs/rules

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
