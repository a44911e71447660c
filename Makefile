# Two commands for a fresh machine: `make demo` and `make test`. Both create .venv and install first.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed-stamp
OUT    := migrate-lens-out
# The demo's clock is pinned to the end of the sample data, so it gives the same result any day.
AS_OF  := 2026-11-16T00:00:00Z

.PHONY: demo test test-fast bench install clean sample-logs

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

bench: $(STAMP)
	$(PY) tests/bench_ingest.py --lines 2000000
	$(PY) tests/bench_ingest.py --lines 200000 --rss-scale
	$(PY) tests/bench_analyze.py --events 10000000

sample-logs: $(STAMP)
	$(PY) sample_logs/generate.py

clean:
	rm -rf $(OUT) .bench .pytest_cache
