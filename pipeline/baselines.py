"""Per-script duration baselines and robust outlier scores, in polars.

A script's baseline scope is (env, service, version, direction): the same script on the many tenant
databases of one env is comparable, and ephemeral preview/CI environments (`analyze.pooled_envs`) share
one pooled env because each of their databases applies every script from scratch.

Each application is judged against the applications of its scope *before* it (the run under test is never
in its own baseline): the median and a robust spread of the last `baseline_window` of them. Fewer than
`min_samples` earlier applications: learning, no claim. Identical timings give a spread of 0, so the spread
has a floor (`mad_floor_ratio` of the median, at least `mad_floor_ms`).
"""

from __future__ import annotations

import fnmatch
from datetime import datetime

import polars as pl

from .config import AnalyzeConfig

SCOPE = ["env", "service", "version", "direction"]
# Normal-consistent spread from quartiles (IQR / 1.349 = sigma), the rolling stand-in for 1.4826 * MAD.
_IQR_TO_SIGMA = 1.349


def pooled_env(env: str, cfg: AnalyzeConfig) -> str:
    """The baseline env of `env`: its pooled name if it matches a pooled glob."""
    for pattern, pool in cfg.pooled_envs.items():
        if fnmatch.fnmatchcase(env, pattern):
            return pool
    return env


def with_scope(applied: pl.DataFrame, cfg: AnalyzeConfig) -> pl.DataFrame:
    """Applied events with the env replaced by its baseline scope."""
    if not cfg.pooled_envs or applied.is_empty():
        return applied
    mapping = {env: pooled_env(env, cfg) for env in applied["env"].unique().to_list()}
    return applied.with_columns(pl.col("env").replace_strict(mapping, default=pl.col("env")))


def script_baselines(applied: pl.DataFrame, cfg: AnalyzeConfig, as_of: datetime) -> pl.DataFrame:
    """One row per scope: n, median, p95, MAD and last duration, and whether it is still learning."""
    timed = applied.filter(pl.col("own_ms").is_not_null())
    return (
        timed.sort("ts")
        .group_by(SCOPE)
        .agg(
            pl.col("name").last(),
            pl.len().cast(pl.Int32).alias("n"),
            pl.col("own_ms").median().alias("median_ms"),
            pl.col("own_ms").quantile(0.95, interpolation="linear").alias("p95_ms"),
            (pl.col("own_ms") - pl.col("own_ms").median()).abs().median().alias("mad_ms"),
            pl.col("own_ms").last().alias("last_ms"),
            pl.col("ts").last().alias("last_at"),
            pl.col("ts").first().alias("first_at"),
            pl.col("database").n_unique().cast(pl.Int32).alias("databases"),
        )
        .with_columns(
            pl.when(pl.col("n") < cfg.min_samples).then(pl.lit("learning")).otherwise(pl.lit("ready")).alias("state"),
            pl.lit(as_of).alias("as_of"),
        )
        .sort(SCOPE)
    )


def score_applications(applied: pl.DataFrame, cfg: AnalyzeConfig) -> pl.DataFrame:
    """Every timed application with its prior baseline (median, spread, n), robust z, ratio and outlier flag."""
    window = cfg.baseline_window
    prior = pl.col("own_ms").shift(1)
    scored = (
        applied.filter(pl.col("own_ms").is_not_null())
        .sort([*SCOPE, "ts", "event_id"])
        .with_columns(
            pl.int_range(pl.len()).clip(upper_bound=window).over(SCOPE).alias("prior_n"),
            prior.rolling_median(window_size=window, min_samples=1).over(SCOPE).alias("prior_median"),
            (prior.rolling_quantile(0.75, window_size=window, min_samples=1)
             - prior.rolling_quantile(0.25, window_size=window, min_samples=1)).over(SCOPE).alias("prior_iqr"),
        )
        .with_columns(
            pl.max_horizontal(
                pl.col("prior_iqr") / _IQR_TO_SIGMA,
                pl.col("prior_median") * cfg.mad_floor_ratio,
                pl.lit(cfg.mad_floor_ms),
            ).alias("prior_spread"),
        )
        .with_columns(
            ((pl.col("own_ms") - pl.col("prior_median")) / pl.col("prior_spread")).alias("z"),
            (pl.col("own_ms") / pl.col("prior_median").clip(lower_bound=1e-3)).alias("ratio"),
        )
        .with_columns(
            (
                (pl.col("prior_n") >= cfg.min_samples)
                & (pl.col("z") >= cfg.outlier_z)
                & (pl.col("ratio") >= cfg.outlier_ratio)
                & ((pl.col("own_ms") - pl.col("prior_median")) >= cfg.outlier_min_excess_ms)
            ).fill_null(False).alias("outlier"),
        )
    )
    # Consecutive outliers of one scope form a streak: a streak of `shift_min` or more is one level shift.
    return scored.with_columns(
        (pl.col("outlier") & ~pl.col("outlier").shift(1, fill_value=False)).cum_sum().over(SCOPE).alias("streak_no"),
    ).with_columns(
        pl.when(pl.col("outlier")).then(pl.col("streak_no")).otherwise(None).alias("streak"),
    )
