"""Per-script duration baselines and robust outlier scores, computed in the warehouse.

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

How (pipeline/sql/analyze/): one aggregate over every application (scopes.sql) gives the baselines table
and the few scopes whose range of durations leaves room for an outlier; only those are scored, outliers
kept out, by repeating one window step until no flag changes (outliers.sql, rescore.sql).
"""

from __future__ import annotations

import math

from pipeline.analyze.context import Analysis
from pipeline.core.config import AnalyzeConfig

# Normal-consistent spread from the lower quartile: (median - q25) / 0.6745 = sigma.
_HALF_IQR_TO_SIGMA = 0.6745
_P95 = 0.95


def _params(cfg: AnalyzeConfig) -> dict[str, object]:
    window = cfg.baseline_window
    # quantile_disc fractions picking the neighbours of the quartile and median positions (rescore.sql)
    around = [0.25, 0.5, 0.5 + 1 / (4 * window), (math.ceil((window - 1) * 0.25) + 0.5) / window]
    return {
        "window": window, "around": around, "min_samples": cfg.min_samples, "outlier_z": cfg.outlier_z,
        "outlier_ratio": cfg.outlier_ratio, "outlier_min_excess_ms": cfg.outlier_min_excess_ms,
        "sigma_per_half_iqr": 1 / _HALF_IQR_TO_SIGMA, "mad_floor_ratio": cfg.mad_floor_ratio,
        "mad_floor_ms": cfg.mad_floor_ms, "p95": _P95,
    }


def score_applications(a: Analysis) -> int:
    """Fill `analyze_scopes` (one row per scope) and `analyze_apps` (the applications of the scopes with
    outliers, exactly scored and flagged); returns the number of exact scoring steps it took."""
    params = _params(a.cfg)
    if a.run("scopes", **params)[0][0]:
        a.run("scope_ties")  # scopes whose last application shares its instant with another
    a.run("outliers")
    # Each step settles at least one more application of every scope still moving, so this ends; most
    # scopes settle in a step or two, a level shift moves about half a window per step.
    limit = a.con.execute("SELECT count(*) + 1 FROM analyze_apps").fetchall()[0][0]
    for step in range(1, limit + 1):
        if not a.run("rescore", **params)[0][0]:
            return step
    raise AssertionError("outlier scoring did not settle")  # unreachable: see rescore.sql


def write_script_baselines(a: Analysis) -> tuple[int, int]:
    """Replace `script_baselines` with the scopes of `analyze_scopes`; (baselines, still learning)."""
    a.con.execute("DELETE FROM script_baselines")
    a.run("baselines", min_samples=a.cfg.min_samples)
    return a.con.execute("SELECT count(*), count(*) FILTER (WHERE state = 'learning') FROM script_baselines").fetchall()[0]
