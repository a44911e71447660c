"""Configuration: one pydantic section per stage, loaded from TOML. Secrets never live in the file."""

from __future__ import annotations

import fnmatch
import tomllib
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from pipeline.core.errors import ConfigError
from pipeline.core.vocabulary import Envelope, LintLevel, LintRule

Format = Literal["auto"] | Envelope


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
    group_source_bytes: int = Field(
        8 << 20,
        ge=0,
        description="Sources at most this size (as listed; compressed size for .gz/.zst) are small: read whole "
        "and stored many at a time, one transaction per group (0: every source on its own).",
    )
    group_lines: int = Field(
        100_000, ge=1, description="Records per group of small sources (a source with more than batch_lines "
        "records is stored on its own, batch by batch)."
    )
    group_sources: int = Field(2_000, ge=1, description="Small sources per group at most.")
    error_continuation_seconds: float = Field(
        5.0,
        gt=0,
        description="Lines without a verbose prefix that arrive within this many seconds of the previous one "
        "continue a multi-line migrate error (its SQL body).",
    )
    cloudwatch_lookback_seconds: float = Field(
        300.0, ge=0, description="A `cloudwatch://` source asks again from this long before the last event "
        "it read, for events that arrive late (those already read are not stored twice).",
    )
    earliest_time: datetime = Field(
        datetime(2000, 1, 1), description="Records with an earlier time are rejected as `bad_time` (UTC)."
    )
    max_future_hours: float = Field(
        24.0, ge=0, description="Records more than this many hours past the wall clock (not --as-of) are rejected "
        "as `bad_time`.",
    )
    run_gap_minutes: float = Field(
        60.0,
        gt=0,
        description="Silence within one stream longer than this starts a new migrate run, even without a "
        "terminal line (a restarted container that reuses its stream).",
    )

    def time_window(self) -> dict[str, datetime]:
        """The plausible times of a record, as SQL parameters: `earliest_time`, `latest_time` (naive UTC)."""
        earliest = self.earliest_time if self.earliest_time.tzinfo is None else \
            self.earliest_time.astimezone(UTC).replace(tzinfo=None)
        latest = datetime.now(UTC).replace(tzinfo=None) + timedelta(hours=self.max_future_hours)
        return {"earliest_time": earliest, "latest_time": latest}


class WarehouseConfig(_Section):
    memory_limit: str = Field(
        "512MB",
        description="DuckDB's memory limit for migrate-lens's own work; larger sorts and windows spill to "
        "disk next to the warehouse, so a big ingest stays within it.",
    )
    threads: int | None = Field(None, ge=1, description="DuckDB worker threads; default: one per core.")


class AnalyzeConfig(_Section):
    env_order: list[str] = Field(
        ["dev", "staging", "prod"],
        description="Environments in promotion order; a version should pass each before the next.",
    )
    prod_envs: list[str] = Field(["prod", "production"], description="Environments that count as production.")
    pooled_envs: dict[str, str] = Field(
        {"preview-*": "preview", "pr-*": "preview", "ci-*": "ci"},
        description="Glob of ephemeral environments -> one pooled name: their databases apply every script from "
        "scratch, so their timings are comparable and share one baseline.",
    )
    min_samples: int = Field(
        5, ge=2, description="Earlier applications a script needs before an outlier is claimed (below: learning)."
    )
    baseline_window: int = Field(
        50, ge=5, description="How many of a script's most recent earlier applications form its baseline."
    )
    outlier_z: float = Field(6.0, gt=0, description="Robust z-score (vs median and MAD) that makes a duration an outlier.")
    outlier_ratio: float = Field(3.0, gt=1, description="...and it must also be at least this many times the median.")
    outlier_min_excess_ms: float = Field(
        1000.0, ge=0, description="...and at least this much slower than the median (ms), so tiny scripts stay quiet."
    )
    critical_ratio: float = Field(10.0, gt=1, description="A production outlier this many times the median is critical.")
    mad_floor_ratio: float = Field(
        0.05, ge=0, description="MAD = 0 fallback: the spread is at least this fraction of the median."
    )
    mad_floor_ms: float = Field(5.0, ge=0, description="MAD = 0 fallback: the spread is at least this many ms.")
    shift_min: int = Field(
        3, ge=2, description="Consecutive outliers of one script (across databases or runs) reported once, as a level shift."
    )
    spike_window_days: float = Field(7.0, gt=0, description="Failure spike: the recent window before the clock (days).")
    spike_trailing_days: float = Field(28.0, gt=0, description="Failure spike: the trailing window before it (days).")
    spike_min_failures: int = Field(3, ge=1, description="Failure spike: failures the recent window must hold.")
    spike_ratio: float = Field(3.0, gt=1, description="Failure spike: recent failure rate / trailing rate.")
    spike_rate_floor: float = Field(
        0.05, gt=0, description="Failure spike: the trailing rate is taken as at least this (a clean history is not 0)."
    )
    dirty_critical_minutes: float = Field(
        30.0, ge=0, description="A production database dirty for this long is critical."
    )
    non_idempotent_lookback_days: float = Field(
        14.0, gt=0, description="A failure with 'already exists' / 'does not exist' within this many days after a failure, "
        "interruption or force on the same database is a non-idempotent re-run.",
    )


    def pool(self, env: str) -> str:
        """The baseline env of `env`: its pooled name if it matches a pooled glob (preview-* -> preview)."""
        for pattern, pool in self.pooled_envs.items():
            if fnmatch.fnmatchcase(env, pattern):
                return pool
        return env


class RetentionConfig(_Section):
    keep_raw_days: float | None = Field(
        None, gt=0,
        description="Raw log_lines (of streams quiet for this long) and rejects older than this many days are "
        "removed by `prune`, and by `run` when set; events, runs, findings and alerts are kept. None: keep all.",
    )
    compact: bool = Field(True, description="Rewrite the warehouse file after pruning so the freed space is returned.")


class LintConfig(_Section):
    disable: list[LintRule] = Field([], description="Lint rule ids never reported (e.g. [\"no-lock-timeout\"]).")
    levels: dict[LintRule, LintLevel] = Field(
        {}, description="Lint rule id -> level (error, warning, info) replacing the rule's own level."
    )


class MetricsConfig(_Section):
    textfile: Path | None = Field(
        None, description="`run` also writes the Prometheus metrics here (atomically), for node_exporter's textfile "
        "collector (e.g. /var/lib/node_exporter/textfile/migrate_lens.prom).")
    push_url: str | None = Field(None, description="`run` also pushes the metrics to this Pushgateway (job "
                                                   "migrate_lens).")


class Config(_Section):
    analyze: AnalyzeConfig = Field(default_factory=AnalyzeConfig, description="Baselines and findings.")
    warehouse: WarehouseConfig = Field(default_factory=WarehouseConfig, description="The DuckDB file.")
    ingest: IngestConfig = Field(default_factory=IngestConfig, description="How sources are read.")
    retention: RetentionConfig = Field(default_factory=RetentionConfig, description="How long raw lines are kept.")
    lint: LintConfig = Field(default_factory=LintConfig, description="Which lint rules report, at which level.")
    metrics: MetricsConfig = Field(default_factory=MetricsConfig, description="Where `run` sends the metrics.")


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
