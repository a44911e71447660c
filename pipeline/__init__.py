"""migrate-lens: history, baselines and findings from golang-migrate logs, in DuckDB."""

__version__ = "0.1.0"
