# Every target bootstraps .venv on first use, so a fresh machine needs only Python 3.11 and make.
PY ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint bench serve clean

$(STAMP): pyproject.toml constraints.txt
	@test -x $(BIN)/python || $(PY) -m venv $(VENV) || python3 -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[dev]'
	@touch $(STAMP)

demo: $(STAMP)
	$(BIN)/offerloop demo

# One pytest process per core (PYTEST_WORKERS=0 runs in this process alone).
PYTEST_WORKERS ?= auto
test: $(STAMP)
	$(BIN)/python -m pytest -n $(PYTEST_WORKERS) --dist loadfile $(PYTEST_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench
	$(BIN)/mypy src
	$(BIN)/lint-imports
	OFFERLOOP_DATABASE_URL=sqlite:///$$(mktemp -d)/check.db $(BIN)/python -m offerloop.cli.main migrate --check

bench: $(STAMP)
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[dev,bench]'
	$(BIN)/python bench/ingest.py
	$(BIN)/python bench/lookup.py
	$(BIN)/python bench/decide.py
	$(BIN)/python bench/features.py
	$(BIN)/python bench/policies.py
	$(BIN)/python bench/regret.py
	$(BIN)/python bench/assembly.py
	$(BIN)/python bench/render.py
	$(BIN)/python bench/entitlements.py

serve: $(STAMP)
	$(BIN)/offerloop serve

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache offerloop-demo.db*
