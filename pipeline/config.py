"""Configuration: one pydantic section per stage, loaded from TOML. Secrets never live in the file."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from .errors import ConfigError

Format = Literal["auto", "docker", "kubernetes", "loki", "cloudwatch", "slog", "text", "events"]


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class IngestConfig(_Section):
    format: Format = Field("auto", description="Envelope of every source; `auto` detects it per file.")
    default_env: str = Field("unknown", description="env for lines whose record, labels and path say none.")
    default_service: str = Field(
        "unknown", description="service for lines whose record, labels and path say none."
    )
    default_database: str = Field(
        "unknown", description="database for lines whose record, labels and path say none."
    )
    verbose_timezone: str = Field(
        "UTC",
        description="Zone of migrate's `-verbose` prefix (the process's local zone; UTC in the official image). "
        "Used only where the envelope has no timestamp of its own.",
    )
    batch_lines: int = Field(
        200_000, ge=1_000, description="Lines loaded per batch; bounds memory whatever the file size."
    )
    error_continuation_seconds: float = Field(
        5.0,
        gt=0,
        description="Lines without a verbose prefix that arrive within this many seconds of the previous one "
        "continue a multi-line migrate error (its SQL body).",
    )
    run_gap_minutes: float = Field(
        60.0,
        gt=0,
        description="Silence within one stream longer than this starts a new migrate run, even without a "
        "terminal line (a restarted container that reuses its stream).",
    )


class WarehouseConfig(_Section):
    memory_limit: str = Field(
        "512MB",
        description="DuckDB's memory limit for migrate-lens's own work; larger sorts and windows spill to "
        "disk next to the warehouse, so a big ingest stays within it.",
    )
    threads: int | None = Field(None, ge=1, description="DuckDB worker threads; default: one per core.")


class Config(_Section):
    warehouse: WarehouseConfig = Field(default_factory=WarehouseConfig, description="The DuckDB file.")
    ingest: IngestConfig = Field(default_factory=IngestConfig, description="How sources are read.")


def _describe(err: ValidationError, path: Path) -> str:
    problems = []
    for e in err.errors():
        where = ".".join(str(p) for p in e["loc"]) or "(top level)"
        problems.append(f"{where}: {e['msg']}")
    return f"{path}: " + "; ".join(problems) + " (fix the config file; see README § Configuration)"


def load_config(path: Path | None) -> Config:
    """Read and validate the TOML config; no file means every default."""
    if path is None:
        return Config()
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{path}: config file not found (check --config)") from None
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"{path}: not valid TOML: {e} (fix the file)") from None
    try:
        return Config.model_validate(raw)
    except ValidationError as e:
        raise ConfigError(_describe(e, path)) from None
