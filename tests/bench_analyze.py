"""Analyze benchmark: migrate-lens `analyze` on a warehouse of N migrate events.

Run from the repo root:

    .venv/bin/python tests/bench_analyze.py [--events N] [--profile] [--rebuild]

It builds (once, cached as `.bench/analyze-N.duckdb`) a warehouse whose `migrate_events` holds exactly N rows
and whose `runs` match them, generated set-based in DuckDB SQL (`range()`, hash-based pseudo-random values;
no ingest, which would take many minutes at this size). The fleet: 20 services; envs dev, staging, prod and
short-lived `preview-<n>` PR environments; hundreds of prod tenant databases per service; releases of 1-5
scripts rolled out dev -> staging -> prod (a few hotfixes reach prod before staging); each script has a
stable typical own duration per (service, version), scaled by env and tenant size, with lognormal noise and
rare spikes; one script shifts level (25x) on most prod tenants. Most events are `applied` up steps (verbose
runs also print `buffering` / `executing`, and `Finished after` / `Closing`); ~1 % of runs fail
(`migration_failed`, left dirty at the failing version), some re-runs hit `Dirty database version` or fail
again with `already exists`, some runs are locked, interrupted or cannot connect (a failure spike on one
service in the last days); staging and dev try downs and re-apply, a few prod rollbacks run downs (some never
re-applied), and ~3 % of scripts have no down file (`<empty>`).

It then runs `pipeline.analyze.analyze(con, config=Config(), as_of=<last event>)` in a fresh child process
(so its peak RSS, VmHWM, is its own) with the stage functions of pipeline.analyze (baselines, each findings
detector, each SQL step of pipeline/sql/analyze/) wrapped to time them (the pipeline files are not touched),
and prints one table plus the machine line. Before and after it, the floor of issue #14 runs in a child of its
own on the same warehouse: DuckDB computing a rolling median and lower quartile of `own_ms` over the previous
30 applications per (env, service, version, direction); the report gives analyze's time / floor and peak RSS
against the issue's targets (<= 5x, <= 1 GB). `--profile` also runs analyze once more under cProfile and
prints the top functions.

Timings are reported, never asserted: this always exits 0. It is not collected by pytest (no test_ prefix).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
BENCH = ROOT / ".bench"
GENERATOR_VERSION = 2
SEED = 20240628

from tests.bench_ingest import machine, table
from tests.kit.fleet import NOUNS, SERVICES, SUFFIX, VERBS

# --------------------------------------------------------------------------------------------------------
# The fleet
# --------------------------------------------------------------------------------------------------------

TS_VERSIONS = tuple(i for i, s in enumerate(SERVICES) if s.ts_versions)  # `migrate create -format 20060102150405`
WRAPPED = (7, 15)                # services run through `migrate-lens wrap`: command and exit code recorded
SHIFT_SID = 1                    # billing: one script shifts level on most prod tenants
SPIKE_SID = 6                    # payments: cannot connect on most prod runs of the last days
# error_class -> (postgres message, line, column, SQL body)  — what migrate prints for a failed script
ERRORS = {
    "syntax_error": ('syntax error at or near ")"', 5, 1,
                     ("CREATE TABLE refunds (\n  id bigserial PRIMARY KEY,\n"
                      "  total numeric(12,2) NOT NULL,\n);")),
    "already_exists": ('relation "orders_user_idx" already exists', 0, None,
                       "CREATE INDEX orders_user_idx ON orders (user_id);"),
    "does_not_exist": ('column "customer_id" does not exist', 3, None,
                       ("ALTER TABLE invoices\n  ADD CONSTRAINT invoices_customer_fk\n"
                        "  FOREIGN KEY (customer_id) REFERENCES customers(id);")),
    "data_violation": ('could not create unique index "users_email_key"', 0, None,
                       "ALTER TABLE users ADD CONSTRAINT users_email_key UNIQUE (email);"),
    "transaction_block": ("CREATE INDEX CONCURRENTLY cannot run inside a transaction block", 0, None,
                          "CREATE INDEX CONCURRENTLY events_created_idx ON events (created_at);"),
    "lock_conflict": ("canceling statement due to lock timeout", 1, None,
                      "SET lock_timeout = '5s';\nALTER TABLE sessions ADD COLUMN archived_at timestamptz;"),
    "statement_timeout": ("canceling statement due to statement timeout", 0, None,
                          "UPDATE orders SET total_cents = total * 100;"),
}
FAIL_CLASSES = ["syntax_error", "does_not_exist", "does_not_exist", "data_violation", "data_violation",
                "transaction_block", "lock_conflict", "statement_timeout", "already_exists", "syntax_error"]

DAY_US = 86_400_000_000
HOUR_US = 3_600_000_000
T_END = 1_719_532_800 * 1_000_000          # 2024-06-28T00:00:00Z: the data ends just before
SPAN_US = 180 * DAY_US                      # half a year of history
T0 = T_END - SPAN_US
REL_SPAN_US = SPAN_US - 2 * DAY_US          # releases stop 2 days before the end (prod follows a day later)
PREVIEWS_AT_SCALE_1 = 5000                  # preview envs; prod tenants per service are 60..600 at scale 1


def _lit(values: list[str]) -> str:
    return "[" + ", ".join("'" + v.replace("'", "''") + "'" for v in values) + "]"


def _q(value: str | None) -> str:
    return "NULL" if value is None else "'" + value.replace("'", "''") + "'"


MACROS = f"""
CREATE OR REPLACE TEMP MACRO u(a, b, c) AS ((hash(a, b, c, {SEED}) >> 11)::DOUBLE / 9007199254740992.0);
CREATE OR REPLACE TEMP MACRO nz(a, b, c) AS
    (sqrt(-2.0 * ln(1.0 - u(a || '1', b, c))) * cos(2.0 * pi() * u(a || '2', b, c)));
"""


def _fleet_sql(scale: float) -> list[str]:
    """Statements building svc, scripts, rel, lanes and the run plan `rp` (no events yet) for one scale."""
    names = _lit([s.name for s in SERVICES])
    nss = _lit([s.namespace for s in SERVICES])
    errs = ", ".join(f"({_q(k)}, {_q(m)}, {ln}, {'NULL' if col is None else col}, {_q(sql)})"
                     for k, (m, ln, col, sql) in ERRORS.items())
    return [
        # ---- services, their scripts and releases
        f"""CREATE OR REPLACE TEMP TABLE svc AS
        SELECT i::INT AS sid, {names}[i + 1] AS service, {nss}[i + 1] AS ns,
               (120 + hash('nv', i, {SEED}) % 241)::INT AS n_versions,      -- released in the window
               (40 + hash('v0', i, {SEED}) % 261)::INT AS v0,               -- released before it
               i IN {TS_VERSIONS} AS ts_versions, i IN {WRAPPED} AS wrapped,
               greatest(2, round((60 + hash('tn', i, {SEED}) % 541) * {scale}))::INT AS tenants
        FROM range({len(SERVICES)}) t(i)""",
        f"""CREATE OR REPLACE TEMP TABLE scripts AS
        WITH v AS (SELECT sid, ts_versions, v0, n_versions, unnest(range(1, v0 + n_versions + 1)) AS vidx FROM svc)
        SELECT sid, vidx::INT AS vidx,
            CASE WHEN ts_versions
                 THEN strftime(make_timestamp(1546300800000000 + vidx * 97200000000), '%Y%m%d%H%M%S')::BIGINT
                 ELSE vidx END AS version,
            {_lit(VERBS)}[(1 + hash('vb', sid, vidx) % {len(VERBS)})::BIGINT] || '_'
                || {_lit(NOUNS)}[(1 + hash('nn', sid, vidx) % {len(NOUNS)})::BIGINT]
                || coalesce('_' || nullif({_lit(SUFFIX)}[(1 + hash('sx', sid, vidx) % {len(SUFFIX)})::BIGINT], ''), '')
                AS name,
            CASE WHEN sid = {SHIFT_SID} AND vidx = v0 + n_versions * 3 // 5 THEN 400.0
                 WHEN u('hv', sid, vidx) < 0.02 THEN 15000.0 + 240000.0 * u('hm', sid, vidx)   -- backfills
                 ELSE least(120000.0, greatest(0.5, exp(ln(25) + 1.3 * nz('ty', sid, vidx)))) END AS typical_ms,
            u('de', sid, vidx) < 0.03 AS down_empty
        FROM v""",
        f"""CREATE OR REPLACE TEMP TABLE rel AS
        WITH r AS (SELECT sid, v0, n_versions, unnest(range(400)) AS rno FROM svc),
        s AS (SELECT *, (1 + hash('rs', sid, rno, {SEED}) % 5)::INT AS size FROM r),
        c AS (SELECT *, sum(size) OVER (PARTITION BY sid ORDER BY rno) AS cum FROM s),
        k AS (SELECT sid, rno::INT AS rno, (v0 + cum - size + 1)::INT AS lo,
                     least(v0 + cum, v0 + n_versions)::INT AS hi
              FROM c WHERE cum - size < n_versions),
        n AS (SELECT *, count(*) OVER (PARTITION BY sid) AS n_rel FROM k)
        SELECT sid, rno, lo, hi,
               ({T0} + (rno + 0.5 + 0.3 * (u('rt', sid, rno) - 0.5)) / n_rel * {REL_SPAN_US})::BIGINT AS t_us,
               u('hf', sid, rno) < 0.015 AS hotfix
        FROM n""",
        """CREATE OR REPLACE TEMP TABLE errs (err_class VARCHAR, message VARCHAR, sql_line INT, sql_column INT,
                                              body VARCHAR)""",
        f"INSERT INTO errs VALUES {errs}",
        # ---- lanes: one (env, service, database); prod tenants, staging, dev, preview PR envs
        f"""CREATE OR REPLACE TEMP TABLE lanes AS
        WITH fixed AS (
            SELECT sid, 'prod' AS env, 'prod' AS ekind, unnest(range(tenants)) AS rank FROM svc
            UNION ALL SELECT sid, 'staging', 'staging', unnest(range(6)) FROM svc
            UNION ALL SELECT sid, 'dev', 'dev', unnest(range(2)) FROM svc
        ), f2 AS (
            -- 12 % of prod tenants are onboarded during the window (one run applies every script); the
            -- first staging and dev databases are rebuilt from scratch as the window opens, so every old
            -- version also has a staging and dev history before prod.
            SELECT f.*, (ekind = 'prod' AND u('ob', sid, rank) < 0.12) OR (ekind <> 'prod' AND rank = 0) AS onboard
            FROM fixed f
        ), f3 AS (
            SELECT sid, env, ekind, rank::BIGINT AS rank, 'tenant_' || lpad((rank + 1)::VARCHAR, 4, '0') AS database,
                onboard,
                CASE WHEN onboard AND ekind = 'prod' THEN {T0} + (u('obt', sid, rank) * {SPAN_US} * 0.97)::BIGINT
                     WHEN onboard THEN {T0} - 3 * {HOUR_US} ELSE {T0} END AS t_start,
                {T_END} AS t_end,
                u('vb', sid, ekind) < 0.4 AS is_verbose,
                CASE ekind WHEN 'prod' THEN 1.0 WHEN 'staging' THEN 0.35 ELSE 0.12 END AS ef,
                CASE ekind WHEN 'prod' THEN exp(0.5 * nz('tf', sid, rank)) ELSE exp(0.2 * nz('tf', sid, rank)) END AS tf,
                0::BIGINT AS prio
            FROM f2
        ), p AS (
            SELECT (hash('ps', i, {SEED}) % {len(SERVICES)})::INT AS sid, 'preview-' || (1000 + i) AS env,
                   'preview' AS ekind, 0::BIGINT AS rank, true AS onboard,
                   {T0} + (u('pt', i, 0) * {SPAN_US} * 0.985)::BIGINT AS t_start,
                   u('vp', i, 0) < 0.4 AS is_verbose, i
            FROM range({round(PREVIEWS_AT_SCALE_1 * scale)}) t(i)
        ), p2 AS (
            SELECT p.sid, p.env, p.ekind, p.rank, s.service AS database, p.onboard, p.t_start,
                   least({T_END}, p.t_start + (1 + 5 * u('pl', p.i, 0)) * {DAY_US})::BIGINT AS t_end,
                   p.is_verbose, 0.05 AS ef, 1.0 AS tf, (1 + hash('pk', p.i, {SEED}) % 1000000007)::BIGINT AS prio
            FROM p JOIN svc s USING (sid)
        ), a AS (SELECT * FROM f3 UNION ALL BY NAME SELECT * FROM p2)
        SELECT row_number() OVER (ORDER BY prio, sid, env, rank)::INT AS lane_id, a.*, s.service,
               CASE WHEN a.ekind = 'preview' THEN a.env ELSE s.ns END AS ns, s.wrapped, s.v0
        FROM a JOIN svc s USING (sid)""",
        # ---- planned runs: one per release per lane, an initial run for new databases, no-op redeploys
        f"""CREATE OR REPLACE TEMP TABLE plan AS
        WITH rr AS (
            SELECT l.lane_id, l.ekind, l.t_end, 'rel' AS rkind, r.rno, r.hi,
                r.t_us + CASE l.ekind
                    WHEN 'dev' THEN 1800000000 + (u('dd', l.lane_id, r.rno) * 3600000000)::BIGINT
                    WHEN 'staging' THEN (CASE WHEN r.hotfix THEN 5 ELSE 4 END) * {HOUR_US} + l.rank * 60000000
                                        + (u('sd', l.lane_id, r.rno) * 600000000)::BIGINT
                    WHEN 'prod' THEN (CASE WHEN r.hotfix THEN 1 ELSE 24 END) * {HOUR_US} + l.rank * 10000000
                                     + (u('pd', l.lane_id, r.rno) * 5000000)::BIGINT
                    ELSE 600000000 + (u('vd', l.lane_id, r.rno) * 7200000000)::BIGINT END AS t0
            FROM lanes l JOIN rel r ON r.sid = l.sid AND r.t_us > l.t_start
        ), rel_runs AS (
            SELECT lane_id, ekind, rkind, rno, hi, t0 FROM rr WHERE t0 <= t_end AND t0 < {T_END}
        ), init AS (
            SELECT l.lane_id, l.ekind, 'init' AS rkind, -1 AS rno, coalesce(r.hi, l.v0) AS hi,
                   l.t_start + 60000000 AS t0
            FROM lanes l ASOF LEFT JOIN rel r ON l.sid = r.sid AND l.t_start >= r.t_us
            WHERE l.onboard
        ), noop AS (
            SELECT lane_id, ekind, 'noop' AS rkind, rno, NULL::INT AS hi,
                   t0 + 6 * {HOUR_US} + (u('nt', lane_id, rno) * {HOUR_US})::BIGINT AS t0
            FROM rel_runs WHERE ekind <> 'preview' AND u('nc', lane_id, rno) < 0.25
        )
        SELECT * FROM rel_runs UNION ALL SELECT * FROM init
        UNION ALL SELECT * FROM noop WHERE t0 < {T_END}""",
        # ---- outcomes, then the version chain of each database (a failed script is re-applied later)
        f"""CREATE OR REPLACE TEMP TABLE runs_a AS
        WITH b AS (
            SELECT p.*, l.sid, l.is_verbose, l.onboard, l.v0, p.rkind || ':' || p.rno AS rkey,
                   u('o', p.lane_id, p.rkind || ':' || p.rno) AS uo
            FROM plan p JOIN lanes l USING (lane_id)
        ), b2 AS (
            SELECT *, CASE
                WHEN sid = {SPIKE_SID} AND ekind = 'prod' AND t0 > {T_END - 5 * DAY_US} AND uo < 0.6 THEN 'error'
                WHEN rkind = 'noop' THEN CASE WHEN uo < 0.004 THEN 'locked' ELSE 'no_change' END
                WHEN uo < 0.010 THEN 'failed'
                WHEN uo < 0.013 AND is_verbose THEN 'interrupted'
                WHEN uo < 0.018 THEN 'locked'
                WHEN uo < 0.020 THEN 'error'
                ELSE 'success' END AS base
            FROM b
        ), c AS (
            SELECT *, lag(base) OVER w AS prev_base,
                   lag(CASE WHEN base IN ('failed', 'interrupted') THEN hi END) OVER w AS prev_fail
            FROM b2 WINDOW w AS (PARTITION BY lane_id ORDER BY t0, rkey)
        ), d AS (
            SELECT *,
                prev_base IN ('failed', 'interrupted') AND u('dy', lane_id, rkey) < 0.45 AS still_dirty,
                prev_base IN ('failed', 'interrupted') AND base = 'success' AND u('ae', lane_id, rkey) < 0.2 AS refail
            FROM c
        ), e AS (
            SELECT *, CASE WHEN coalesce(still_dirty, false) THEN 'dirty'
                           WHEN coalesce(refail, false) THEN 'failed' ELSE base END AS outcome1
            FROM d
        ), f AS (
            SELECT *, CASE WHEN outcome1 = 'success' THEN hi WHEN outcome1 IN ('failed', 'interrupted') THEN hi - 1 END AS ae
            FROM e
        ), g AS (
            SELECT *, coalesce(max(ae) OVER (PARTITION BY lane_id ORDER BY t0, rkey
                                             ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING),
                               CASE WHEN onboard THEN 0 ELSE v0 END) AS prev_end
            FROM f
        ), h AS (
            SELECT *, CASE WHEN outcome1 IN ('success', 'failed', 'interrupted') AND hi <= prev_end THEN 'no_change'
                           ELSE outcome1 END AS outcome
            FROM g
        )
        SELECT lane_id, ekind, rkind, rno, rkey, t0, sid, is_verbose, outcome,
            'up' AS cmd, 'up' AS direction,
            CASE WHEN outcome IN ('success', 'failed', 'interrupted') THEN greatest(ae - prev_end, 0) ELSE 0 END AS k,
            prev_end + 1 AS s,
            CASE WHEN outcome IN ('success', 'failed', 'interrupted') THEN CASE WHEN outcome = 'success' THEN hi ELSE hi - 1 END
                 END AS top,
            CASE WHEN outcome IN ('failed', 'interrupted') THEN hi END AS fail_vidx,
            CASE WHEN outcome = 'dirty' THEN prev_fail END AS dirty_vidx,
            prev_end AS from_vidx,
            CASE WHEN outcome IN ('success', 'failed', 'interrupted') THEN hi
                 WHEN outcome = 'dirty' THEN prev_fail ELSE prev_end END AS to_vidx,
            CASE WHEN outcome = 'failed' THEN CASE WHEN coalesce(refail, false) THEN 'already_exists'
                     ELSE {_lit(FAIL_CLASSES)}[(1 + hash('ec', lane_id, rkey) % {len(FAIL_CLASSES)})::BIGINT] END
                 WHEN outcome = 'error' THEN CASE WHEN sid = {SPIKE_SID} AND t0 > {T_END - 5 * DAY_US}
                     THEN 'auth_failed' ELSE 'connection_refused' END
                 WHEN outcome = 'dirty' THEN 'dirty' WHEN outcome = 'locked' THEN 'lock_timeout'
                 WHEN outcome = 'interrupted' THEN 'interrupted' END AS err_class
        FROM h""",
        # ---- downs: prod rollbacks (most re-applied, two never), down tests in staging/dev, then re-applied
        f"""CREATE OR REPLACE TEMP TABLE specials AS
        WITH c AS (
            SELECT r.*, l.rank, lead(r.t0) OVER (PARTITION BY r.lane_id ORDER BY r.t0, r.rkey) IS NULL AS last_in_lane
            FROM runs_a r JOIN lanes l USING (lane_id)
        ), ok AS (SELECT * FROM c WHERE rkind = 'rel' AND outcome = 'success' AND k >= 1),
        prod_rb AS (SELECT * FROM ok WHERE ekind = 'prod' AND NOT last_in_lane ORDER BY hash('rb', lane_id, rkey) LIMIT 6),
        prod_open AS (SELECT * FROM ok WHERE ekind = 'prod' AND last_in_lane ORDER BY hash('ro', lane_id, rkey) LIMIT 2),
        tests AS (SELECT * FROM ok WHERE ekind IN ('staging', 'dev') AND rank = 0 AND NOT last_in_lane
                  AND u('dt', lane_id, rkey) < CASE ekind WHEN 'staging' THEN 0.25 ELSE 0.10 END),
        downs AS (
            SELECT *, least(k, 2) AS kd, 2400000000::BIGINT AS d_at, 3 * {HOUR_US} AS u_at, true AS reup FROM prod_rb
            UNION ALL SELECT *, least(k, 2), 2400000000::BIGINT, NULL, false FROM prod_open
            UNION ALL SELECT *, k, {HOUR_US}, 2 * {HOUR_US}, true FROM tests
        )
        SELECT lane_id, ekind, 'down' AS rkind, rno, 'down:' || rno AS rkey, t0 + d_at AS t0, sid, is_verbose,
               'success' AS outcome, 'down' AS cmd, 'down' AS direction, kd AS k, top - kd + 1 AS s, top,
               NULL::INT AS fail_vidx, NULL::INT AS dirty_vidx, top AS from_vidx, top - kd AS to_vidx,
               NULL AS err_class
        FROM downs
        UNION ALL
        SELECT lane_id, ekind, 'reup', rno, 'reup:' || rno, t0 + u_at, sid, is_verbose, 'success', 'up', 'up', kd,
               top - kd + 1, top, NULL, NULL, top - kd, top, NULL
        FROM downs WHERE reup""",
        _rp_sql("SELECT * FROM runs_a UNION ALL BY NAME SELECT * FROM specials", "rp"),
    ]


def _rp_sql(source: str, target: str) -> str:
    """The run plan with ids and per-run event counts: k scripts (x3 events when verbose) + the tail."""
    return f"""CREATE OR REPLACE TEMP TABLE {target} AS
        WITH x AS ({source})
        SELECT x.*, l.wrapped, l.ns, l.service,
            CASE WHEN l.wrapped
                 THEN regexp_replace(md5(x.lane_id || '/' || x.rkey), '^(.{{8}})(.{{4}})(.{{4}})(.{{4}})(.{{12}})$',
                                     '\\1-\\2-\\3-\\4-\\5')
                 ELSE 'r' || left(md5(x.lane_id || '/' || x.rkey), 15) END AS run_id,
            CASE WHEN x.cmd = 'version' THEN ['version']
                 WHEN x.outcome = 'success' THEN CASE WHEN x.is_verbose THEN ['finished_total', 'closing'] ELSE []::VARCHAR[] END
                 WHEN x.outcome = 'no_change' THEN CASE WHEN x.is_verbose THEN ['no_change', 'finished_total', 'closing']
                                                        ELSE ['no_change'] END
                 WHEN x.outcome = 'failed' THEN CASE WHEN x.is_verbose THEN ['buffering', 'executing', 'migration_failed']
                                                     ELSE ['migration_failed'] END
                 WHEN x.outcome = 'interrupted' THEN ['buffering', 'executing']
                 WHEN x.outcome = 'dirty' THEN ['dirty']
                 WHEN x.outcome = 'locked' THEN ['lock_timeout']
                 ELSE ['connection_failed'] END AS tail,
            (x.k * CASE WHEN x.is_verbose THEN 3 ELSE 1 END + len(tail))::BIGINT AS n_events
        FROM x JOIN lanes l USING (lane_id)"""


def _events_sql() -> list[str]:
    """Statements writing migrate_events and runs from the cut run plan `rpk`."""
    return [
        """CREATE OR REPLACE TEMP TABLE ev AS
        WITH x AS (
            SELECT rp.run_id, rp.lane_id, rp.sid, rp.t0, rp.k, rp.s, rp.top, rp.direction, rp.fail_vidx,
                   rp.dirty_vidx, rp.to_vidx, rp.err_class, rp.tail, rp.is_verbose,
                   CASE WHEN rp.is_verbose THEN 3 ELSE 1 END AS per, unnest(range(rp.n_events)) AS pos
            FROM rpk rp
        ), y AS (
            SELECT *, pos < k * per AS body, pos // per AS j, pos % per AS sub FROM x
        ), z AS (
            SELECT *, CASE WHEN body THEN CASE WHEN per = 1 OR sub = 2 THEN 'applied' WHEN sub = 0 THEN 'buffering'
                                              ELSE 'executing' END
                           ELSE tail[pos - k * per + 1] END AS kind
            FROM y
        )
        SELECT run_id, lane_id, sid, t0, pos, kind, is_verbose, err_class,
            CASE WHEN body THEN CASE WHEN direction = 'down' THEN top - j ELSE s + j END
                 WHEN kind IN ('buffering', 'executing') THEN fail_vidx
                 WHEN kind = 'dirty' THEN dirty_vidx
                 WHEN kind = 'version' THEN to_vidx END AS vidx,
            CASE WHEN body OR kind IN ('buffering', 'executing') THEN direction END AS edir
        FROM z""",
        f"""CREATE OR REPLACE TEMP TABLE ev2 AS
        WITH a AS (
            SELECT e.*, sc.version, sc.name AS sname, sc.down_empty, l.ekind, l.rank, l.ef, l.tf,
                CASE WHEN e.kind = 'applied' THEN
                    CASE WHEN e.edir = 'down' AND sc.down_empty THEN 0.0 ELSE round(
                        sc.typical_ms * l.ef * l.tf * CASE WHEN e.edir = 'down' THEN 0.3 ELSE 1.0 END
                        * exp(0.35 * nz('n', e.run_id, e.pos))
                        * CASE WHEN u('sp', e.run_id, e.pos) < 0.0003 THEN 8 + 40 * u('sm', e.run_id, e.pos) ELSE 1 END
                        * CASE WHEN e.sid = {SHIFT_SID} AND e.vidx = sv.v0 + sv.n_versions * 3 // 5
                                    AND l.ekind = 'prod' AND l.rank >= 40 AND e.edir = 'up' THEN 25 ELSE 1 END, 3) END
                END AS own_ms
            FROM ev e JOIN lanes l USING (lane_id) JOIN svc sv ON sv.sid = e.sid
            LEFT JOIN scripts sc ON sc.sid = e.sid AND sc.vidx = e.vidx
        ), b AS (
            SELECT *, CASE WHEN kind = 'applied' THEN 0.2 + 2.5 * u('rd', run_id, pos) END AS read_ms,
                CASE WHEN kind = 'applied' THEN (own_ms * 1000)::BIGINT + 300 + (hash('st', run_id, pos) % 1700)::BIGINT
                     WHEN kind = 'migration_failed' THEN 5000 + (u('mf', run_id, pos) * 2000000)::BIGINT
                     WHEN kind IN ('lock_timeout') THEN 15000000
                     WHEN kind IN ('connection_failed', 'dirty', 'no_change', 'version') THEN 20000000
                         + (hash('cn', run_id, pos) % 70000000)::BIGINT
                     ELSE 50 + (hash('st', run_id, pos) % 450)::BIGINT END AS step_us
            FROM a
        )
        SELECT *, (t0 + sum(step_us) OVER (PARTITION BY run_id ORDER BY pos ROWS UNBOUNDED PRECEDING))::BIGINT AS ts_us
        FROM b""",
        """INSERT INTO migrate_events BY NAME
        SELECT md5(e.run_id || ':' || e.pos) AS event_id, make_timestamp(e.ts_us) AS ts, e.run_id,
            rp.stream_key, l.env, l.service, l.database, e.pos + 1 AS seq, e.kind, e.version,
            e.edir AS direction,
            CASE WHEN e.edir IS NOT NULL THEN CASE WHEN e.edir = 'down' AND e.down_empty THEN '<empty>' ELSE e.sname END
            END AS name,
            CASE WHEN e.kind = 'applied' THEN round(e.own_ms + e.read_ms, 3)
                 WHEN e.kind = 'finished_total' THEN (e.ts_us - e.t0) / 1000.0 END AS duration_ms,
            CASE WHEN e.kind = 'applied' AND e.is_verbose THEN round(e.read_ms, 3) END AS read_ms,
            CASE WHEN e.kind = 'applied' AND e.is_verbose THEN e.own_ms END AS ran_ms,
            e.own_ms,
            CASE e.kind WHEN 'migration_failed' THEN e.err_class WHEN 'connection_failed' THEN e.err_class
                        WHEN 'dirty' THEN 'dirty' WHEN 'lock_timeout' THEN 'lock_timeout' END AS error_class,
            CASE e.kind
                WHEN 'migration_failed' THEN 'migration failed: ' || x.message
                    || coalesce(' (column ' || x.sql_column || ')', '') || ' in line ' || x.sql_line || ': ' || x.body
                    || chr(10) || ' (details: pq: ' || x.message || ')'
                WHEN 'dirty' THEN 'Dirty database version ' || e.version || '. Fix and force version.'
                WHEN 'lock_timeout' THEN 'can''t acquire lock'
                WHEN 'connection_failed' THEN CASE WHEN e.err_class = 'auth_failed'
                    THEN 'failed to open database: pq: password authentication failed for user "' || l.service || '"'
                    ELSE 'failed to open database: dial tcp 10.0.3.7:5432: connect: connection refused' END
            END AS error_text,
            CASE WHEN e.kind = 'migration_failed' THEN x.message END AS error_message,
            CASE WHEN e.kind = 'migration_failed' THEN x.sql_line END AS sql_line,
            CASE WHEN e.kind = 'migration_failed' THEN x.sql_column END AS sql_column,
            CASE WHEN e.kind = 'migration_failed' THEN 'pq: ' || x.message END AS error_detail,
            e.is_verbose AS verbose_mode,
            md5(e.run_id || ':' || e.pos) AS first_line_id,
            CASE WHEN e.kind = 'migration_failed' THEN 2 + length(x.body) - length(replace(x.body, chr(10), ''))
                 ELSE 1 END AS line_count
        FROM ev2 e JOIN rpk rp USING (run_id) JOIN lanes l ON l.lane_id = e.lane_id
        LEFT JOIN errs x ON x.err_class = e.err_class AND e.kind = 'migration_failed'""",
        """INSERT INTO runs BY NAME
        WITH t AS (SELECT run_id, min(ts) AS started_at, max(ts) AS ended_at,
                          arg_min(error_text, seq) FILTER (WHERE error_text IS NOT NULL) AS error_text
                   FROM migrate_events GROUP BY run_id)
        SELECT rp.run_id, rp.stream_key, l.env, l.service, l.database, t.started_at, t.ended_at,
            CASE WHEN l.wrapped THEN rp.cmd
                 WHEN rp.cmd = 'version' THEN 'version'
                 WHEN rp.k > 0 OR (rp.is_verbose AND rp.outcome IN ('failed', 'interrupted')) THEN rp.direction END AS command,
            l.wrapped AS command_known,
            rp.k::INT AS applied,
            vf.version AS from_version,
            vt.version AS to_version,
            rp.outcome,
            rp.err_class AS error_class,
            t.error_text,
            CASE WHEN l.wrapped THEN CASE WHEN rp.outcome IN ('success', 'no_change') THEN 0
                                          WHEN rp.outcome = 'interrupted' THEN 143 ELSE 1 END END AS exit_code,
            rp.outcome IN ('failed', 'interrupted') AS left_dirty,
            CASE WHEN rp.outcome IN ('failed', 'interrupted') THEN vfail.version
                 WHEN rp.outcome = 'dirty' THEN vd.version END AS dirty_version,
            rp.is_verbose AS verbose_mode,
            rp.n_events::INT AS events,
            vt.version AS version_seen
        FROM rpk rp JOIN lanes l USING (lane_id) JOIN t USING (run_id)
        LEFT JOIN scripts vf ON vf.sid = rp.sid AND vf.vidx = rp.from_vidx
        LEFT JOIN scripts vt ON vt.sid = rp.sid AND vt.vidx = rp.to_vidx
        LEFT JOIN scripts vfail ON vfail.sid = rp.sid AND vfail.vidx = rp.fail_vidx
        LEFT JOIN scripts vd ON vd.sid = rp.sid AND vd.vidx = rp.dirty_vidx""",
    ]


def _cut_sql(n_events: int) -> list[str]:
    """Keep whole lanes (every fixed lane first, then preview envs in hash order) up to N events, then pad the
    rest with one-event `migrate version` runs on kept prod/staging/dev databases: exactly N events."""
    return [
        f"""CREATE OR REPLACE TEMP TABLE kept AS
        WITH t AS (SELECT lane_id, sum(n_events) AS e FROM rp GROUP BY lane_id),
        c AS (SELECT lane_id, e, sum(e) OVER (ORDER BY lane_id ROWS UNBOUNDED PRECEDING) AS cum FROM t)
        SELECT lane_id FROM c WHERE cum <= {n_events}""",
        f"""CREATE OR REPLACE TEMP TABLE pad AS
        WITH fixed AS (
            SELECT l.*, row_number() OVER (ORDER BY hash('pl', l.lane_id, {SEED})) - 1 AS i
            FROM lanes l JOIN kept USING (lane_id) WHERE l.ekind <> 'preview'
        ), n AS (SELECT count(*) AS c FROM fixed),
        want AS (SELECT {n_events} - coalesce((SELECT sum(n_events) FROM rp JOIN kept USING (lane_id)), 0) AS r),
        idx AS (SELECT unnest(range(r::BIGINT)) AS i FROM want),
        p AS (
            SELECT t.i AS pi, f.lane_id, f.ekind, f.sid, f.is_verbose,
                   f.t_start + (u('pv', t.i, 0) * (f.t_end - f.t_start - 2 * {HOUR_US}))::BIGINT AS t0
            FROM idx t, n JOIN fixed f ON f.i = t.i % n.c
        )
        SELECT p.lane_id, p.ekind, 'version' AS rkind, p.pi AS rno, 'version:' || p.pi AS rkey, p.t0, p.sid,
               p.is_verbose, 'success' AS outcome, 'version' AS cmd, NULL AS direction, 0 AS k, NULL::INT AS s,
               NULL::INT AS top, NULL::INT AS fail_vidx, NULL::INT AS dirty_vidx,
               coalesce(r.hi, sv.v0) AS from_vidx, coalesce(r.hi, sv.v0) AS to_vidx, NULL AS err_class
        FROM p JOIN svc sv USING (sid) ASOF LEFT JOIN rel r ON p.sid = r.sid AND p.t0 - {DAY_US} >= r.t_us""",
        _rp_sql("SELECT * EXCLUDE (wrapped, ns, service, run_id, tail, n_events) "
                "FROM rp JOIN kept USING (lane_id) UNION ALL BY NAME SELECT * FROM pad", "rpk0"),
        """CREATE OR REPLACE TEMP TABLE rpk AS
        SELECT *, CASE WHEN wrapped THEN 'run:' || run_id
                       ELSE 'k8s:' || ns || '/' || service || '-migrate-' || substr(md5(run_id), 1, 5) || '/migrate'
                  END AS stream_key
        FROM rpk0""",
    ]


def build(path: Path, n_events: int) -> dict:
    """Generate the warehouse of exactly `n_events` events into `path` (atomically); its statistics."""
    from pipeline.core.config import WarehouseConfig
    from pipeline.warehouse import connect

    tmp = path.with_suffix(".tmp.duckdb")
    for p in (tmp, Path(str(tmp) + ".wal")):
        p.unlink(missing_ok=True)
    ram_gb = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    con = connect(tmp, settings=WarehouseConfig(memory_limit=f"{max(1, int(ram_gb * 0.5))}GB"))
    con.execute("SET preserve_insertion_order = false")
    con.execute(MACROS)
    t = time.perf_counter()

    def plan(scale: float) -> tuple[int, int]:
        for stmt in _fleet_sql(scale):
            con.execute(stmt)
        total, fixed = con.execute(
            "SELECT sum(n_events), sum(n_events) FILTER (WHERE ekind IN ('staging', 'dev')) FROM rp"
        ).fetchall()[0]
        return int(total), int(fixed or 0)

    # Prod tenants and preview envs grow with N; staging and dev stay as they are. Aim 4 % over, then cut.
    e1, fixed = plan(1.0)
    scale = max(0.002, (n_events - fixed) / max(1, e1 - fixed) * 1.04)
    e2, _ = plan(scale)
    for stmt in _cut_sql(n_events):
        con.execute(stmt)
    for stmt in _events_sql():
        con.execute(stmt)
    got = con.execute("SELECT count(*) FROM migrate_events").fetchall()[0][0]
    stats = dict(zip(
        ["runs", "lanes", "databases", "envs", "previews", "tenants_per_service"],
        con.execute("""SELECT (SELECT count(*) FROM runs), (SELECT count(DISTINCT lane_id) FROM rpk),
                              (SELECT count(DISTINCT (env, service, database)) FROM runs),
                              (SELECT count(DISTINCT env) FROM runs),
                              (SELECT count(DISTINCT env) FROM runs WHERE env LIKE 'preview-%'),
                              (SELECT round(count(DISTINCT (service, database)) / count(DISTINCT service))
                               FROM runs WHERE env = 'prod')""").fetchall()[0]))
    stats.update(events=got, scale=round(scale, 4), generate_s=round(time.perf_counter() - t, 1),
                 planned_before_cut=e2)
    for name in ("ev", "ev2", "rp", "rpk", "rpk0", "runs_a", "plan", "specials", "pad", "kept"):
        con.execute(f"DROP TABLE IF EXISTS {name}")
    con.execute("CHECKPOINT")
    con.close()
    if got != n_events:
        print(f"  ! generated {got:,} events, not {n_events:,}")
    tmp.replace(path)
    return stats


def warehouse(n_events: int, rebuild: bool) -> tuple[Path, dict]:
    """The cached warehouse of `n_events` events, generated if missing, stale or `rebuild`."""
    BENCH.mkdir(exist_ok=True)
    path = BENCH / f"analyze-{n_events}.duckdb"
    meta_path = BENCH / f"analyze-{n_events}.meta.json"
    want = {"events": n_events, "seed": SEED, "generator": GENERATOR_VERSION}
    if not rebuild and path.exists() and meta_path.exists():
        meta = json.loads(meta_path.read_text())
        if {k: meta.get(k) for k in want} == want:
            print(f"warehouse: reusing {path.relative_to(ROOT)} ({n_events:,} events, "
                  f"{path.stat().st_size / 1e6:,.0f} MB)")
            return path, meta
    print(f"warehouse: generating {path.relative_to(ROOT)} ({n_events:,} events) ...", flush=True)
    Path(str(path) + ".wal").unlink(missing_ok=True)
    stats = build(path, n_events)
    meta = {**want, **stats}
    meta_path.write_text(json.dumps(meta))
    print(f"warehouse: wrote {path.relative_to(ROOT)} ({path.stat().st_size / 1e6:,.0f} MB) in "
          f"{stats['generate_s']:.1f} s: {stats['runs']:,} runs on {stats['databases']:,} databases")
    return path, meta


# --------------------------------------------------------------------------------------------------------
# The timed analysis (in a child process)
# --------------------------------------------------------------------------------------------------------


def _status_kb(field: str) -> int:
    with open("/proc/self/status") as f:
        for ln in f:
            if ln.startswith(field + ":"):
                return int(ln.split()[1])
    return -1


def _cpu() -> float:
    import resource

    ru = resource.getrusage(resource.RUSAGE_SELF)
    return ru.ru_utime + ru.ru_stime


# The floor the issue measures analyze against: DuckDB alone computing a rolling median and lower quartile of
# `own_ms` over the previous 30 applications per (env, service, version, direction), on the same warehouse,
# with the same connection settings (warehouse.memory_limit), folded to one row so no result is transferred.
FLOOR_WINDOW = 30
FLOOR_SQL = f"""
SELECT count(*), sum(q[1]), sum(q[2]) FROM (
    SELECT quantile_cont(own_ms, [0.25, 0.5]) OVER (
               PARTITION BY env, service, version, direction ORDER BY ts
               ROWS BETWEEN {FLOOR_WINDOW} PRECEDING AND 1 PRECEDING) AS q
    FROM migrate_events WHERE kind = 'applied' AND own_ms IS NOT NULL AND ts <= $as_of)
"""


def floor_main(db: str) -> None:
    from pipeline.warehouse import connect

    con = connect(db, read_only=True)
    as_of = con.execute("SELECT max(ts) FROM migrate_events").fetchall()[0][0]
    rss0 = _status_kb("VmRSS")
    c = _cpu()
    t = time.perf_counter()
    rows = con.execute(FLOOR_SQL, {"as_of": as_of}).fetchall()[0][0]
    wall = time.perf_counter() - t
    out = {"wall": wall, "cpu": _cpu() - c, "hwm_kb": _status_kb("VmHWM"), "rss0_kb": rss0, "rows": rows}
    con.close()
    print("CHILD-RESULT " + json.dumps(out), flush=True)


def child_main(db: str, profile: bool) -> None:
    import resource

    import polars as pl

    import pipeline.analyze as A
    import pipeline.analyze.baselines as B
    import pipeline.analyze.context as C
    import pipeline.analyze.findings as F
    from pipeline.core.config import Config
    from pipeline.warehouse import connect

    con = connect(db)
    as_of = con.execute("SELECT max(ts) FROM migrate_events").fetchall()[0][0]
    data = dict(zip(["runs", "events"], con.execute(
        "SELECT (SELECT count(*) FROM runs), (SELECT count(*) FROM migrate_events)").fetchall()[0]))
    # label -> [calls, seconds, rows out, VmHWM kB at return, cpu s, depth]; in the order of first call
    steps: dict[str, list] = {}
    depth = [0]

    def height(res: object) -> int | None:
        if isinstance(res, pl.DataFrame):
            return res.height
        if isinstance(res, list) and res and all(isinstance(x, pl.DataFrame) for x in res):
            return sum(x.height for x in res)
        return None

    def wrap(owner: object, name: str, label) -> None:
        orig = getattr(owner, name)

        def timed(*args, **kwargs):
            key = label(args) if callable(label) else label
            st = steps.setdefault(key, [0, 0.0, None, 0, 0.0, depth[0]])
            c = _cpu()
            t = time.perf_counter()
            depth[0] += 1
            try:
                res = orig(*args, **kwargs)
            finally:
                depth[0] -= 1
            st[0] += 1
            st[1] += time.perf_counter() - t
            rows = height(res)
            if rows is not None:
                st[2] = (st[2] or 0) + rows
            st[3] = _status_kb("VmHWM")  # peak RSS of the process when the step returned
            st[4] += _cpu() - c           # user + sys CPU of the whole process (all threads) during the step
            return res

        setattr(owner, name, timed)

    if not profile:
        wrap(B, "score_applications", "baselines.score_applications")
        wrap(F, "detect", "findings.detect")
        for name in ("rollback_readiness", "dirty_findings", "run_findings", "outlier_findings", "spike_findings",
                     "rollback_findings", "promotion_findings", "missing_down_findings", "idempotency_findings"):
            wrap(F, name, f"findings.{name}")
        wrap(B, "write_script_baselines", "write script_baselines")
        wrap(A, "_replace", lambda a: f"write {a[1]}")
        # every SQL step (pipeline/sql/analyze/<name>.sql), under the stage that ran it
        wrap(C.Analysis, "run", lambda a: f"sql {a[1]}")
        wrap(C.Analysis, "frame", lambda a: f"sql {a[1]} -> polars")

    prof = None
    if profile:
        import cProfile

        prof = cProfile.Profile()
    loadavg = " ".join(Path("/proc/loadavg").read_text().split()[:3])
    rss0 = _status_kb("VmRSS")
    ru0 = resource.getrusage(resource.RUSAGE_SELF)
    t = time.perf_counter()
    if prof:
        prof.enable()
    result = A.analyze(con, config=Config(), as_of=as_of)
    if prof:
        prof.disable()
    wall = time.perf_counter() - t
    ru1 = resource.getrusage(resource.RUSAGE_SELF)
    cpu = {"user": ru1.ru_utime - ru0.ru_utime, "sys": ru1.ru_stime - ru0.ru_stime,
           "minflt": ru1.ru_minflt - ru0.ru_minflt}
    hwm = _status_kb("VmHWM")
    # The weekly review of the last complete week, rendered from the analysed warehouse.
    from pipeline.report import report as render_report

    out_dir = Path(db).parent / f"report-{os.getpid()}"
    t_report = time.perf_counter()
    review = render_report(con, config=Config(), as_of=as_of, out=out_dir)
    report_wall = time.perf_counter() - t_report
    report_kib = review.size_bytes / 1024
    shutil.rmtree(out_dir, ignore_errors=True)
    counts = con.execute("SELECT kind, status, count(*) FROM findings GROUP BY ALL ORDER BY ALL").fetchall()
    readiness = con.execute(
        "SELECT count(*), count(*) FILTER (WHERE ready) FROM rollback_readiness").fetchall()[0]
    con.close()
    out = {"wall": wall, "hwm_kb": hwm, "rss0_kb": rss0, "as_of": str(as_of), "summary": result.summary(),
           "baselines": result.baselines, "learning": result.learning, "findings": result.findings,
           "counts": counts, "readiness": list(readiness), "steps": steps, "cpu": cpu, "loadavg": loadavg,
           "report_wall": report_wall, "report_kib": report_kib,
           **data}
    if prof:
        import io
        import pstats

        for key in ("cumulative", "tottime"):
            buf = io.StringIO()
            pstats.Stats(prof, stream=buf).sort_stats(key).print_stats(30)
            out[f"profile_{key}"] = buf.getvalue()
    print("CHILD-RESULT " + json.dumps(out, default=str), flush=True)


def in_child(db: Path, mode: str) -> dict | None:
    """Run `mode` (analyze | profile | floor) on `db` in a fresh child process; its result, or None."""
    cmd = [sys.executable, str(Path(__file__).resolve()), f"--{'child' if mode != 'floor' else 'floor-child'}", str(db)]
    cmd += ["--profile"] if mode == "profile" else []
    proc = subprocess.run(cmd, check=False, capture_output=True, text=True, cwd=ROOT)
    for ln in proc.stdout.splitlines():
        if ln.startswith("CHILD-RESULT "):
            return json.loads(ln[len("CHILD-RESULT "):])
    print(f"  ! {mode} child failed (exit {proc.returncode}):\n{proc.stderr[-3000:]}")
    return None


# --------------------------------------------------------------------------------------------------------
# Report
# --------------------------------------------------------------------------------------------------------


def pipeline_revision() -> str:
    """The commit the benchmarked pipeline/ is at, and whether pipeline/ has uncommitted changes."""
    try:
        def git(*args: str) -> str:
            return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, check=True).stdout.strip()

        head = git("rev-parse", "--short", "HEAD")
        dirty = git("status", "--porcelain", "--untracked-files=no", "--", "pipeline")
    except (OSError, subprocess.CalledProcessError):
        return "unknown (no git)"
    return head + (" + uncommitted changes in pipeline/" if dirty else "")


def report(n: int, meta: dict, res: dict, floors: list[dict], prof: dict | None) -> None:
    wall = res["wall"]
    steps = res["steps"]
    top = sum(v[1] for v in steps.values() if v[5] == 0)
    top_cpu = sum(v[4] for v in steps.values() if v[5] == 0)
    cpu = res["cpu"]
    cpu_total = cpu["user"] + cpu["sys"]
    rows = []
    for label, (calls, secs, out, hwm, cpu_s, depth) in steps.items():
        out_s = f"{out:,}" if out is not None else "–"
        rows.append(["  " * depth + label, str(calls), f"{secs:.2f}", f"{100 * secs / wall:.1f}", f"{cpu_s:.2f}",
                     out_s, f"{hwm / 1024:,.0f}"])
    rows.append(["other (scratch tables, BEGIN/COMMIT, summary)", "–", f"{wall - top:.2f}",
                 f"{100 * (wall - top) / wall:.1f}", f"{cpu_total - top_cpu:.2f}", "–", "–"])
    rows.append(["analyze() total", "1", f"{wall:.2f}", "100.0", f"{cpu_total:.2f}",
                 f"{res['findings']:,} findings", f"{res['hwm_kb'] / 1024:,.0f}"])

    print()
    print(f"=== analyze benchmark: {res['events']:,} migrate_events, {res['runs']:,} runs "
          f"({res['events'] / max(res['runs'], 1):.1f} events/run), "
          f"{meta.get('databases', 0):,} databases in "
          f"{meta.get('envs', 0):,} envs ({meta.get('previews', 0):,} preview-<n>), "
          f"~{meta.get('tenants_per_service', 0):,.0f} prod tenants/service; .bench/analyze-{n}.duckdb ===")
    print(machine())
    print(f"pipeline at {res.get('revision', '?')}; load average before analyze (other work on the machine "
          f"inflates wall times): {res['loadavg']}")
    print()
    print(table(rows, ["step", "calls", "wall s", "% of analyze", "cpu s", "rows out", "peak RSS MB"]))
    print()
    print("cpu s = user + sys CPU of the process (all threads) during the step: steadier than wall time when")
    print("other work shares the machine. peak RSS MB = the process's VmHWM when the step returned. Nested rows")
    print("are inside the row above them; `sql NAME` is pipeline/sql/analyze/NAME.sql (calls: how often it ran).")
    print(f"analyze: {wall:.2f} s wall ({res['events'] / wall:,.0f} events/s), as_of {res['as_of']}; "
          f"peak RSS (VmHWM) {res['hwm_kb'] / 1024:,.0f} MB (RSS before analyze "
          f"{res['rss0_kb'] / 1024:,.0f} MB); CPU {cpu['user']:.1f} s user + {cpu['sys']:.1f} s sys "
          f"({cpu_total / wall:.2f} cores busy), {cpu['minflt']:,} minor page faults")
    if floors:
        floor_wall = sum(f["wall"] for f in floors) / len(floors)
        floor_cpu = sum(f["cpu"] for f in floors) / len(floors)
        print(f"floor: DuckDB alone, rolling median + lower quartile of own_ms over the previous {FLOOR_WINDOW} "
              f"applications per (env, service, version, direction), {floors[0]['rows']:,} applications: "
              + ", ".join(f"{f['wall']:.2f} s wall / {f['cpu']:.2f} s cpu / {f['hwm_kb'] / 1024:,.0f} MB peak"
                          for f in floors)
              + " (run before and after analyze, each in its own child)")
        ratio = wall / floor_wall
        print(f"analyze / floor: {ratio:.1f}x wall, {cpu_total / floor_cpu:.1f}x cpu "
              f"(floor {floor_wall:.2f} s wall, {floor_cpu:.2f} s cpu: mean of its runs)")
        print(f"issue #14 targets (reported, not asserted): time / floor <= 5x: {'met' if ratio <= 5 else 'NOT met'} "
              f"({ratio:.1f}x); peak RSS <= 1 GB: {'met' if res['hwm_kb'] <= 1024 * 1024 else 'NOT met'} "
              f"({res['hwm_kb'] / 1024:,.0f} MB)")
    if res["events"] >= 10_000_000:
        verdict = "met" if wall <= 20 else "NOT met"
    else:
        verdict = "n/a (fewer than 10 M events)"
    print(f"earlier target, analyze <= 20 s for >= 10 M events on this machine: {verdict} "
          "(reported, not asserted)")
    print(f"result: {res['summary']}")
    if "report_wall" in res:
        print(f"report: the weekly review of the last complete week rendered in {res['report_wall']:.2f} s "
              f"({res['report_kib']:.0f} KiB)")
    by_kind: dict[str, dict[str, int]] = {}
    for kind, status, c in res["counts"]:
        by_kind.setdefault(kind, {})[status] = c
    print("findings by kind (total / open): " + ", ".join(
        f"{k} {sum(v.values()):,}/{v.get('open', 0):,}" for k, v in sorted(by_kind.items())))
    print(f"script_baselines {res['baselines']:,} ({res['learning']:,} learning); rollback_readiness "
          f"{res['readiness'][0]:,} versions ({res['readiness'][1]:,} ready)")
    if prof:
        print()
        print(f"cProfile of analyze() in a second child ({prof['wall']:.2f} s under the profiler), "
              "top 30 by cumulative time:")
        print(prof["profile_cumulative"])
        print("top 30 by own time (tottime):")
        print(prof["profile_tottime"])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--events", type=int, default=10_000_000,
                    help="rows of migrate_events (default 10,000,000)")
    ap.add_argument("--profile", action="store_true",
                    help="also run analyze under cProfile and print the top")
    ap.add_argument("--rebuild", action="store_true", help="regenerate the cached warehouse")
    ap.add_argument("--child", metavar="DB", help=argparse.SUPPRESS)
    ap.add_argument("--floor-child", metavar="DB", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        child_main(args.child, args.profile)
        return
    if args.floor_child:
        floor_main(args.floor_child)
        return
    path, meta = warehouse(args.events, args.rebuild)
    revision = pipeline_revision()
    floors = []
    print("timing the floor, analyze, and the floor again, each in a child process ...", flush=True)
    floor = in_child(path, "floor")
    if floor:
        floors.append(floor)
        print(f"  floor {floor['wall']:.2f} s", flush=True)
    res = in_child(path, "analyze")
    if res is None:
        return
    res["revision"] = revision
    print(f"  analyze {res['wall']:.2f} s", flush=True)
    floor = in_child(path, "floor")
    if floor:
        floors.append(floor)
        print(f"  floor {floor['wall']:.2f} s", flush=True)
    prof = None
    if args.profile:
        print("profiling analyze in a child process ...", flush=True)
        prof = in_child(path, "profile")
    report(args.events, meta, res, floors, prof)


if __name__ == "__main__":
    main()
