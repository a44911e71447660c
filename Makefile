# Two commands for a fresh machine: `make demo` and `make test`. Both create .venv and install first.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed-stamp
OUT    := migrate-lens-out
# The demo's clock is pinned to the end of the sample data, so it gives the same result any day.
AS_OF  := 2026-11-16T00:00:00Z

.PHONY: demo test test-fast bench bench-quick install clean sample-logs

install: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test]'
	touch $(STAMP)

demo: $(STAMP)
	@# git keeps no mtimes; the generator is seeded and restores them (bare text takes its time from mtime)
	$(PY) sample_logs/generate.py > /dev/null
	rm -f $(OUT)/demo.duckdb $(OUT)/demo.duckdb.wal
	mkdir -p $(OUT)
	$(VENV)/bin/migrate-lens --db $(OUT)/demo.duckdb --out $(OUT) --as-of $(AS_OF) run sample_logs
	@echo "warehouse: $(OUT)/demo.duckdb"
	@echo "report:    $(OUT)/reports/2026-W46.html"

test: $(STAMP)
	$(PY) -m pytest -n 2 -q

# The edit-test loop: everything but the tests marked `slow` in pyproject (hypothesis, the SIGKILL ingest, the
# S3 server, headless Chromium, regenerating sample_logs); `make test` runs them all, as CI does.
test-fast: $(STAMP)
	$(PY) -m pytest -n 2 -q -m "not slow"

# One table, every shape (tests/bench.py): ours against a floor measured in the same run, with peak RSS.
# Inputs are generated once into .bench/; the full run takes long on 2 cores, bench-quick a few minutes.
bench: $(STAMP)
	$(PY) tests/bench.py

bench-quick: $(STAMP)
	$(PY) tests/bench.py --quick

sample-logs: $(STAMP)
	$(PY) sample_logs/generate.py

clean:
	rm -rf $(OUT) .bench .pytest_cache
