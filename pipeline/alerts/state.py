"""Alert state: which open findings fire under the rules (one alert per rule and label set), which silences
hold them back, and the plan of notifications due now, recorded as pending in the `alerts` table."""

from __future__ import annotations

import fnmatch
import hashlib
import json
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import duckdb

from pipeline.alerts.rules import Rule, Rules, Silence, parse_interval
from pipeline.core.redact import redact
from pipeline.core.vocabulary import severity_rank

LABELS = ("kind", "env", "service", "database", "version")


@dataclass
class Alert:
    """One alert identity as this run sees it."""

    fingerprint: str
    rule: str
    route: str
    severity: str
    labels: dict[str, str]
    summary: str
    runbook: str = ""
    repeat: timedelta = timedelta(hours=24)
    observed: float | None = None
    expected: float | None = None
    unit: str | None = None


def _fingerprint(rule: str, labels: dict[str, str]) -> str:
    return hashlib.sha256(json.dumps({"rule": rule, **labels}, sort_keys=True).encode()).hexdigest()[:16]


def _matches(rule: Rule, f: dict) -> bool:
    if rule.kinds and f["kind"] not in rule.kinds:
        return False
    if f["severity"] not in rule.severities:
        return False
    if rule.envs and not any(fnmatch.fnmatchcase(f["env"], g) for g in rule.envs):
        return False
    if rule.services and not any(fnmatch.fnmatchcase(f["service"], g) for g in rule.services):
        return False
    if rule.min_observed is not None and (f["observed"] is None or f["observed"] < rule.min_observed):
        return False
    if rule.min_ratio is not None and (
        f["observed"] is None or not f["expected"] or f["observed"] / f["expected"] < rule.min_ratio
    ):
        return False
    return not (rule.min_score is not None and (f["score"] is None or f["score"] < rule.min_score))


def _silenced(labels: dict[str, str], silences: list[Silence], now: datetime) -> bool:
    for s in silences:
        if s.until <= now or (s.starts is not None and s.starts > now):
            continue
        if all(fnmatch.fnmatchcase(labels.get(k, ""), v) for k, v in s.matchers.items()):
            return True
    return False


def naive_utc(ts: datetime) -> datetime:
    """UTC without tzinfo, as the warehouse keeps time."""
    return ts if ts.tzinfo is None else ts.astimezone(UTC).replace(tzinfo=None)


def _all_silences(con: duckdb.DuckDBPyConnection, rules: Rules) -> list[Silence]:
    stored = [Silence(matchers=json.loads(m), starts=s, until=e, comment=c, created_by=b)
              for m, s, e, c, b in con.execute(
                  "SELECT matchers, starts_at, ends_at, comment, created_by FROM silences").fetchall()]
    return [s.model_copy(update={"until": naive_utc(s.until), "starts": naive_utc(s.starts) if s.starts else None})
            for s in [*rules.silences, *stored]]


def firing_alerts(con: duckdb.DuckDBPyConnection, rules: Rules) -> dict[str, Alert]:
    """Open findings matched by the rules, one alert per rule and label set (the worst severity wins)."""
    cur = con.execute("SELECT kind, severity, env, service, database, version, observed, expected, score, "
                      "explanation, runbook, unit FROM findings WHERE status = 'open' ORDER BY ts, finding_id")
    names = [d[0] for d in cur.description]
    default_repeat = parse_interval(rules.defaults.repeat_interval)
    alerts: dict[str, Alert] = {}
    for row in cur.fetchall():
        f = dict(zip(names, row, strict=True))
        for rule in rules.rules:
            if not _matches(rule, f):
                continue
            labels = {k: "" if f[k] is None else str(f[k]) for k in LABELS}
            fp = _fingerprint(rule.name, labels)
            repeat = parse_interval(rule.repeat_interval) if rule.repeat_interval else default_repeat
            current = alerts.get(fp)
            if current is None or severity_rank(f["severity"]) < severity_rank(current.severity):
                alerts[fp] = Alert(fp, rule.name, rule.route, f["severity"], labels, redact(f["explanation"]),
                                   f["runbook"] or "", repeat, f["observed"], f["expected"], f["unit"])
    return alerts


def history(con: duckdb.DuckDBPyConnection, fp: str, rule: str, event: str, at: datetime, fired_at: datetime,
             detail: str | None = None) -> None:
    con.execute("INSERT INTO alert_history VALUES (?, ?, ?, ?, ?, ?)", [fp, rule, event, at, fired_at, detail])


def note(fp: str, rule: str, route: str, severity: str, labels: str, summary: str, state: str | None,
         first: datetime, sends: int, alert: Alert | None) -> dict:
    """One notification as the channels render it (figures and runbook only while its finding is open)."""
    return {"fingerprint": fp, "rule": rule, "route": route, "severity": severity, "labels": json.loads(labels),
            "summary": summary, "state": state, "first_fired_at": first, "sends": sends,
            "runbook": alert.runbook if alert else "", "observed": alert.observed if alert else None,
            "expected": alert.expected if alert else None, "unit": alert.unit if alert else None}


@dataclass(frozen=True)
class Plan:
    """The notifications due now, the counts, and notes for the person running it."""

    notes: list[dict]
    firing: int
    resolved: int
    silenced: int
    remarks: tuple[str, ...] = ()
    alerts: dict[str, Alert] | None = None  # the firing alerts, by fingerprint


def plan(con: duckdb.DuckDBPyConnection, rules: Rules, now: datetime) -> Plan:
    """Decide, and record as pending, every notification due now."""
    firing = firing_alerts(con, rules)
    silences = _all_silences(con, rules)
    cur = con.execute("SELECT fingerprint, rule, status, last_sent_at, pending, sends, first_fired_at FROM alerts")
    state = {r[0]: dict(zip([d[0] for d in cur.description], r, strict=True)) for r in cur.fetchall()}
    notes: list[dict] = []
    silenced = resolved = 0
    for fp, a in firing.items():
        labels_json = json.dumps(a.labels, sort_keys=True)
        old = state.get(fp)
        quiet = _silenced({"rule": a.rule, **a.labels}, silences, now)
        silenced += quiet
        if old is None or old["status"] == "resolved":
            history(con, fp, a.rule, "fired", now, now)
            if quiet:
                history(con, fp, a.rule, "silenced", now, now)
            if old is not None:
                con.execute("DELETE FROM alerts WHERE fingerprint = ?", [fp])
            con.execute("INSERT INTO alerts VALUES (?, ?, ?, ?, ?, ?, NULL, 0, NULL, NULL, ?, ?, ?, ?)",
                        [fp, a.rule, fp, a.severity, "silenced" if quiet else "firing", now, a.route, labels_json,
                         a.summary, None if quiet else "firing"])
        else:
            due = old["pending"] is not None or old["last_sent_at"] is None \
                or old["last_sent_at"] + a.repeat <= now
            status = "silenced" if quiet else "firing"
            if quiet and old["status"] != "silenced":
                history(con, fp, a.rule, "silenced", now, old["first_fired_at"])
            if not quiet and due and old["pending"] is None and old["last_sent_at"] is not None:
                history(con, fp, a.rule, "repeat", now, old["first_fired_at"])
            pending = None if quiet else ("firing" if due or old["pending"] == "firing" else old["pending"])
            con.execute("UPDATE alerts SET status = ?, severity = ?, summary = ?, route = ?, pending = ? "
                        "WHERE fingerprint = ?", [status, a.severity, a.summary, a.route, pending, fp])
    # The rules file may change at any time: an alert follows its rule's current route; an alert whose rule
    # is gone is resolved without a notice (nobody routes it any more) and said once in a note.
    current_route = {r.name: r.route for r in rules.rules}
    gone: list[str] = []
    for fp, old in state.items():
        if fp in firing or old["status"] == "resolved":
            continue
        orphan = old["rule"] not in current_route
        # Only people who were told it fired are told it resolved; an undelivered firing notice is dropped.
        notify = rules.defaults.send_resolved and old["status"] == "firing" and old["sends"] > 0 and not orphan
        resolved += 1
        history(con, fp, old["rule"], "resolved", now, old["first_fired_at"])
        if orphan:
            gone.append(old["rule"])
        con.execute("UPDATE alerts SET status = 'resolved', resolved_at = ?, pending = ?, route = coalesce(?, route) "
                    "WHERE fingerprint = ?", [now, "resolved" if notify else None, current_route.get(old["rule"]), fp])
    for row in con.execute("SELECT fingerprint, rule, route, severity, labels, summary, pending, first_fired_at, "
                           "sends FROM alerts WHERE pending IS NOT NULL ORDER BY first_fired_at, fingerprint").fetchall():
        fp, rule, route, severity, labels, summary, pending, first, sends = row
        notes.append(note(fp, rule, current_route.get(rule, route), severity, labels, summary, pending, first, sends,
                          firing.get(fp)))
    remarks = tuple(f"rule {name!r} is no longer in the rules file: {n} of its alerts resolved without a notice"
                    for name, n in sorted(Counter(gone).items()))
    return Plan(notes, len(firing) - silenced, resolved, silenced, remarks, firing)
