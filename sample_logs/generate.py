#!/usr/bin/env python3
"""Deterministic generator for the migrate-lens sample fleet (sample_logs/).

Run from the repository root with the project venv (the zstd file needs `zstandard`):

    .venv/bin/python sample_logs/generate.py

Everything under sample_logs/ except generate.py and README.md is deleted and rewritten.
Seeded with random.Random(46); two runs give byte-identical files (and identical mtimes:
every file's mtime is set to the time of its last record).  stdlib only, plus `zstandard`.

The fleet: three ISO weeks, Monday 2026-10-26 00:00Z .. Sunday 2026-11-15 23:59Z, four services
(orders, billing, identity, catalog) in dev, staging and prod, shipped through every envelope of
CONTRACT.md section 2.  The line shapes follow the real golang-migrate v4.17.1 captures in
tests/fixtures/real-migrate-logs/captures/.  The planted incidents are listed in README.md; the
script prints the exact files and times when it runs.
"""
from __future__ import annotations

import gzip
import io
import json
import math
import os
import shutil
import sys
from collections import defaultdict
from datetime import datetime, timedelta, timezone
from pathlib import Path
import random

HERE = Path(__file__).resolve().parent
KEEP = {"generate.py", "README.md"}
rng = random.Random(46)

UTC = timezone.utc
NS = 1_000_000_000
MS = 1_000_000
US = 1_000

FLEET_START = "2026-10-26"
FLEET_END = "2026-11-15"

# --------------------------------------------------------------------------------------------
# time and duration formatting
# --------------------------------------------------------------------------------------------


def T(s: str) -> int:
    """'2026-10-26 09:41' or '2026-10-26 09:41:07' (UTC) -> epoch ns."""
    fmt = "%Y-%m-%d %H:%M:%S" if s.count(":") == 2 else "%Y-%m-%d %H:%M"
    return int(datetime.strptime(s, fmt).replace(tzinfo=UTC).timestamp()) * NS


def jit(ns: int, max_s: float = 50.0) -> int:
    """Add a random sub-minute offset (seconds and nanoseconds)."""
    return ns + rng.randrange(int(max_s * NS))


def _dt(ns: int) -> datetime:
    return datetime.fromtimestamp(ns // NS, UTC)


def rfc3339nano(ns: int, offset_min: int = 0) -> str:
    """Go time.RFC3339Nano: trailing zeros of the fraction trimmed; 'Z' for UTC."""
    sec, frac = divmod(ns, NS)
    dt = datetime.fromtimestamp(sec, UTC) + timedelta(minutes=offset_min)
    f = f"{frac:09d}".rstrip("0")
    s = dt.strftime("%Y-%m-%dT%H:%M:%S") + ("." + f if f else "")
    if offset_min == 0:
        return s + "Z"
    sign = "+" if offset_min > 0 else "-"
    h, m = divmod(abs(offset_min), 60)
    return f"{s}{sign}{h:02d}:{m:02d}"


def iso_ms(ns: int) -> str:
    return _dt(ns).strftime("%Y-%m-%dT%H:%M:%S") + f".{(ns % NS) // MS:03d}Z"


def vprefix(ns: int) -> str:
    """Go log default flags: 'YYYY/MM/DD HH:MM:SS ' (UTC in the alpine image)."""
    return _dt(ns).strftime("%Y/%m/%d %H:%M:%S ")


def iso_week(ns: int) -> str:
    y, w, _ = _dt(ns).isocalendar()
    return f"{y}-W{w:02d}"


def _frac(v: int, prec: int) -> str:
    ip, fp = divmod(v, 10 ** prec)
    f = f"{fp:0{prec}d}".rstrip("0")
    return f"{ip}.{f}" if f else str(ip)


def go_dur(ns: int) -> str:
    """Go time.Duration.String() at full precision (micro sign U+00B5)."""
    if ns == 0:
        return "0s"
    if ns < US:
        return f"{ns}ns"
    if ns < MS:
        return _frac(ns, 3) + "\u00b5s"
    if ns < NS:
        return _frac(ns, 6) + "ms"
    secs, rem = divmod(ns, NS)
    f = f"{rem:09d}".rstrip("0")
    out = str(secs % 60) + ("." + f if f else "") + "s"
    mins = secs // 60
    if mins:
        h, m = divmod(mins, 60)
        out = f"{m}m" + out
        if h:
            out = f"{h}h" + out
    return out


assert go_dur(616265) == "616.265\u00b5s"
assert go_dur(23619417) == "23.619417ms"
assert go_dur(1601587000) == "1.601587s"
assert go_dur(62_500_000_000) == "1m2.5s"
assert go_dur(60 * NS) == "1m0s"


def usec(lo: float, hi: float) -> int:
    """Random duration in ns between lo and hi microseconds."""
    return int(rng.uniform(lo, hi) * US)


def msec(lo: float, hi: float) -> int:
    return int(rng.uniform(lo, hi) * MS)


# --------------------------------------------------------------------------------------------
# random identifiers
# --------------------------------------------------------------------------------------------


def hexn(n: int) -> str:
    return f"{rng.getrandbits(4 * n):0{n}x}"


def uuid4() -> str:
    h = hexn(32)
    return f"{h[:8]}-{h[8:12]}-4{h[13:16]}-{'89ab'[rng.randrange(4)]}{h[17:20]}-{h[20:]}"


K8S_ALNUM = "bcdfghjklmnpqrstvwxz2456789"  # the alphabet of k8s generated name suffixes


def k8s_suffix(n: int = 5) -> str:
    return "".join(rng.choice(K8S_ALNUM) for _ in range(n))


def digits(n: int) -> str:
    return str(rng.randrange(1, 10)) + "".join(str(rng.randrange(10)) for _ in range(n - 1))


# --------------------------------------------------------------------------------------------
# JSON serialisers of the different shippers
# --------------------------------------------------------------------------------------------


def go_json(obj, sort_keys: bool = False) -> str:
    """Go encoding/json: compact, UTF-8 kept, <, >, & escaped as \\u003c \\u003e \\u0026."""
    s = json.dumps(obj, ensure_ascii=False, separators=(",", ":"), sort_keys=sort_keys)
    return s.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def plain_json(obj) -> str:
    """Compact JSON, UTF-8 kept, no HTML escaping (Go slog, jq -c, Python wrappers)."""
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":"))


def fluentbit_json(obj) -> str:
    """Fluent Bit json_lines: compact, non-ASCII written as \\uXXXX escapes."""
    return json.dumps(obj, ensure_ascii=True, separators=(",", ":"))


# --------------------------------------------------------------------------------------------
# the services' migration sources
# --------------------------------------------------------------------------------------------
# version -> (name, typical own ms up (prod), typical own ms down, has_down_file, data_heavy)

ORDERS = {
    1: ("create_orders_table", 9.5, 4.1, True, False),
    2: ("create_order_items_table", 11.2, 3.8, True, False),
    3: ("add_orders_customer_id_index", 38.0, 6.0, True, False),
    4: ("create_payments_table", 10.4, 3.9, True, False),
    5: ("add_orders_currency", 7.2, 0.0, False, False),  # no .down.sql: 5/d <empty>
    6: ("create_refunds_table", 9.8, 3.6, True, False),
    7: ("add_order_items_sku_index", 45.0, 5.2, True, False),
    8: ("add_orders_status_check", 3.1, 2.4, True, False),
    9: ("create_order_events_table", 12.6, 4.4, True, False),
    10: ("add_payments_provider_ref", 5.6, 3.3, True, False),
    11: ("backfill_payment_status", 1850.0, 6.5, True, True),
    12: ("add_orders_updated_at", 6.1, 3.0, True, False),
    13: ("create_carts_table", 10.9, 4.0, True, False),
    14: ("add_order_notes", 6.4, 3.2, True, False),
    15: ("backfill_order_totals", 11800.0, 9.0, True, True),
    16: ("add_shipment_tracking", 14.3, 5.1, True, False),
    17: ("add_order_status_history", 41.0, 4.8, True, False),
    18: ("add_orders_region_index", 820.0, 7.5, True, True),
}

BILLING = {
    1: ("create_accounts_table", 8.0, 3.0, True, False),
    2: ("create_invoices_table", 10.0, 3.5, True, False),
    3: ("create_invoice_lines_table", 10.5, 3.5, True, False),
    4: ("add_invoices_account_index", 20.0, 4.0, True, False),
    5: ("create_payments_table", 9.0, 3.0, True, False),
    6: ("add_invoices_due_at", 5.0, 3.0, True, False),
    7: ("create_credit_notes_table", 9.0, 3.0, True, False),
    8: ("add_payments_method", 5.0, 3.0, True, False),
    9: ("create_tax_rates_table", 8.0, 3.0, True, False),
    10: ("add_invoice_lines_tax_rate_id", 6.0, 3.0, True, False),
    11: ("create_dunning_events_table", 9.0, 3.0, True, False),
    12: ("add_accounts_billing_email", 5.0, 3.0, True, False),
    13: ("create_subscriptions_table", 10.0, 3.0, True, False),
    14: ("add_subscriptions_status_index", 18.0, 3.0, True, False),
    15: ("create_usage_records_table", 10.0, 3.0, True, False),
    16: ("add_usage_records_period_index", 25.0, 3.0, True, False),
    17: ("create_coupons_table", 9.0, 3.0, True, False),
    18: ("add_invoices_coupon_id", 6.0, 3.0, True, False),
    19: ("create_refunds_table", 9.0, 3.0, True, False),
    20: ("add_payments_refunded_cents", 5.0, 3.0, True, False),
    21: ("create_invoice_events_table", 11.0, 3.0, True, False),
    22: ("add_invoice_currency", 15.2, 4.2, True, False),
    23: ("backfill_invoice_totals", 2100.0, 12.0, True, True),
}

IDENTITY = {
    1: ("create_users_table", 9.0, 3.0, True, False),
    2: ("create_sessions_table", 11.0, 3.0, True, False),
    3: ("add_mfa_secrets", 38.5, 4.0, True, False),
    4: ("add_login_attempts", 24.0, 4.0, True, False),
    5: ("add_webauthn_credentials", 57.0, 5.0, True, False),
}

CATALOG = {
    1: ("create_products_table", 9.0, 3.0, True, False),
    2: ("create_categories_table", 8.0, 3.0, True, False),
    3: ("add_products_category_id", 6.0, 3.0, True, False),
    4: ("create_product_images_table", 9.0, 3.0, True, False),
    5: ("add_products_sku_unique", 42.0, 4.0, True, False),
    6: ("create_inventory_table", 10.0, 3.0, True, False),
    7: ("add_inventory_warehouse_id", 6.0, 3.0, True, False),
    8: ("create_product_attributes_table", 11.0, 3.0, True, False),
    9: ("add_search_vectors", 2400.0, 118.0, True, True),
    10: ("add_product_slugs", 240.0, 6.0, True, True),
    11: ("add_price_history", 31.0, 4.5, True, False),
}

SOURCES = {"orders": ORDERS, "billing": BILLING, "identity": IDENTITY, "catalog": CATALOG}

# Data-heavy scripts scale with the data volume of the environment.
HEAVY_SCALE = {"dev": 0.03, "staging": 0.35, "prod": 1.0}
LIGHT_SCALE = {"dev": 0.75, "staging": 0.9, "prod": 1.0}

SQL = {
    "orders16_broken": (
        "ALTER TABLE orders\n"
        "    ADD COLUMN carrier         TEXT,\n"
        "    ADD COLUMN tracking_number TEXT\n"
        "    ADD COLUMN shipped_at      TIMESTAMPTZ;\n"
        "CREATE INDEX idx_orders_tracking_number ON orders (tracking_number);\n"
    ),
    "billing23": (
        "UPDATE invoices i\n"
        "SET    total_cents = s.total_cents,\n"
        "       updated_at  = now()\n"
        "FROM  (SELECT invoice_id, SUM(quantity * unit_price_cents) AS total_cents\n"
        "       FROM invoice_lines\n"
        "       GROUP BY invoice_id) s\n"
        "WHERE  s.invoice_id = i.id\n"
        "  AND  i.total_cents IS DISTINCT FROM s.total_cents;\n"
    ),
    "identity3": (
        "CREATE TABLE mfa_secrets (\n"
        "    user_id     BIGINT PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,\n"
        "    secret      BYTEA NOT NULL,\n"
        "    recovery    TEXT[] NOT NULL DEFAULT '{}',\n"
        "    created_at  TIMESTAMPTZ NOT NULL DEFAULT now()\n"
        ");\n"
    ),
    "identity4": (
        "CREATE TABLE login_attempts (\n"
        "    id           BIGSERIAL PRIMARY KEY,\n"
        "    user_id      BIGINT NOT NULL REFERENCES users (id),\n"
        "    ip           INET NOT NULL,\n"
        "    succeeded    BOOLEAN NOT NULL,\n"
        "    attempted_at TIMESTAMPTZ NOT NULL DEFAULT now()\n"
        ");\n"
        "ALTER TABLE users ADD COLUMN failed_logins INTEGER NOT NULL DEFAULT 0;\n"
    ),
}

# failure kinds: (pq message in the head, line, sql key, pq details, own time of the failing statement)
FAILURES = {
    "syntax16": ('syntax error at or near "ADD" (column 5)', 4, "orders16_broken",
                 'syntax error at or near "ADD"', (0.8, 1.6)),
    "stmt_timeout23": ("canceling statement due to statement timeout", 0, "billing23",
                       "canceling statement due to statement timeout", (90000.0, 90004.0)),
    "lock_timeout4": ("canceling statement due to lock timeout", 0, "identity4",
                      "canceling statement due to lock timeout", (5000.0, 5003.0)),
    "exists3": ('relation "mfa_secrets" already exists', 0, "identity3",
                'relation "mfa_secrets" already exists', (1.2, 2.4)),
}


def migration_error_text(kind: str) -> str:
    """The whole database.Error text, as migrate returns it (without the CLI's 'error: ')."""
    msg, line, sql_key, details, _ = FAILURES[kind]
    return f"migration failed: {msg} in line {line}: {SQL[sql_key]} (details: pq: {details})"


# --------------------------------------------------------------------------------------------
# database state and the migrate process simulator
# --------------------------------------------------------------------------------------------


class DB:
    def __init__(self, version):
        self.version = version
        self.dirty = False


STATE: dict[tuple, DB] = {}


def db_state(service, env, database) -> DB:
    return STATE[(service, env, database)]


def own_ns(spec, version: int, direction: str) -> int:
    src = SOURCES[spec["service"]]
    name, up_ms, down_ms, _has_down, heavy = src[version]
    override = spec.get("own", {}).get((version, direction))
    if override is not None:
        ms = override * math.exp(rng.gauss(0, 0.05))
    else:
        base = up_ms if direction == "u" else down_ms
        scale = (HEAVY_SCALE if heavy else LIGHT_SCALE)[spec["env"]]
        ms = base * scale * math.exp(rng.gauss(0, 0.09))
    return int(ms * MS) + rng.randrange(1000)


class Run:
    def __init__(self, spec):
        self.spec = spec
        self.lines: list[tuple[int, str]] = []  # (emit ns, physical line without newline)
        self.err_idx: set[int] = set()  # indexes of lines that belong to a fatal error record
        self.error_text = None  # fatal error text without 'error: ' (for slog)
        self.error_ns = None
        self.exit_code = 0
        self.start_ns = spec["t"]
        self.end_ns = spec["t"]
        self.applied: list[str] = []
        self.files: set[str] = set()
        self.outcome = "success"


def simulate(spec) -> Run:
    run = Run(spec)
    svc, env, dbname = spec["service"], spec["env"], spec["db"]
    st = db_state(svc, env, dbname)
    src = SOURCES[svc]
    verbose = spec.get("verbose", False)
    out = run.lines

    def emit(ns: int, text: str, prefix: bool = True, err: bool = False) -> int:
        if out:
            ns = max(ns, out[-1][0] + usec(2, 25))
        out.append((ns, (vprefix(ns) + text) if (verbose and prefix) else text))
        if err:
            run.err_idx.add(len(out) - 1)
        return ns

    def fatal(ns: int, text: str, outcome: str) -> None:
        """Println("error:", err): first line prefixed, continuation lines bare."""
        parts = text.split("\n")
        ns = emit(ns, "error: " + parts[0], err=True)
        for p in parts[1:]:
            ns = emit(ns + usec(3, 12), p, prefix=False, err=True)
        run.error_text, run.error_ns = text, out[-len(parts)][0]
        run.exit_code = 1
        run.outcome = outcome
        run.end_ns = ns + usec(200, 900)

    t = spec["t"]
    for noise in spec.get("noise_before") or []:
        # wait-for-it output is not a Go log line: never a verbose prefix
        t = emit(t + msec(2, 9), noise, prefix=False)
    t_m = t + (msec(250, 2400) if spec.get("noise_before") else 0)
    if spec.get("noise_after_wait"):
        waited = (t_m - spec["t"]) // NS
        t_m = emit(t_m, f"wait-for-it: db:5432 is available after {waited} seconds", prefix=False)
        t_m += msec(3, 12)

    # -- errors before migrate.New returns (cannot connect, DNS, bad DSN)
    if spec.get("pre_error"):
        fatal(t_m + msec(*spec.get("pre_error_delay_ms", (1.0, 4.0))), spec["pre_error"], "error")
        return run

    start = t_m + msec(8, 35)  # connect + ensureVersionTable; 'Finished after' counts from here
    cmd = spec["cmd"]

    if cmd == "version":
        ns = start + usec(400, 1800)
        if st.version is None:
            fatal(ns, "no migration", "error")
            return run
        emit(ns, f"{st.version} (dirty)" if st.dirty else f"{st.version}")
        if verbose:
            emit(ns + usec(30, 90), "Closing source and database")
        run.outcome = "version"
        run.end_ns = out[-1][0] + usec(200, 700)
        return run

    t_l = start + usec(600, 2600)  # lock acquired
    if spec.get("lock_timeout"):
        fatal(start + 15 * NS + usec(400, 2500), "timeout: can't acquire database lock", "locked")
        return run
    if st.dirty:
        fatal(t_l + usec(500, 1500), f"Dirty database version {st.version}. Fix and force version.", "dirty")
        return run

    versions = sorted(src)
    head = spec.get("head", max(versions))
    cur = st.version or 0
    plan: list[tuple[int, str]] = []
    short = 0
    if cmd == "up":
        pending = [v for v in versions if cur < v <= head]
        n = spec.get("n")
        plan = [(v, "u") for v in (pending[:n] if n else pending)]
        if n and n > len(pending):
            short = n - len(pending)
    elif cmd == "down":
        below = [v for v in reversed(versions) if v <= cur]
        n = spec["n"]
        plan = [(v, "d") for v in below[:n]]
        short = max(0, n - len(below))
    elif cmd == "goto":
        target = spec["n"]
        if target not in src and target != 0:
            msg = (f"no migration found for version {target}: read down for version {target} .: "
                   "file does not exist")
            if verbose:
                emit(t_l + usec(500, 1200), "error: " + msg, err=True)
                fatal(t_l + usec(1300, 2000), msg, "error")
            else:
                # logErr prints without a newline, then the fatal Println: one physical line
                ns = emit(t_l + usec(500, 1500), "error: " + msg + "error: " + msg, err=True)
                run.error_text, run.error_ns = msg, ns
                run.exit_code, run.outcome, run.end_ns = 1, "error", ns + usec(200, 800)
            return run
        if target < cur:
            plan = [(v, "d") for v in reversed(versions) if target < v <= cur]
        else:
            plan = [(v, "u") for v in versions if cur < v <= target]
    else:
        raise ValueError(cmd)

    if not plan:
        ns = emit(t_l + usec(700, 2500), "no change")
        if verbose:
            end = ns + usec(60, 200)
            emit(end, f"Finished after {go_dur(end - start)}")
            emit(end + usec(30, 80), "Closing source and database")
        run.outcome = "no_change"
        run.end_ns = out[-1][0] + usec(200, 700)
        return run

    def label(v, d):
        name, _u, _d, has_down, _h = src[v]
        return f"{v}/{d} {name if (d == 'u' or has_down) else '<empty>'}", (d == "u" or has_down)

    # buffering: prefetch 10 => up to 12 queued at start, one more after each finish (capture 0031)
    b0 = t_l + usec(60, 300)
    buf_at: dict[int, int] = {}

    def buffer(i: int, ns: int) -> None:
        buf_at[i] = ns
        lab, has_body = label(*plan[i])
        if verbose:
            emit(ns, ("Start buffering " if has_body else "Scheduled ") + lab)

    ns = b0
    for i in range(min(len(plan), 12)):
        buffer(i, ns)
        ns += usec(15, 70)
    prev_end = ns + usec(1100, 2200)
    kill_at = spec.get("kill_at")
    fail = spec.get("fail")
    for i, (v, d) in enumerate(plan):
        lab, has_body = label(v, d)
        bk = buf_at[i]
        if not has_body:
            fin = prev_end + usec(150, 500) + usec(200, 1400)
            ran = fin - bk
            if verbose:
                emit(fin, f"Finished {lab} (read 0s, ran {go_dur(ran)})")
            else:
                emit(fin, f"{lab} ({go_dur(ran)})")
        else:
            e = max(prev_end + usec(150, 600), bk + usec(900, 1800))
            read = e - bk + usec(20, 350)
            if verbose:
                emit(e, f"Read and execute {lab}")
            if kill_at == v:
                st.version, st.dirty = v, True
                run.exit_code, run.outcome = 143, "interrupted"
                run.end_ns = e + msec(800, 2500)  # SIGTERM arrives mid-script
                return run
            if fail and fail[0] == v:
                st.version, st.dirty = v, True
                lo, hi = FAILURES[fail[1]][4]
                fatal(bk + read + msec(lo, hi), migration_error_text(fail[1]), "failed")
                return run
            own = own_ns(spec, v, d)
            fin = bk + read + own
            if verbose:
                emit(fin, f"Finished {lab} (read {go_dur(read)}, ran {go_dur(own)})")
            else:
                emit(fin, f"{lab} ({go_dur(read + own)})")
        run.applied.append(f"{v}/{d}")
        if d == "u":
            st.version = v
        else:
            lower = [x for x in versions if x < v]
            st.version = lower[-1] if lower else None
        prev_end = out[-1][0]
        if i + 12 < len(plan):
            buffer(i + 12, prev_end + usec(10, 40))
    end = prev_end + usec(100, 450)
    if short:
        fatal(end, f"limit {short} short", "error")
        return run
    if verbose:
        emit(end, f"Finished after {go_dur(end - start)}")
        emit(end + usec(30, 80), "Closing source and database")
    run.end_ns = out[-1][0] + usec(200, 700)
    return run


# --------------------------------------------------------------------------------------------
# the schedule
# --------------------------------------------------------------------------------------------

SPECS: list[dict] = []
FORCES: list[tuple[int, str, str, str, int]] = []  # silent `migrate force V` (prints nothing)


def spec(**kw) -> dict:
    kw.setdefault("seq", len(SPECS))
    SPECS.append(kw)
    return kw


def force(t, service, env, database, version):
    FORCES.append((t, service, env, database, version))


def days():
    d = datetime.strptime(FLEET_START, "%Y-%m-%d")
    end = datetime.strptime(FLEET_END, "%Y-%m-%d")
    while d <= end:
        yield d.strftime("%Y-%m-%d"), d.weekday()
        d += timedelta(days=1)


def work_time(date: str, lo_h: float = 9.0, hi_h: float = 17.0) -> int:
    return T(f"{date} 00:00") + int(rng.uniform(lo_h, hi_h) * 3600 * NS)


for key, v0 in [(("orders", e, "orders"), 13) for e in ("dev", "staging", "prod")] + \
               [(("catalog", e, "catalog"), 8) for e in ("dev", "staging", "prod")] + \
               [(("identity", e, "identity"), 2) for e in ("dev", "staging", "prod")] + \
               [(("billing", "dev", "billing"), 21)] + \
               [(("billing", "staging", f"tenant_{i:03d}"), 21) for i in (1, 2)] + \
               [(("billing", "prod", f"tenant_{i:03d}"), 21) for i in range(1, 9)]:
    STATE[key] = DB(v0)

# heads deployed per (service, env): list of (from ns, head)
HEADS = {
    ("orders", "dev"): [(0, 13), (T("2026-10-26 09:40"), 15), (T("2026-11-02 10:19"), 16),
                        (T("2026-11-04 14:59"), 17), (T("2026-11-09 10:09"), 18)],
    ("orders", "staging"): [(0, 13), (T("2026-10-27 10:14"), 15), (T("2026-11-03 10:04"), 16),
                            (T("2026-11-05 09:29"), 17), (T("2026-11-10 10:39"), 18)],
    ("orders", "prod"): [(0, 13), (T("2026-10-29 14:04"), 15), (T("2026-11-04 10:29"), 16),
                         (T("2026-11-06 10:14"), 17), (T("2026-11-12 14:29"), 18)],
    ("catalog", "dev"): [(0, 8), (T("2026-10-26 11:04"), 9), (T("2026-11-05 10:29"), 10),
                         (T("2026-11-10 15:19"), 11)],
    ("catalog", "staging"): [(0, 8), (T("2026-10-28 13:59"), 9), (T("2026-11-10 13:57"), 10)],
    # prod: 9 shipped 11-02, the release was reverted with the rollback on 11-03 (head back to 8),
    # 9+10 re-shipped 11-11, 11 hot-fixed straight to prod 11-13 (staging never got it).
    ("catalog", "prod"): [(0, 8), (T("2026-11-02 11:19"), 9), (T("2026-11-03 15:39"), 8),
                          (T("2026-11-11 11:29"), 10), (T("2026-11-13 16:04"), 11)],
    ("identity", "dev"): [(0, 2), (T("2026-10-27 09:59"), 4), (T("2026-11-09 10:59"), 5)],
    ("identity", "staging"): [(0, 2), (T("2026-10-28 14:09"), 4), (T("2026-11-10 11:29"), 5)],
    ("identity", "prod"): [(0, 2), (T("2026-11-02 13:29"), 4), (T("2026-11-12 12:59"), 5)],
}


def head_at(service, env, ns):
    h = None
    for t0, hv in HEADS[(service, env)]:
        if t0 <= ns:
            h = hv
    return h


# ---- envelope metadata helpers ----------------------------------------------------------------

K8S_NODES = {
    "dev": ["ip-10-10-1-23.ec2.internal", "ip-10-10-2-41.ec2.internal"],
    "staging": ["ip-10-20-1-17.ec2.internal", "ip-10-20-3-88.ec2.internal"],
    "prod": ["ip-10-0-3-17.ec2.internal", "ip-10-0-4-112.ec2.internal", "ip-10-0-5-9.ec2.internal"],
}
ORDERS_IMAGE_DIGEST = {}


def orders_pod(env: str, t: int, job: str | None = None, head: int | None = None) -> dict:
    job = job or f"orders-migrate-{t // NS // 60}"
    head = head or head_at("orders", env, t)
    if head not in ORDERS_IMAGE_DIGEST:
        ORDERS_IMAGE_DIGEST[head] = hexn(64)
    labels = {"app.kubernetes.io/name": "orders", "env": env, "db": "orders",
              "batch.kubernetes.io/job-name": job, "job-name": job}
    return {
        "pod_name": f"{job}-{k8s_suffix()}",
        "namespace_name": "orders",
        "pod_id": uuid4(),
        "labels": dict(sorted(labels.items())),
        "host": rng.choice(K8S_NODES[env]),
        "container_name": "migrate",
        "docker_id": hexn(64),
        "container_hash": f"registry.internal/orders/migrations@sha256:{ORDERS_IMAGE_DIGEST[head]}",
        "container_image": f"registry.internal/orders/migrations:v{head}-migrate4.17.1",
    }


WAIT_FOR_IT = ["wait-for-it: waiting for db:5432"]


def wait_done() -> bool:
    return True  # the text is written by simulate(): "available after <whole seconds waited>"


# ---- orders (Kubernetes / Fluent Bit; one CRI node file) -------------------------------------

O = {}


def orders_run(name, env, when, **kw):
    t = jit(T(when)) if isinstance(when, str) else when
    kw.setdefault("cmd", "up")
    kw.setdefault("verbose", env == "staging")
    head = kw.pop("head", None) or head_at("orders", env, t)
    pod = kw.pop("pod", None) or orders_pod(env, t, head=head)
    kw.setdefault("envelope", "kubernetes")
    s = spec(service="orders", env=env, db="orders", t=t, head=head, pod=pod, **kw)
    O[name] = s
    return s


orders_run("O1", "dev", "2026-10-26 09:41", noise_before=WAIT_FOR_IT, noise_after_wait=wait_done())
o2 = orders_run("O2", "staging", "2026-10-27 10:15", kill_at=15,
                tag="5a interrupted: SIGTERM (pod evicted) while executing 15/u backfill_order_totals")
o2_job = o2["pod"]["labels"]["job-name"]
orders_run("O3", "staging", o2["t"] + 6 * 60 * NS + rng.randrange(20 * NS),
           pod=orders_pod("staging", o2["t"], job=o2_job, head=15),
           tag="5b dirty: Job retry pod prints Dirty database version 15")
force(T("2026-10-27 10:41"), "orders", "staging", "orders", 14)
orders_run("O4", "staging", "2026-10-27 10:46", tag="5c recovered after silent `force 14`: 15/u re-run succeeds")
orders_run("O5", "prod", "2026-10-29 14:05")
orders_run("O6", "staging", "2026-10-30 11:02", cmd="version")
orders_run("O7", "dev", "2026-11-02 10:20")
orders_run("O8", "staging", "2026-11-03 10:05")
o9 = orders_run("O9", "prod", "2026-11-04 10:30", fail=(16, "syntax16"),
                tag="1a failed: 16/u add_shipment_tracking syntax error, database left dirty at 16")
orders_run("O10", "prod", o9["t"] + 70 * NS + rng.randrange(15 * NS),
           pod=orders_pod("prod", o9["t"], job=o9["pod"]["labels"]["job-name"], head=16),
           tag="1b dirty: Job retry pod prints Dirty database version 16")
orders_run("O11", "dev", "2026-11-04 15:00", envelope="cri", noise_before=WAIT_FOR_IT,
           noise_after_wait=wait_done(),
           tag="CRI node file (not shipped by Fluent Bit): 17/u applied in dev")
orders_run("O12", "staging", "2026-11-05 09:30")
force(T("2026-11-06 10:05"), "orders", "prod", "orders", 15)
orders_run("O13", "prod", "2026-11-06 10:15",
           tag="1c forced recovery: after silent `force 15`, a clean run applies 16 and 17")
orders_run("O14", "dev", "2026-11-06 16:12", cmd="goto", n=42,
           pod=orders_pod("dev", T("2026-11-06 16:12"), job="orders-migrate-manual"),
           tag="10 doubled missing-file error (goto 42), exactly as capture 0026")
orders_run("O15", "dev", "2026-11-06 16:14", cmd="goto", n=4,
           pod=orders_pod("dev", T("2026-11-06 16:14"), job="orders-migrate-manual"),
           tag="9 missing down file: goto 4 from 17 prints 5/d <empty>")
orders_run("O16", "dev", "2026-11-06 16:21", pod=orders_pod("dev", T("2026-11-06 16:21"),
                                                            job="orders-migrate-manual"),
           tag="9 (follow-up) dev re-applies 5..17")
orders_run("O17", "dev", "2026-11-09 10:10", noise_before=WAIT_FOR_IT, noise_after_wait=wait_done())
orders_run("O18", "staging", "2026-11-10 10:40")
orders_run("O19", "prod", "2026-11-12 14:30")

# ---- catalog (migrate-lens/v1 events; two bare text files) ------------------------------------

C = {}


def catalog_run(name, env, when, **kw):
    t = jit(T(when)) if isinstance(when, str) else when
    kw.setdefault("cmd", "up")
    head = kw.pop("head", None) or head_at("catalog", env, t)
    kw.setdefault("envelope", "events")
    s = spec(service="catalog", env=env, db="catalog", t=t, head=head, run_id=uuid4(), **kw)
    C[name] = s
    return s


catalog_run("C1", "dev", "2026-10-26 11:05")
catalog_run("C2", "dev", "2026-10-28 09:05",
            pre_error="dial tcp 10.0.3.4:5432: connect: connection refused",
            tag="10 connection refused (dev database restarting)")
catalog_run("C3", "dev", "2026-10-28 09:12")
catalog_run("C4", "staging", "2026-10-28 14:00")
catalog_run("C5", "prod", "2026-11-02 11:20")
catalog_run("C6", "prod", "2026-11-03 15:40", cmd="down", n=1,
            tag="3a prod rollback: down 1 prints 9/d add_search_vectors")
catalog_run("C7", "dev", "2026-11-05 10:30")
catalog_run("C8", "prod", "2026-11-06 11:00", cmd="version")
catalog_run("C9", "staging", "2026-11-10 13:58", envelope="bare",
            path="text/bare/env=staging/service=catalog/database=catalog/up-2026-11-10.txt",
            tag="bare default-mode output (time = file mtime): 10/u applied in staging")
catalog_run("C10", "staging", T("2026-11-10 14:02:11") + rng.randrange(NS // 2), verbose=True,
            envelope="bare",
            path="text/bare/env=staging/service=catalog/database=catalog/verbose-up-2026-11-10.txt")
catalog_run("C11", "dev", "2026-11-10 15:20", n=3, tag="10 `up 3` with one pending: error: limit 2 short")
catalog_run("C12", "prod", "2026-11-11 11:30", tag="3b prod re-applies 9/u (with 10/u)")
catalog_run("C13", "prod", "2026-11-13 16:05",
            tag="8 promotion skipped: 11/u add_price_history applied in prod, never in staging")

# ---- identity (Go service embedding migrate, log/slog JSON) ----------------------------------

I = {}
IDENTITY_RS = {}


def identity_run(name, env, when, **kw):
    t = jit(T(when)) if isinstance(when, str) else when
    head = kw.pop("head", None) or head_at("identity", env, t)
    rs_key = (env, head, kw.pop("rs_variant", 0))
    if rs_key not in IDENTITY_RS:
        IDENTITY_RS[rs_key] = "".join(rng.choice(K8S_ALNUM) for _ in range(10))
    pod = f"identity-{IDENTITY_RS[rs_key]}-{k8s_suffix()}"
    s = spec(service="identity", env=env, db="identity", t=t, head=head, cmd="up", envelope="slog",
             pod=pod, app_version=f"1.{head + 10}.{rng.randrange(0, 4)}", **kw)
    I[name] = s
    return s


identity_run("I1", "dev", "2026-10-27 10:00")
identity_run("I2", "staging", "2026-10-28 14:10", fail=(4, "lock_timeout4"),
             tag="6a failed: 3/u applied, then 4/u add_login_attempts lock timeout (dirty at 4)")
force(T("2026-10-28 14:28"), "identity", "staging", "identity", 2)  # the mistake: should be 3
identity_run("I3", "staging", "2026-10-28 14:32", fail=(3, "exists3"), rs_variant=1,
             tag="6b non-idempotent re-run after `force 2`: relation \"mfa_secrets\" already exists")
force(T("2026-10-29 09:50"), "identity", "staging", "identity", 3)
identity_run("I4", "staging", "2026-10-29 10:02", rs_variant=2,
             tag="6c recovered after `force 3`: 4/u applied")
identity_run("I5", "prod", "2026-11-02 13:30")
identity_run("I6", "dev", "2026-11-09 11:00")
identity_run("I7", "staging", "2026-11-10 11:30")
identity_run("I8", "prod", "2026-11-12 13:00")

# ---- billing (dev: docker json-file; staging: Loki; prod: CloudWatch) --------------------------

B = {}
TENANTS_PROD = [f"tenant_{i:03d}" for i in range(1, 9)]
TENANTS_STAGING = ["tenant_001", "tenant_002"]

# Billing's release job re-runs the last migration, 23/u backfill_invoice_totals, on every release:
# `migrate force 22` (silent) then `migrate up`.  The first release (B1) applies 22 and 23 for real.
RELEASES = {  # release -> (dev time, staging time, prod time or None)
    "B1": ("2026-10-26 14:10", "2026-10-27 15:20", "2026-10-29 10:00"),
    "B2": ("2026-10-29 13:40", "2026-10-30 10:30", "2026-11-02 10:00"),
    "B3": ("2026-11-03 11:15", "2026-11-04 14:45", "2026-11-05 10:00"),
    "B4": ("2026-11-05 15:30", "2026-11-06 11:10", "2026-11-10 10:00"),
    "B5": ("2026-11-09 14:20", "2026-11-10 15:05", "2026-11-12 10:00"),
    "B6": ("2026-11-12 11:00", "2026-11-13 10:40", None),  # prod frozen after tenant_007
}
NEW_NORMAL_23 = 46000.0  # W46 prod: 23/u takes ~46 s on every tenant (was ~2.1 s)


def billing_spec(name, env, database, t, release=None, **kw):
    kw.setdefault("cmd", "up")
    kw.setdefault("verbose", env != "dev")
    envelope = {"dev": "docker", "staging": "loki", "prod": "cloudwatch"}[env]
    meta = {}
    if env == "dev":
        meta["container_id"] = hexn(64)
    elif env == "staging":
        meta["pod"] = (f"billing-migrate-{database.replace('_', '-')}-{t // NS // 60}-{k8s_suffix()}")
    else:
        meta["task_id"] = hexn(32)
    s = spec(service="billing", env=env, db=database, t=t, release=release, envelope=envelope, **meta, **kw)
    B[name] = s
    return s


for rel, (t_dev, t_stg, t_prod) in RELEASES.items():
    refresh = rel != "B1"
    # dev: one docker container per run (docker compose with wait-for-it)
    billing_spec(f"{rel}-dev", "dev", "billing", jit(T(t_dev)), rel, refresh=refresh,
                 noise_before=WAIT_FOR_IT, noise_after_wait=wait_done())
    # staging: both tenants, one after the other
    t = jit(T(t_stg))
    for tenant in TENANTS_STAGING:
        s = billing_spec(f"{rel}-staging-{tenant}", "staging", tenant, t, rel, refresh=refresh)
        t += int(rng.uniform(25, 40) * NS)  # provisional: the chain re-times each task at simulation
        s["chain_gap"] = True
    if t_prod is None:
        continue
    t = jit(T(t_prod), 20)
    for tenant in TENANTS_PROD:
        own = {}
        kw = {}
        if rel in ("B4", "B5"):
            own[(23, "u")] = NEW_NORMAL_23 * rng.uniform(0.88, 1.16)
            if tenant == "tenant_007":
                own[(23, "u")] = 58500.0
        if rel == "B3" and tenant == "tenant_004":
            own[(23, "u")] = 63000.0  # the lone W45 outlier, ~30x
            kw["tag"] = "7a lone outlier: 23/u backfill_invoice_totals ~30x its baseline on tenant_004"
        if rel == "B4" and tenant == "tenant_001":
            kw["tag"] = "7b level shift starts: 23/u ~40-60 s on every prod tenant from here on (W46)"
        if rel == "B5" and tenant == "tenant_007":
            kw["fail"] = (23, "stmt_timeout23")
            kw["tag"] = "2 open dirty: 23/u hits statement_timeout (90s), tenant_007 dirty at 23 until the end"
        s = billing_spec(f"{rel}-prod-{tenant}", "prod", tenant, t, rel, refresh=refresh, own=own, **kw)
        s["chain_gap"] = True
        if rel == "B4" and tenant == "tenant_003":
            # the release was triggered twice: a second task for tenant_003 starts at the same instant
            billing_spec(f"{rel}-prod-{tenant}-dup", "prod", tenant, t + usec(200, 3000), rel,
                         refresh=True, lock_timeout=True,
                         tag="4 lock timeout: double-triggered task for tenant_003 starts with the other one")
        t += 1  # provisional: the chain starts each task after the previous one ended

# manual and extra billing runs
billing_spec("dev-nochange-1", "dev", "billing", jit(T("2026-10-28 15:02")),
             noise_before=WAIT_FOR_IT, noise_after_wait=wait_done())
billing_spec("dev-version", "dev", "billing", jit(T("2026-11-11 10:00")), cmd="version",
             noise_before=WAIT_FOR_IT, noise_after_wait=wait_done())
billing_spec("dev-nochange-2", "dev", "billing", jit(T("2026-11-13 09:35")),
             noise_before=WAIT_FOR_IT, noise_after_wait=wait_done())
billing_spec("stg-version", "staging", "tenant_001", jit(T("2026-11-06 16:05")), cmd="version")
billing_spec("prod-dsn-leak", "prod", "tenant_002", jit(T("2026-11-04 10:50")), cmd="version", verbose=False,
             pre_error=('failed to open database, "postgres://billing:Sup3rS3cret@db-prod:5432/tenant_002'
                        '?sslmode=require": dial tcp: lookup db-prod on 10.0.0.2:53: no such host'),
             pre_error_delay_ms=(18.0, 45.0),
             tag="10 leaked DSN (migrate v4.18.0 image, typo'd host): the password must be redacted")
billing_spec("prod-version-002", "prod", "tenant_002", jit(T("2026-11-04 10:52")), cmd="version",
             verbose=False)
billing_spec("prod-version-007", "prod", "tenant_007", jit(T("2026-11-13 09:40")), cmd="version",
             verbose=False, tag="2 (follow-up) on-call checks tenant_007: prints 23 (dirty); never fixed")

# ---- routine deploys (mostly `no change`) ----------------------------------------------------

EXPLICIT_DAYS = defaultdict(set)
for s in SPECS:
    EXPLICIT_DAYS[(s["service"], s["env"])].add(_dt(s["t"]).strftime("%Y-%m-%d"))
SUPPRESS = {("orders", "prod", "2026-11-05")}  # prod was dirty: deploys paused until the fix

for date, wd in days():
    if wd >= 5:
        continue
    # orders: dev 2 deploys a day, staging 1, prod Mon/Tue/Wed/Fri
    for env, n in (("dev", rng.choice([2, 3, 4])), ("staging", rng.choice([1, 2])),
                   ("prod", 1 if wd in (0, 1, 2, 4) else 0)):
        if date in EXPLICIT_DAYS[("orders", env)] or ("orders", env, date) in SUPPRESS:
            continue
        for _ in range(n):
            t = work_time(date, 9.5, 16.8)
            noise = WAIT_FOR_IT if (env == "dev" and rng.random() < 0.3) else None
            kw = {"noise_before": noise, "noise_after_wait": wait_done()} if noise else {}
            orders_run(f"Or-{env}-{date}-{t}", env, t, **kw)
    # catalog: dev 1-2, staging Mon/Thu, prod daily (deploys run `up` every time)
    for env, n in (("dev", rng.choice([1, 2, 3, 3])), ("staging", 1 if wd in (0, 3) else 0),
                   ("prod", rng.choice([1, 1, 2]))):
        if date in EXPLICIT_DAYS[("catalog", env)]:
            continue
        for _ in range(n):
            t = work_time(date, 9.2, 17.3)
            cmd = "version" if (env == "prod" and date in ("2026-10-28", "2026-11-09")) else "up"
            catalog_run(f"Cr-{env}-{date}-{t}", env, t, cmd=cmd)
    # identity: a deploy (new pod) most weekdays
    for env, p in (("dev", 0.9), ("staging", 0.7), ("prod", 0.5)):
        if date in EXPLICIT_DAYS[("identity", env)]:
            continue
        if rng.random() < p:
            identity_run(f"Ir-{env}-{date}", env, work_time(date, 9.5, 16.5), rs_variant=date)
    # billing dev: a developer runs `docker compose run migrate up` now and then (no change)
    if date not in EXPLICIT_DAYS[("billing", "dev")] and rng.random() < 0.4:
        billing_spec(f"dev-routine-{date}", "dev", "billing", work_time(date, 9.5, 17.5),
                     noise_before=WAIT_FOR_IT, noise_after_wait=wait_done())

# ---- simulate in time order -------------------------------------------------------------------

RUNS: list[Run] = []


def chain_key(s):
    return (s["service"], s["env"], s.get("release"))


# billing chained tenants: each task starts after the previous one ended (+ ECS scheduling and the
# silent `force 22` task in between).  Simulate releases chain by chain, the rest in time order.
events = sorted([(s["t"], s["seq"], "run", s) for s in SPECS if not s.get("chain_gap")] +
                [(f[0], -1, "force", f) for f in FORCES], key=lambda x: (x[0], x[1]))
chains = defaultdict(list)
for s in SPECS:
    if s.get("chain_gap"):
        chains[chain_key(s)].append(s)
for k, lst in chains.items():
    events.append((lst[0]["t"], lst[0]["seq"], "chain", lst))
events.sort(key=lambda x: (x[0], x[1]))

DUPS = [s for s in SPECS if s.get("lock_timeout")]


def run_one(s) -> Run:
    if s.get("refresh"):
        st = db_state(s["service"], s["env"], s["db"])
        if st.version == 23 and not st.dirty:
            st.version = 22  # `migrate force 22`: prints nothing
    r = simulate(s)
    r.version_after = db_state(s["service"], s["env"], s["db"]).version
    RUNS.append(r)
    return r


for t0, _seq, kind, obj in events:
    if kind == "force":
        _t, svc, env, dbn, v = obj
        st = db_state(svc, env, dbn)
        st.version, st.dirty = v, False
    elif kind == "run":
        if obj.get("lock_timeout"):
            continue  # simulated together with its twin, inside the chain
        run_one(obj)
    else:
        t = obj[0]["t"]
        for s in obj:
            s["t"] = t
            dup = [d for d in DUPS if d["release"] == s["release"] and d["db"] == s["db"]
                   and d["env"] == s["env"]]
            if dup:
                dup[0]["t"] = t + usec(200, 3000)
                r_dup = simulate(dup[0])  # loses the race: 15 s lock timeout, no state change
                RUNS.append(r_dup)
            r = run_one(s)
            if s["env"] == "prod":
                gap = rng.uniform(6.0, 11.0) + (rng.uniform(5.0, 9.0) if s.get("refresh") else 0.0)
            else:
                gap = rng.uniform(3.0, 6.0) + (rng.uniform(3.0, 5.0) if s.get("refresh") else 0.0)
            t = max(r.end_ns, r_dup.end_ns if dup else 0) + int(gap * NS) + rng.randrange(MS)

RUNS.sort(key=lambda r: (r.spec["t"], r.spec["seq"]))

# ---- envelope writers -------------------------------------------------------------------------

FILES: dict[str, list[tuple[int, int, bytes]]] = defaultdict(list)  # path -> [(ns, order, line bytes)]
_order = [0]


def put(path: str, ns: int, line: str | bytes, run: Run | None = None) -> None:
    _order[0] += 1
    FILES[path].append((ns, _order[0], line.encode("utf-8") if isinstance(line, str) else line))
    if run is not None:
        run.files.add(path)


def delivered(run: Run) -> list[tuple[int, str]]:
    """Shipper receive times: a few tens of microseconds after each write, in write order."""
    out, last = [], 0
    for ns, text in run.lines:
        last = max(ns + usec(15, 180), last + usec(1, 6))
        out.append((last, text))
    return out


def w_kubernetes(run: Run) -> None:
    pod = run.spec["pod"]
    kube = {k: pod[k] for k in ("pod_name", "namespace_name", "pod_id", "labels", "host", "container_name",
                                "docker_id", "container_hash", "container_image")}
    kube_json = fluentbit_json(kube)
    for ns, text in delivered(run):
        sec, frac = divmod(ns, NS)
        us = round(frac / 1000)
        if us == 1_000_000:
            sec, us = sec + 1, 0
        rec = (f'{{"date":{sec}.{us:06d},"time":{fluentbit_json(rfc3339nano(ns))},"stream":"stderr",'
               f'"_p":"F","log":{fluentbit_json(text)},"kubernetes":{kube_json}}}')
        put(f"kubernetes/orders-{iso_week(ns)}.jsonl", ns, rec, run)


def w_cri(run: Run) -> None:
    for ns, text in delivered(run):
        put("text/cri/env=dev/service=orders/database=orders/0.log", ns,
            f"{rfc3339nano(ns)} stderr F {text}", run)


def w_docker(run: Run) -> None:
    path = f"docker/env=dev/service=billing/database=billing/{run.spec['container_id']}-json.log"
    for ns, text in delivered(run):
        put(path, ns, go_json({"log": text + "\n", "stream": "stderr", "time": rfc3339nano(ns)}), run)


LOKI_RECORDS: list[tuple[int, int, str]] = []


def w_loki(run: Run) -> None:
    s = run.spec
    labels = {"container": "migrate", "env": "staging", "service_name": "billing", "tenant": s["db"],
              "pod": s["pod"], "namespace": "billing", "stream": "stderr"}
    for ns, text in delivered(run):
        _order[0] += 1
        LOKI_RECORDS.append((ns, _order[0], labels, text))
        run.files.add("loki")


CW_EVENTS: dict[tuple[str, str], list] = defaultdict(list)  # (tenant, day) -> events


def w_cloudwatch(run: Run) -> None:
    s = run.spec
    stream = f"migrate/migrate/{s['task_id']}"
    for ns, text in delivered(run):
        ms = ns // MS
        ev = {"logStreamName": stream, "timestamp": ms, "message": text,
              "ingestionTime": ms + rng.randint(180, 2400), "eventId": digits(56)}
        _order[0] += 1
        CW_EVENTS[(s["db"], _dt(ms * MS).strftime("%Y-%m-%d"))].append((ms, _order[0], ev, run))


SLOG: dict[str, list] = defaultdict(list)


def slog_rec(env: str, pod: str, ns: int, level: str, msg: str, **attrs) -> tuple:
    rec = {"time": rfc3339nano(ns), "level": level, "msg": msg, "service": "identity", "env": env,
           "database": "identity", "pod": pod}
    rec.update(attrs)
    _order[0] += 1
    SLOG[env].append((ns, _order[0], plain_json(rec)))


def w_events(run: Run) -> None:
    s = run.spec
    base = {"schema": "migrate-lens/v1"}
    path = f"events/catalog-{s['env']}.jsonl"
    args = ["-path", "/migrations", "-database", "postgres://catalog:***@db:5432/catalog"]
    if s.get("verbose"):
        args = ["-verbose"] + args
    args.append(s["cmd"])
    if s.get("n") is not None:
        args.append(str(s["n"]))

    def ev(ns, event, **kw):
        rec = dict(base, ts=iso_ms(ns), run_id=s["run_id"], env=s["env"], service="catalog",
                   database="catalog", event=event)
        rec.update(kw)
        put(path, ns, plain_json(rec), run)

    ev(s["t"], "run_start", command=s["cmd"], args=args)
    for ns, text in run.lines:
        ev(ns + usec(40, 400), "line", line=text)
    ev(max(run.end_ns, (run.lines[-1][0] if run.lines else s["t"])) + msec(1, 4), "run_end",
       exit_code=run.exit_code)


BARE: dict[str, tuple[int, str]] = {}


def w_bare(run: Run) -> None:
    text = "".join(t + "\n" for _ns, t in run.lines)
    BARE[run.spec["path"]] = (run.end_ns, text)
    run.files.add(run.spec["path"])


# identity: pods live from their deploy until the next successful deploy in the same env
def write_identity() -> None:
    by_env = defaultdict(list)
    for r in RUNS:
        if r.spec["service"] == "identity":
            by_env[r.spec["env"]].append(r)
    for env in ("dev", "staging", "prod"):
        live = None  # (pod, since ns)
        prev_pod = f"identity-{''.join(rng.choice(K8S_ALNUM) for _ in range(10))}-{k8s_suffix()}"
        live = (prev_pod, T(FLEET_START + " 00:00") - 3 * 86400 * NS)
        runs = by_env[env]
        for idx, r in enumerate(runs + [None]):
            until = r.spec["t"] if r is not None else T(FLEET_END + " 23:59:59")
            # health checks of the live pod until `until`
            pod, since = live
            hc = max(since, T(FLEET_START + " 00:00")) + rng.randrange(2 * 3600 * NS)
            while hc < until:
                if hc >= T(FLEET_START + " 00:00"):
                    slog_rec(env, pod, hc, "INFO", "health check ok", status=200,
                             latency_ms=round(rng.uniform(0.6, 4.5), 3))
                hc += int(rng.uniform(1.8, 2.2) * 3600 * NS)
            if r is None:
                break
            s = r.spec
            t = s["t"] - msec(5, 40)
            slog_rec(env, s["pod"], t, "INFO", "starting server", build=s["app_version"],
                     go_version="go1.23.4")
            slog_rec(env, s["pod"], t + msec(3, 9), "INFO", "connecting to database",
                     host=f"identity-db.{env}.internal:5432")
            for i, (ns, text) in enumerate(r.lines):
                if i in r.err_idx:
                    continue
                slog_rec(env, s["pod"], ns, "INFO", text, component="migrate")
            r.files.add(f"slog/identity-{env}")
            if r.error_text is not None:
                slog_rec(env, s["pod"], r.error_ns, "ERROR", "migration failed", error=r.error_text)
                continue  # process exits 1; the old pod keeps serving
            st_ns = r.end_ns
            slog_rec(env, s["pod"], st_ns + usec(100, 900), "INFO", "schema migrations done",
                     component="migrate", schema_version=int(s["_final_version"]))
            ready = st_ns + msec(2, 8)
            slog_rec(env, s["pod"], ready, "INFO", "listening on :8080")
            old_pod = live[0]
            stop = ready + int(rng.uniform(4, 12) * NS)
            slog_rec(env, old_pod, stop, "INFO", "received SIGTERM, shutting down")
            slog_rec(env, old_pod, stop + msec(40, 400), "INFO", "server stopped")
            live = (s["pod"], ready)


# record each identity run's final version (for the app's own "schema migrations done" record)
def tag_final_versions() -> None:
    for r in RUNS:
        if r.spec["service"] == "identity":
            r.spec["_final_version"] = r.version_after


# ---- bad records (each in its own file) ---------------------------------------------------------

BAD: list[tuple[str, str, str]] = []  # (path, where, reason)


def dispatch() -> None:
    for r in RUNS:
        env = r.spec["envelope"]
        {"kubernetes": w_kubernetes, "cri": w_cri, "docker": w_docker, "loki": w_loki,
         "cloudwatch": w_cloudwatch, "events": w_events, "bare": w_bare, "slog": lambda _r: None}[env](r)


def write_file(path: Path, data: bytes, mtime_ns: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    os.utime(path, ns=(mtime_ns, mtime_ns))


def gz(data: bytes, mtime_ns: int) -> bytes:
    buf = io.BytesIO()
    with gzip.GzipFile(filename="", mode="wb", fileobj=buf, compresslevel=9, mtime=mtime_ns // NS) as f:
        f.write(data)
    return buf.getvalue()


def clean() -> None:
    for p in sorted(HERE.iterdir()):
        if p.name in KEEP:
            continue
        if p.is_dir():
            shutil.rmtree(p)
        else:
            p.unlink()


def main() -> None:
    global zstandard
    try:
        import zstandard
    except ImportError:
        sys.exit("generate.py: identity-prod.jsonl.zst needs the `zstandard` package; "
                 "run it with the project venv: .venv/bin/python sample_logs/generate.py")
    # version before each identity run (for the app's summary record)
    tag_final_versions()
    dispatch()
    write_identity()
    clean()

    # --- simple line files (kubernetes, cri, docker, events)
    planted = {
        # kubernetes: one JSON array line in the W44 file
        "kubernetes/orders-2026-W44.jsonl": ("after", 40, b"[1,2,3]",
                                             "a JSON array, not an object: reject `not a JSON object`"),
    }
    # the B2, B3 and B5 release containers in dev carry the planted docker defects
    dpath = lambda name: ("docker/env=dev/service=billing/database=billing/"  # noqa: E731
                          f"{B[name]['container_id']}-json.log")
    truncated, no_time, bom_crlf = dpath("B2-dev"), dpath("B3-dev"), dpath("B5-dev")
    for path in sorted(FILES):
        recs = sorted(FILES[path])
        lines = [b for _ns, _o, b in recs]
        last_ns = recs[-1][0]
        eol = b"\n"
        if path in planted:
            _, idx, raw, reason = planted[path]
            lines.insert(idx, raw)
            BAD.append((path, f"line {idx + 1}", reason))
        if path == truncated:
            # the first record (wait-for-it) was cut off mid-object
            cut = lines[0][: len(lines[0]) * 3 // 5]
            lines[0] = cut
            BAD.append((path, "line 1", "truncated JSON object: reject `invalid JSON`"))
        if path == no_time:
            rec = json.loads(lines[1])
            assert rec["log"].startswith("wait-for-it"), rec
            del rec["time"]
            lines[1] = go_json(rec).encode()
            BAD.append((path, "line 2", "docker record without `time`: reject `missing time` "
                                        "(or accept with ts NULL; never drop silently)"))
        data = eol.join(lines) + eol
        if path == bom_crlf:
            data = b"\xef\xbb\xbf" + b"\r\n".join(lines) + b"\r\n"
            BAD.append((path, "whole file", "UTF-8 BOM + CRLF line ends: NOT bad, every record must be "
                                            "accepted (strip the BOM, accept \\r\\n); 0 rejects"))
        write_file(HERE / path, data, last_ns)

    # empty docker log (a `force 22` container prints nothing)
    p = "docker/env=dev/service=billing/database=billing/empty-json.log"
    write_file(HERE / p, b"", T("2026-11-12 10:59:20"))
    BAD.append((p, "whole file", "zero bytes: an ingested source with 0 lines and 0 rejects, no error"))

    # --- bare text files (no timestamps in default mode: the mtime is the run's end)
    for path, (end_ns, text) in sorted(BARE.items()):
        write_file(HERE / path, text.encode("utf-8"), end_ns)

    # --- loki exports
    LOKI_RECORDS.sort(key=lambda x: (x[0], x[1]))

    def loki_file(name, lo, hi, offset_min=0, bad_after=None):
        out = []
        last = lo
        for ns, _o, labels, text in LOKI_RECORDS:
            if lo <= ns < hi:
                out.append(go_json({"labels": labels, "line": text, "timestamp": rfc3339nano(ns, offset_min)},
                                   sort_keys=True).encode("utf-8"))
                last = ns
        if bad_after is not None:
            out.insert(bad_after, b'{"labels":{"container":"migrate","env":"staging"},"line":"\xff\xfe'
                                  b'2026/10/27 15:2\xc3\x28 Start buffering \xe2\x82","timestamp":"2026-10-27T1')
            BAD.append((f"loki/{name}", f"line {bad_after + 1}",
                        "bytes that are not valid UTF-8: reject `invalid UTF-8` (raw kept, escaped)"))
        write_file(HERE / "loki" / name, b"\n".join(out) + b"\n", last)

    w = lambda d: T(d + " 00:00")  # noqa: E731
    loki_file("billing-staging-2026-W44.jsonl", w("2026-10-26"), w("2026-11-02"), bad_after=7)
    loki_file("billing-staging-2026-W45.jsonl", w("2026-11-02"), w("2026-11-09"))
    loki_file("billing-staging-2026-W45-rerun.jsonl", w("2026-11-06"), w("2026-11-09"))
    loki_file("billing-staging-2026-W46.jsonl", w("2026-11-09"), w("2026-11-16"), offset_min=60)

    # --- cloudwatch
    special = {("tenant_006", "2026-11-10"): "jsonl", ("tenant_008", "2026-11-05"): "subscription",
               ("tenant_005", "2026-11-12"): "s3export"}
    for (tenant, day), evs in sorted(CW_EVENTS.items()):
        evs.sort(key=lambda x: (x[0], x[1]))
        last_ms = evs[-1][0]
        kind = special.get((tenant, day), "filter")
        base = f"cloudwatch/env=prod/service=billing/database={tenant}/{day}"
        if kind == "filter":
            doc = {"events": [e for _m, _o, e, _r in evs], "searchedLogStreams": []}
            data = json.dumps(doc, indent=4, ensure_ascii=False).encode("utf-8") + b"\n"
            path = base + ".json"
            write_file(HERE / path, data, last_ms * MS)
        elif kind == "jsonl":
            path = base + ".jsonl"
            data = b"".join(plain_json(e).encode("utf-8") + b"\n" for _m, _o, e, _r in evs)
            write_file(HERE / path, data, last_ms * MS)
        elif kind == "subscription":
            path = base + ".json.gz"
            streams = sorted({e["logStreamName"] for _m, _o, e, _r in evs})
            assert len(streams) == 1, streams
            payload = {"messageType": "DATA_MESSAGE", "owner": "123456789012", "logGroup": "/ecs/billing-migrate",
                       "logStream": streams[0], "subscriptionFilters": ["to-s3"],
                       "logEvents": [{"id": e["eventId"], "timestamp": e["timestamp"], "message": e["message"]}
                                     for _m, _o, e, _r in evs]}
            write_file(HERE / path, gz(plain_json(payload).encode("utf-8"), last_ms * MS), last_ms * MS)
        else:
            streams = sorted({e["logStreamName"] for _m, _o, e, _r in evs})
            assert len(streams) == 1, streams
            path = f"text/cloudwatch-export/env=prod/service=billing/database={tenant}/export-000000.log.gz"
            text = "".join(f"{iso_ms(e['timestamp'] * MS)} {e['message']}\n" for _m, _o, e, _r in evs)
            write_file(HERE / path, gz(text.encode("utf-8"), last_ms * MS), last_ms * MS)
        for _m, _o, _e, r in evs:
            r.files.add(path)

    # --- slog (identity); prod is zstd-compressed
    for env, recs in sorted(SLOG.items()):
        recs.sort(key=lambda x: (x[0], x[1]))
        data = b"".join(line.encode("utf-8") + b"\n" for _ns, _o, line in recs)
        last = recs[-1][0]
        if env == "prod":
            data = zstandard.ZstdCompressor(level=9, write_checksum=True).compress(data)
            path = f"slog/identity-{env}.jsonl.zst"
        else:
            path = f"slog/identity-{env}.jsonl"
        write_file(HERE / path, data, last)
        for r in RUNS:
            if f"slog/identity-{env}" in r.files:
                r.files.discard(f"slog/identity-{env}")
                r.files.add(path)

    report()


def report() -> None:
    print("runs:", len(RUNS))
    cnt = defaultdict(lambda: defaultdict(int))
    for r in RUNS:
        cnt[(r.spec["service"], r.spec["env"])][r.outcome] += 1
    for k in sorted(cnt):
        print(" ", k, dict(sorted(cnt[k].items())))
    print("\nincidents:")
    for r in RUNS:
        tag = r.spec.get("tag")
        if tag:
            first = r.lines[0][0] if r.lines else r.spec["t"]
            print(f"  [{tag}]\n      {r.spec['service']}/{r.spec['env']}/{r.spec['db']} "
                  f"{iso_ms(first)} outcome={r.outcome} exit={r.exit_code} applied={r.applied}\n"
                  f"      files={sorted(r.files)}")
            if r.spec["envelope"] == "kubernetes":
                print(f"      pod={r.spec['pod']['pod_name']}")
            if r.spec["envelope"] == "cloudwatch":
                print(f"      logStream=migrate/migrate/{r.spec['task_id']}")
            if r.spec["envelope"] in ("slog",):
                print(f"      pod={r.spec['pod']}")
            if r.spec["envelope"] == "events":
                print(f"      run_id={r.spec['run_id']}")
            for ns, text in r.lines[:40]:
                print(f"        {rfc3339nano(ns)} | {text}")
    print("\n23/u own times in prod (ms):")
    for r in RUNS:
        s = r.spec
        if s["service"] == "billing" and s["env"] == "prod":
            for ns, text in r.lines:
                if "Finished 23/u" in text:
                    print(f"   {iso_ms(ns)} {s['db']} {text[20:]}")
    print("\nbad records:")
    for b in BAD:
        print("  ", b)
    print("\nfinal states:")
    for k in sorted(STATE):
        print("  ", k, STATE[k].version, "dirty" if STATE[k].dirty else "")


if __name__ == "__main__":
    main()
