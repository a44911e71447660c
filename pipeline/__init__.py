"""migrate-lens: history, baselines and findings from golang-migrate logs, in DuckDB.

The public API lives in `pipeline.api` (`Lens`, and one function per stage over a DuckDB connection); its
main names are importable from here too, loaded on first use so that `import pipeline` stays cheap.
"""

from __future__ import annotations

from typing import Any

__version__ = "0.2.0"

_PUBLIC = frozenset({"Lens", "Config", "connect", "ingest", "analyze", "report", "alert", "run", "query", "lint",
                     "upgrade", "load_config", "load_rules"})


def __getattr__(name: str) -> Any:
    if name in _PUBLIC:
        from pipeline import api

        return getattr(api, name)
    raise AttributeError(f"module 'pipeline' has no attribute {name!r}")
