"""Stage 6, alert: open findings to e-mail and on-call channels (Slack, PagerDuty, Alertmanager, a webhook,
Jira), the way Alertmanager does it, inside a batch job.

Rules match findings and route them; an alert's identity is a fingerprint of its rule and labels, so a
finding that stays open is not re-sent before its `repeat_interval`; a resolved notice goes out when it
closes; silences hold it back until they expire. One e-mail per route per run lists its alerts.

Delivery is durable: notifications are recorded as `pending` before anything is sent and cleared only once
the server accepted them, so a failed send is retried on the next run and a delivered one is never re-sent.

One module per concern: rules (the rules file), state (firing alerts, silences, the plan), mail (the
e-mail and SMTP), channels (request bodies), http (a request and its retries), deliveries (state per alert and
channel, escalation); this module runs them in order.
"""

from __future__ import annotations

import hashlib
import json
import smtplib
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import duckdb

from pipeline.alerts.deliveries import Channels, due, plan_channels
from pipeline.alerts.mail import compose, send
from pipeline.alerts.rules import Rules, load_rules, parse_interval
from pipeline.alerts.state import LABELS, firing_alerts, naive_utc, plan
from pipeline.core.errors import ConfigError
from pipeline.core.redact import redact
from pipeline.core.weeks import Week
from pipeline.warehouse import transaction

__all__ = ["AlertResult", "Rules", "add_silence", "alert", "compose", "firing_alerts", "load_rules",
           "parse_interval"]


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
    notes: tuple[str, ...] = field(default_factory=tuple)  # said to the person running it, one `note:` line each
    channels_sent: int = 0  # requests the HTTP channels (and escalation e-mail) accepted
    channels_failed: int = 0  # channel deliveries that failed: kept pending, or rejected (4xx)
    channel_outbox: tuple[Path, ...] = field(default_factory=tuple)  # dry run: the would-be requests
    channel_errors: tuple[str, ...] = field(default_factory=tuple)

    def summary(self) -> str:
        where = f"{len(self.outbox)} written to the outbox" if self.outbox else f"{self.emails_sent} sent"
        text = (f"alerts: {self.firing} firing, {self.resolved} resolved, {self.silenced} silenced; "
                f"e-mails: {where}")
        if self.emails_failed:
            text += f", {self.emails_failed} failed and kept pending ({self.errors[0]})"
        if self.channel_outbox:
            text += f"; channels: {len(self.channel_outbox)} written to the outbox"
        elif self.channels_sent or self.channels_failed:
            text += f"; channels: {self.channels_sent} sent"
            if self.channels_failed:
                text += f", {self.channels_failed} failed ({self.channel_errors[0]})"
        return "\n".join([text, *(f"note: {n}" for n in self.notes)])


def alert(con: duckdb.DuckDBPyConnection, *, rules: Rules, as_of: datetime, out: Path,
          dry_run: bool = False) -> AlertResult:
    """Evaluate the rules over open findings, update alert state and deliver what is due."""
    with transaction(con, commit=not dry_run):  # a dry run previews: the state stays as it was
        planned = plan(con, rules, as_of)
        plan_channels(con, rules, as_of, planned.alerts or {})
        work = due(con, planned.alerts or {})
    notes, firing, resolved, silenced = planned.notes, planned.firing, planned.resolved, planned.silenced
    routes = {r.name: r for r in rules.routes}
    by_route: dict[str, list[dict]] = {}
    for n in notes:
        by_route.setdefault(n["route"], []).append(n)
    report_link = _review_link(rules, out, as_of)
    sent = failed = 0
    outbox: list[Path] = []
    errors: list[str] = []
    to_outbox = dry_run or rules.smtp.host is None
    for name, group in sorted(by_route.items()):
        fps = [n["fingerprint"] for n in group]
        if not routes[name].to:  # no e-mail on this route: its channels carry the notice (alert_deliveries)
            if not dry_run:
                con.execute("UPDATE alerts SET sends = sends + 1, last_sent_at = ?, last_error = NULL, pending = NULL "
                            "WHERE list_contains(?, fingerprint)", [as_of, fps])
            continue
        msg = compose(routes[name], group, rules, now=as_of, report=report_link)
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
                send(rules.smtp, msg)
            except (OSError, smtplib.SMTPException) as e:
                failed += 1
                error = redact(f"{type(e).__name__}: {e}")[:300]
                errors.append(f"{name}: {error}")
                con.execute("UPDATE alerts SET last_error = ? WHERE list_contains(?, fingerprint)", [error, fps])
                continue
        sent += 1
        con.execute("UPDATE alerts SET sends = sends + 1, last_sent_at = ?, last_error = NULL, pending = NULL "
                    "WHERE list_contains(?, fingerprint)", [as_of, fps])
    done = Channels(con, rules, now=as_of, out=out, report=report_link, dry_run=dry_run).run(work)
    return AlertResult(firing, resolved, silenced, sent if not to_outbox else 0, failed, tuple(outbox), tuple(errors),
                       planned.remarks, done.sent, done.failed, tuple(done.outbox) if dry_run else (),
                       tuple(done.errors))


def _review_link(rules: Rules, out: Path, as_of: datetime) -> str | None:
    """The weekly review the alerts are about: the last complete week before the clock (what `run` writes)."""
    week = Week.before(as_of).label
    if rules.defaults.report_url:
        return f"{rules.defaults.report_url.rstrip('/')}/{week}.html"
    page = out / "reports" / f"{week}.html"
    return str(page.resolve()) if page.exists() else None


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
        ends = now + parse_interval(duration) if duration else naive_utc(datetime.fromisoformat(str(until)))
    except ValueError as e:
        raise ConfigError(f"silence: {e} (e.g. --for 4h or --until 2026-11-20T00:00:00Z)") from None
    if ends <= now:
        raise ConfigError(f"silence: it would end at {ends:%Y-%m-%d %H:%M}, before the clock (check --until)")
    silence_id = hashlib.sha256(json.dumps([pairs, str(now), str(ends)], sort_keys=True).encode()).hexdigest()[:12]
    con.execute("INSERT INTO silences VALUES (?, ?, ?, ?, ?, ?)",
                [silence_id, json.dumps(pairs, sort_keys=True), now, ends, redact(comment), created_by])
    matched = ", ".join(f"{k}={v}" for k, v in sorted(pairs.items()))
    return f"silence {silence_id}: {matched} until {ends:%Y-%m-%d %H:%M} UTC"
