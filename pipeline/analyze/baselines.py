"""Per-script duration baselines and robust outlier scores, in polars.

A script's baseline scope is (env, service, version, direction): the same script on the many tenant
databases of one env is comparable, and ephemeral preview/CI environments (`analyze.pooled_envs`) share
one pooled env because each of their databases applies every script from scratch.

Each application is judged against the applications of its scope *before* it (the run under test is never
in its own baseline): the median and a robust spread of the last `baseline_window` of them. Fewer than
`min_samples` earlier applications: learning, no claim. Identical timings give a spread of 0, so the spread
has a floor (`mad_floor_ratio` of the median, at least `mad_floor_ms`).

The spread is the lower half of the interquartile range ((median - q25) / 0.6745, sigma for normal data):
slow outliers sit above the median, so they cannot widen it. In a scope that has outliers, they are kept out
of the baseline of the applications after them, so a level shift is measured against the level it broke from
for as long as it lasts, not absorbed run by run.
"""

from __future__ import annotations

import bisect
from collections import deque
from datetime import datetime

import polars as pl

from pipeline.core.config import AnalyzeConfig

SCOPE = ["env", "service", "version", "direction"]
# Normal-consistent spread from the lower quartile: (median - q25) / 0.6745 = sigma.
_HALF_IQR_TO_SIGMA = 0.6745


def with_scope(applied: pl.DataFrame, cfg: AnalyzeConfig) -> pl.DataFrame:
    """Applied events with the env replaced by its baseline scope (the real one kept as `source_env`)."""
    applied = applied.with_columns(pl.col("env").alias("source_env"))
    if not cfg.pooled_envs or applied.is_empty():
        return applied
    mapping = {env: cfg.pool(env) for env in applied["env"].unique().to_list()}
    return applied.with_columns(pl.col("env").replace_strict(mapping, default=pl.col("env")))


def script_baselines(scored: pl.DataFrame, cfg: AnalyzeConfig, as_of: datetime) -> pl.DataFrame:
    """One row per scope: n, median, p95, MAD and last duration, and whether it is still learning.

    Takes `score_applications`' output: timed applications already in (scope, time) order, which group_by
    keeps within each group, so first/last need no sort of their own.
    """
    return (
        scored.select([*SCOPE, "name", "own_ms", "ts", "database"])
        .group_by(SCOPE, maintain_order=True)
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


def _flag(frame: pl.DataFrame, cfg: AnalyzeConfig) -> pl.DataFrame:
    """z, ratio and the outlier flag from prior_n / prior_median / prior_q25."""
    return (
        frame.with_columns(
            pl.max_horizontal(
                (pl.col("prior_median") - pl.col("prior_q25")) / _HALF_IQR_TO_SIGMA,
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


def _spread(median: float, q25: float, cfg: AnalyzeConfig) -> float:
    return max((median - q25) / _HALF_IQR_TO_SIGMA, median * cfg.mad_floor_ratio, cfg.mad_floor_ms)


def _is_outlier(value: float, n: int, median: float | None, q25: float | None, cfg: AnalyzeConfig) -> bool:
    """The rule of `_flag`, for one value (used where the order of decisions matters)."""
    if n < cfg.min_samples or median is None or q25 is None:
        return False
    z = (value - median) / _spread(median, q25, cfg)
    return z >= cfg.outlier_z and value / max(median, 1e-3) >= cfg.outlier_ratio \
        and value - median >= cfg.outlier_min_excess_ms


def _rescore_without_outliers(scope: pl.DataFrame, cfg: AnalyzeConfig) -> pl.DataFrame:
    """One scope, in time order, each application judged against the last `baseline_window` *normal* ones.

    The window is kept sorted incrementally (insort / remove), so each step costs O(window), not a sort.
    """
    recent: deque[float] = deque()
    ordered: list[float] = []
    n: list[int] = []
    median: list[float | None] = []
    q25: list[float | None] = []
    for value in scope["own_ms"].to_list():
        size = len(ordered)
        n.append(size)
        median.append(_linear_quantile(ordered, 0.5) if size else None)
        q25.append(_linear_quantile(ordered, 0.25) if size else None)
        if not _is_outlier(value, n[-1], median[-1], q25[-1], cfg):
            recent.append(value)
            bisect.insort(ordered, value)
            if len(recent) > cfg.baseline_window:
                ordered.pop(bisect.bisect_left(ordered, recent.popleft()))
    return _flag(scope.with_columns(pl.Series("prior_n", n, pl.Int64), pl.Series("prior_median", median, pl.Float64),
                                    pl.Series("prior_q25", q25, pl.Float64)), cfg)


def _linear_quantile(ordered: list[float], q: float) -> float:
    """numpy's / polars' linear quantile of an already sorted list."""
    pos = (len(ordered) - 1) * q
    low = int(pos)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (pos - low)


def score_applications(applied: pl.DataFrame, cfg: AnalyzeConfig) -> pl.DataFrame:
    """Every timed application with its prior baseline (median, spread, n), robust z, ratio and outlier flag."""
    window = cfg.baseline_window
    prior = pl.col("own_ms").shift(1)
    ordered = applied.filter(pl.col("own_ms").is_not_null()).sort([*SCOPE, "ts", "event_id"]).with_row_index("_row")
    # Rows are sorted by scope, so a scope is a run of equal keys: number them once and window over that
    # integer instead of hashing four string columns for every window below.
    changed = pl.any_horizontal([pl.col(c).ne_missing(pl.col(c).shift(1)) for c in SCOPE])
    ordered = ordered.with_columns(changed.fill_null(True).cum_sum().alias("_scope"))
    scored = _flag(
        ordered.with_columns(
            pl.int_range(pl.len()).clip(upper_bound=window).over("_scope").alias("prior_n"),
            prior.rolling_median(window_size=window, min_samples=1).over("_scope").alias("prior_median"),
            prior.rolling_quantile(0.25, interpolation="linear", window_size=window, min_samples=1)
            .over("_scope").alias("prior_q25"),
        ),
        cfg,
    )
    # Scopes with an outlier are scored again in order, outliers kept out of later baselines (few scopes).
    hit = scored.filter(pl.col("outlier")).select("_scope").unique()
    if hit.height:
        affected = scored.join(hit, on="_scope", how="semi", maintain_order="left")
        rescored = [_rescore_without_outliers(part, cfg) for part in affected.partition_by("_scope", maintain_order=True)]
        # Back into the sorted order by row number: one integer sort, not the multi-column one again.
        scored = pl.concat([scored.join(hit, on="_scope", how="anti", maintain_order="left"), *rescored],
                           how="vertical_relaxed").sort("_row")
    # Consecutive outliers of one scope form a streak: a streak of `shift_min` or more is one level shift.
    return scored.with_columns(
        (pl.col("outlier") & ~pl.col("outlier").shift(1, fill_value=False)).cum_sum().over("_scope").alias("streak_no"),
    ).with_columns(
        pl.when(pl.col("outlier")).then(pl.col("streak_no")).otherwise(None).alias("streak"),
    ).drop("_row", "_scope")
