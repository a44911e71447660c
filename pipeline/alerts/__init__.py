"""Stage 6, alert: open findings to e-mail, the way Alertmanager does it, inside a batch job.

Rules match findings and route them; an alert's identity is a fingerprint of its rule and labels, so a
finding that stays open is not re-sent before its `repeat_interval`; a resolved notice goes out when it
closes; silences hold it back until they expire. One e-mail per route per run lists its alerts.

Delivery is durable: notifications are recorded as `pending` before anything is sent and cleared only once
the server accepted them, so a failed send is retried on the next run and a delivered one is never re-sent.
"""

from __future__ import annotations

import fnmatch
import hashlib
import json
import os
import re
import smtplib
import ssl
import tomllib
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid
from pathlib import Path
from typing import Literal

import duckdb
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from pipeline.core.assets import default_rules
from pipeline.core.errors import ConfigError
from pipeline.core.redact import redact
from pipeline.core.render import environment
from pipeline.core.vocabulary import severity_rank

_DURATION = re.compile(r"^(\d+(?:\.\d+)?)(m|h|d)$")
LABELS = ("kind", "env", "service", "database", "version")


def parse_interval(text: str) -> timedelta:
    """`30m`, `4h`, `7d` as a timedelta."""
    m = _DURATION.match(text.strip())
    if not m:
        raise ValueError(f"{text!r} is not a duration like 30m, 4h or 7d")
    value, unit = float(m.group(1)), m.group(2)
    return timedelta(minutes=value) if unit == "m" else timedelta(hours=value) if unit == "h" else timedelta(days=value)


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Defaults(_Model):
    repeat_interval: str = Field("24h", description="A firing alert is not re-sent before this (30m, 4h, 7d).")
    send_resolved: bool = Field(True, description="Send a notice when an alert's finding resolves.")
    report_url: str | None = Field(None, description="Link to the weekly reviews put in every e-mail.")

    @field_validator("repeat_interval")
    @classmethod
    def _interval(cls, v: str) -> str:
        parse_interval(v)
        return v


class Smtp(_Model):
    host: str | None = Field(None, description="SMTP server; unset means e-mails go to --out/outbox/ as .eml files.")
    port: int = Field(587, ge=1, le=65535, description="SMTP port (587 STARTTLS, 465 implicit TLS, 25 plain).")
    security: Literal["none", "starttls", "tls"] = Field("starttls", description="Transport security.")
    username: str | None = Field(None, description="Login name; no login when unset.")
    password_env: str = Field("MIGRATE_LENS_SMTP_PASSWORD",
                              description="Environment variable holding the password (never the file).")
    sender: str = Field("migrate-lens <migrate-lens@localhost>", description="The From address.")
    ca_file: str | None = Field(None, description="CA bundle to verify the server's certificate (default: system).")
    timeout_seconds: float = Field(10.0, gt=0, description="Connect and command timeout.")


class Route(_Model):
    name: str = Field(description="Route name that rules point to.")
    to: list[str] = Field(min_length=1, description="Recipients of this route's e-mail.")


class Rule(_Model):
    name: str = Field(description="Rule name; part of every alert's identity.")
    kinds: list[str] = Field(default_factory=list, description="Finding kinds it matches (empty: any).")
    severities: list[str] = Field(default_factory=lambda: ["critical", "warning"],
                                  description="Finding severities it matches.")
    envs: list[str] = Field(default_factory=list, description="Env globs it matches (empty: any).")
    services: list[str] = Field(default_factory=list, description="Service globs it matches (empty: any).")
    min_observed: float | None = Field(None, description="Only findings whose observed figure is at least this "
                                                         "(dirty minutes, failure rate, count).")
    min_ratio: float | None = Field(None, description="Only findings whose observed / expected is at least this.")
    min_score: float | None = Field(None, description="Only findings whose score is at least this.")
    route: str = Field(description="The route its alerts are sent to.")
    repeat_interval: str | None = Field(None, description="Overrides defaults.repeat_interval.")

    @field_validator("repeat_interval")
    @classmethod
    def _interval(cls, v: str | None) -> str | None:
        if v is not None:
            parse_interval(v)
        return v


class Silence(_Model):
    matchers: dict[str, str] = Field(description="Label -> value (glob) that all must match: rule, kind, env, "
                                                 "service, database, version.")
    until: datetime = Field(description="When the silence expires (UTC).")
    starts: datetime | None = Field(None, description="When it begins (default: always).")
    comment: str = Field("", description="Why.")
    created_by: str = Field("", description="Who.")


class Rules(_Model):
    defaults: Defaults = Field(default_factory=Defaults, description="Repeat interval, resolved notices.")
    smtp: Smtp = Field(default_factory=Smtp, description="Where e-mail goes.")
    routes: list[Route] = Field(default_factory=list, description="Recipient groups.")
    rules: list[Rule] = Field(default_factory=list, description="Which findings alert, and where to.")
    silences: list[Silence] = Field(default_factory=list, description="Alerts held back until they expire.")

    @model_validator(mode="after")
    def _routes_exist(self) -> Rules:
        names = {r.name for r in self.routes}
        for rule in self.rules:
            if rule.route not in names:
                raise ValueError(f"rule {rule.name!r} routes to {rule.route!r}, which is not a [[routes]] name")
        if len({r.name for r in self.rules}) != len(self.rules):
            raise ValueError("rule names must be unique")
        return self


def load_rules(path: Path | None) -> Rules:
    """The rules file (TOML), or the shipped default; every mistake is named on one line."""
    where = str(path) if path else "default alert rules"
    try:
        text = path.read_text(encoding="utf-8") if path else \
            default_rules().read_text(encoding="utf-8")
        return Rules.model_validate(tomllib.loads(text))
    except FileNotFoundError:
        raise ConfigError(f"{where}: rules file not found (check --rules)") from None
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"{where}: not valid TOML: {e} (fix the file)") from None
    except ValidationError as e:
        problems = "; ".join(f"{'.'.join(str(p) for p in err['loc']) or '(top level)'}: {err['msg']}"
                             for err in e.errors())
        raise ConfigError(f"{where}: {problems} (fix the rules file)") from None


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


@dataclass(frozen=True)
class AlertResult:
    """What one alert run did."""

    firing: int
    resolved: int
    silenced: int
    emails_sent: int
    emails_failed: int
    outbox: tuple[Path, ...] = field(default_factory=tuple)
    errors: tuple[str, ...] = field(default_factory=tuple)

    def summary(self) -> str:
        where = f"{len(self.outbox)} written to the outbox" if self.outbox else f"{self.emails_sent} sent"
        text = (f"alerts: {self.firing} firing, {self.resolved} resolved, {self.silenced} silenced; "
                f"e-mails: {where}")
        if self.emails_failed:
            text += f", {self.emails_failed} failed and kept pending ({self.errors[0]})"
        return text


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


def _naive(ts: datetime) -> datetime:
    """UTC without tzinfo, as the warehouse keeps time."""
    return ts if ts.tzinfo is None else ts.astimezone(UTC).replace(tzinfo=None)


def _all_silences(con: duckdb.DuckDBPyConnection, rules: Rules) -> list[Silence]:
    stored = [Silence(matchers=json.loads(m), starts=s, until=e, comment=c, created_by=b)
              for m, s, e, c, b in con.execute(
                  "SELECT matchers, starts_at, ends_at, comment, created_by FROM silences").fetchall()]
    return [s.model_copy(update={"until": _naive(s.until), "starts": _naive(s.starts) if s.starts else None})
            for s in [*rules.silences, *stored]]


def firing_alerts(con: duckdb.DuckDBPyConnection, rules: Rules) -> dict[str, Alert]:
    """Open findings matched by the rules, one alert per rule and label set (the worst severity wins)."""
    cur = con.execute("SELECT kind, severity, env, service, database, version, observed, expected, score, "
                      "explanation, runbook FROM findings WHERE status = 'open' ORDER BY ts, finding_id")
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
                                   f["runbook"] or "", repeat)
    return alerts


def _plan(con: duckdb.DuckDBPyConnection, rules: Rules, now: datetime) -> tuple[list[dict], int, int, int]:
    """Decide, and record as pending, every notification due now. Returns (notifications, firing, resolved,
    silenced)."""
    firing = firing_alerts(con, rules)
    silences = _all_silences(con, rules)
    cur = con.execute("SELECT fingerprint, status, last_sent_at, pending, sends FROM alerts")
    state = {r[0]: dict(zip([d[0] for d in cur.description], r, strict=True)) for r in cur.fetchall()}
    notes: list[dict] = []
    silenced = resolved = 0
    for fp, a in firing.items():
        labels_json = json.dumps(a.labels, sort_keys=True)
        old = state.get(fp)
        quiet = _silenced({"rule": a.rule, **a.labels}, silences, now)
        silenced += quiet
        if old is None or old["status"] == "resolved":
            if old is not None:
                con.execute("DELETE FROM alerts WHERE fingerprint = ?", [fp])
            con.execute("INSERT INTO alerts VALUES (?, ?, ?, ?, ?, ?, NULL, 0, NULL, NULL, ?, ?, ?, ?)",
                        [fp, a.rule, fp, a.severity, "silenced" if quiet else "firing", now, a.route, labels_json,
                         a.summary, None if quiet else "firing"])
        else:
            due = old["pending"] is not None or old["last_sent_at"] is None \
                or old["last_sent_at"] + a.repeat <= now
            status = "silenced" if quiet else "firing"
            pending = None if quiet else ("firing" if due or old["pending"] == "firing" else old["pending"])
            con.execute("UPDATE alerts SET status = ?, severity = ?, summary = ?, route = ?, pending = ? "
                        "WHERE fingerprint = ?", [status, a.severity, a.summary, a.route, pending, fp])
    for fp, old in state.items():
        if fp in firing or old["status"] == "resolved":
            continue
        # Only people who were told it fired are told it resolved; an undelivered firing notice is dropped.
        notify = rules.defaults.send_resolved and old["status"] == "firing" and old["sends"] > 0
        resolved += 1
        con.execute("UPDATE alerts SET status = 'resolved', resolved_at = ?, pending = ? WHERE fingerprint = ?",
                    [now, "resolved" if notify else None, fp])
    for row in con.execute("SELECT fingerprint, rule, route, severity, labels, summary, pending, first_fired_at, "
                           "sends FROM alerts WHERE pending IS NOT NULL ORDER BY first_fired_at, fingerprint").fetchall():
        fp, rule, route, severity, labels, summary, pending, first, sends = row
        runbook = firing[fp].runbook if fp in firing else ""
        notes.append({"fingerprint": fp, "rule": rule, "route": route, "severity": severity,
                      "labels": json.loads(labels), "summary": summary, "state": pending, "first_fired_at": first,
                      "sends": sends, "runbook": runbook})
    return notes, len(firing) - silenced, resolved, silenced


def _subject(route: str, notes: list[dict]) -> str:
    worst = min((n["severity"] for n in notes if n["state"] == "firing"),
                key=severity_rank, default="resolved")
    firing = sum(n["state"] == "firing" for n in notes)
    resolved = len(notes) - firing
    parts = [f"{firing} firing"] + ([f"{resolved} resolved"] if resolved else [])
    return f"[migrate-lens] {worst.upper()}: {', '.join(parts)} ({route})"


def compose(route: Route, notes: list[dict], rules: Rules, *, now: datetime, report: str | None) -> EmailMessage:
    """One multipart e-mail (plain text and HTML) listing a route's notifications."""
    env = environment()
    context = {"notes": notes, "route": route.name, "now": now, "report": report}
    msg = EmailMessage()
    msg["Subject"] = _subject(route.name, notes)
    msg["From"] = rules.smtp.sender
    msg["To"] = ", ".join(route.to)
    msg["Date"] = format_datetime(now.replace(tzinfo=UTC))
    msg["Message-ID"] = make_msgid(domain="migrate-lens")
    msg.set_content(env.get_template("alert.txt.j2").render(**context))
    msg.add_alternative(env.get_template("alert.html.j2").render(**context), subtype="html")
    return msg


def _send(smtp: Smtp, msg: EmailMessage) -> None:
    context = ssl.create_default_context(cafile=smtp.ca_file) if smtp.security != "none" else None
    client: smtplib.SMTP
    if smtp.security == "tls":
        client = smtplib.SMTP_SSL(smtp.host or "", smtp.port, timeout=smtp.timeout_seconds, context=context)
    else:
        client = smtplib.SMTP(smtp.host or "", smtp.port, timeout=smtp.timeout_seconds)
    with client:
        if smtp.security == "starttls":
            client.starttls(context=context)
        if smtp.username:
            password = os.environ.get(smtp.password_env)
            if password is None:
                raise ConfigError(f"smtp.password_env: ${smtp.password_env} is not set (export the SMTP password)")
            client.login(smtp.username, password)
        client.send_message(msg)


def alert(con: duckdb.DuckDBPyConnection, *, rules: Rules, as_of: datetime, out: Path,
          dry_run: bool = False) -> AlertResult:
    """Evaluate the rules over open findings, update alert state and deliver what is due."""
    con.execute("BEGIN TRANSACTION")
    try:
        notes, firing, resolved, silenced = _plan(con, rules, as_of)
    except BaseException:
        con.execute("ROLLBACK")
        raise
    if dry_run:
        con.execute("ROLLBACK")  # a dry run previews: the state stays as it was
    else:
        con.execute("COMMIT")
    routes = {r.name: r for r in rules.routes}
    by_route: dict[str, list[dict]] = {}
    for n in notes:
        by_route.setdefault(n["route"], []).append(n)
    latest = sorted((out / "reports").glob("????-W??.html"))
    report_link = rules.defaults.report_url or (str(latest[-1].resolve()) if latest else None)
    sent = failed = 0
    outbox: list[Path] = []
    errors: list[str] = []
    to_outbox = dry_run or rules.smtp.host is None
    for name, group in sorted(by_route.items()):
        msg = compose(routes[name], group, rules, now=as_of, report=report_link)
        fps = [n["fingerprint"] for n in group]
        if to_outbox:
            folder = out / "outbox"
            folder.mkdir(parents=True, exist_ok=True)
            path = folder / f"{as_of:%Y%m%dT%H%M%S}-{name}.eml"
            path.write_bytes(bytes(msg))
            outbox.append(path)
            if dry_run:
                continue
        else:
            try:
                _send(rules.smtp, msg)
            except (OSError, smtplib.SMTPException) as e:
                failed += 1
                error = redact(f"{type(e).__name__}: {e}")[:300]
                errors.append(f"{name}: {error}")
                con.execute("UPDATE alerts SET last_error = ? WHERE list_contains(?, fingerprint)", [error, fps])
                continue
        sent += 1
        con.execute("UPDATE alerts SET sends = sends + 1, last_sent_at = ?, last_error = NULL, pending = NULL "
                    "WHERE list_contains(?, fingerprint)", [as_of, fps])
    return AlertResult(firing, resolved, silenced, sent if not to_outbox else 0, failed, tuple(outbox), tuple(errors))


def add_silence(con: duckdb.DuckDBPyConnection, *, matchers: list[str], duration: str | None, until: str | None,
                comment: str, created_by: str, now: datetime) -> str:
    """Store a silence; returns the line the CLI prints."""
    pairs: dict[str, str] = {}
    for m in matchers:
        key, sep, value = m.partition("=")
        if not sep or key not in ("rule", *LABELS):
            raise ConfigError(f"--match {m}: use LABEL=GLOB with LABEL one of rule, {', '.join(LABELS)}")
        pairs[key] = value
    if (duration is None) == (until is None):
        raise ConfigError("silence: give exactly one of --for DURATION or --until TIMESTAMP")
    try:
        ends = now + parse_interval(duration) if duration else _naive(datetime.fromisoformat(str(until)))
    except ValueError as e:
        raise ConfigError(f"silence: {e} (e.g. --for 4h or --until 2026-11-20T00:00:00Z)") from None
    if ends <= now:
        raise ConfigError(f"silence: it would end at {ends:%Y-%m-%d %H:%M}, before the clock (check --until)")
    silence_id = hashlib.sha256(json.dumps([pairs, str(now), str(ends)], sort_keys=True).encode()).hexdigest()[:12]
    con.execute("INSERT INTO silences VALUES (?, ?, ?, ?, ?, ?)",
                [silence_id, json.dumps(pairs, sort_keys=True), now, ends, redact(comment), created_by])
    matched = ", ".join(f"{k}={v}" for k, v in sorted(pairs.items()))
    return f"silence {silence_id}: {matched} until {ends:%Y-%m-%d %H:%M} UTC"
