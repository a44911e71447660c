"""Delivery per alert and channel (`alert_deliveries`): which notices each channel is due, and sending them.

Every channel keeps its own state, the way Alertmanager keeps a notification log per receiver: a notice is
recorded `pending` before any request, marked `delivered` the moment a receiver accepts it (each in its own
statement, so nothing accepted is ever sent again), retried next run after a transient failure, and
`rejected` after a 4xx until the channel's settings (`config_hash`) change. A channel is told an alert
resolved only if it was told it fired. Routes reached by escalation get their channels (their e-mail too)
through the same rows; the primary route's e-mail keeps its state in `alerts`, as before.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import smtplib
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from urllib.parse import quote, urlsplit

import duckdb
import httpx

from pipeline.alerts import channels as ch
from pipeline.alerts.http import Answer, scrub, send
from pipeline.alerts.mail import compose
from pipeline.alerts.mail import send as send_mail
from pipeline.alerts.rules import Route, Rules, parse_interval
from pipeline.alerts.state import Alert, history, note
from pipeline.core.redact import MASK, redact

BATCHED = ("email", "slack", "alertmanager", "webhook")  # one request per route per run; the others one per alert
_SECRET_KEYS = ("url_env", "routing_key_env", "secret_env", "user_env", "token_env")


@dataclass
class Outcome:
    """What the channels did in one run."""

    sent: int = 0
    failed: int = 0
    errors: list[str] = field(default_factory=list)
    outbox: list[Path] = field(default_factory=list)


def _settings(rules: Rules, route: Route, kind: str) -> object:
    if kind == "email":
        return {"to": route.to, "smtp": rules.smtp.model_dump(mode="json")}
    return getattr(route, kind).model_dump(mode="json")


def secret_names(rules: Rules, route: Route, kind: str) -> list[str]:
    """The environment variables a channel reads its secrets from."""
    if kind == "email":
        return [rules.smtp.password_env] if rules.smtp.username else []
    config = getattr(route, kind)
    return [name for key in _SECRET_KEYS if (name := getattr(config, key, None))]


def all_secrets(rules: Rules) -> list[str]:
    """Every secret any channel reads (and, for a secret URL, its path and long segments): what errors are
    scrubbed of, whichever receiver echoed what."""
    found: list[str] = []
    for route in rules.routes:
        for kind in route.kinds():
            for name in secret_names(rules, route, kind):
                value = os.environ.get(name)
                if not value:
                    continue
                found.append(value)
                path = urlsplit(value).path if "://" in value else ""
                found += [p for p in (path.strip("/"), *path.split("/")) if len(p) >= 8]
    return found


def config_hash(rules: Rules, route: Route, kind: str) -> str:
    """A digest of a channel's settings and secrets: a rejected notice is tried again once it changes (a fixed
    URL, a rotated token). Only the digest is stored, never a value."""
    values = [os.environ.get(n) or "" for n in secret_names(rules, route, kind)]
    blob = json.dumps([_settings(rules, route, kind), values], sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def _put(con: duckdb.DuckDBPyConnection, fp: str, key: str, notice: str, episode: datetime, now: datetime,
         digest: str, external_key: str | None = None) -> None:
    con.execute("DELETE FROM alert_deliveries WHERE alert_id = ? AND channel = ?", [fp, key])
    con.execute("INSERT INTO alert_deliveries VALUES (?, ?, 'pending', 0, NULL, NULL, ?, ?, ?, ?, ?, NULL, NULL)",
                [fp, key, external_key, digest, notice, episode, now])


def _due_again(con: duckdb.DuckDBPyConnection, fp: str, key: str, notice: str, now: datetime) -> None:
    con.execute("UPDATE alert_deliveries SET state = 'pending', notice = ?, attempts = 0, due_at = ?, progress = NULL "
                "WHERE alert_id = ? AND channel = ?", [notice, now, fp, key])


def plan_channels(con: duckdb.DuckDBPyConnection, rules: Rules, now: datetime, firing: dict[str, Alert]) -> None:
    """Record, per alert and channel, the notices due now (inside the plan's transaction)."""
    routes = {r.name: r for r in rules.routes}
    rule_names = {r.name for r in rules.rules}
    cur = con.execute("SELECT * FROM alert_deliveries")
    names = [d[0] for d in cur.description]
    rows: dict[str, dict[str, dict]] = {}
    for r in cur.fetchall():
        row = dict(zip(names, r, strict=True))
        rows.setdefault(row["alert_id"], {})[row["channel"]] = row
    default_repeat = parse_interval(rules.defaults.repeat_interval)
    for fp, rule, route_name, status, episode in con.execute(
            "SELECT fingerprint, rule, route, status, first_fired_at FROM alerts ORDER BY fingerprint").fetchall():
        mine = rows.get(fp, {})
        if status == "firing":
            repeat = firing[fp].repeat if fp in firing else default_repeat
            chain = [route_name, *rules.escalations(route_name, now - episode)]
            for hop, name in enumerate(chain):
                route = routes.get(name)
                if route is None:
                    continue
                if hop and not any(k.startswith(f"{name}/") and r["episode"] == episode for k, r in mine.items()):
                    history(con, fp, rule, "escalated", now, episode, name)
                for kind in route.kinds():
                    if hop == 0 and kind == "email":
                        continue  # the route's own e-mail: state in `alerts`
                    key, digest = f"{name}/{kind}", config_hash(rules, route, kind)
                    row = mine.get(key)
                    if row is None or row["episode"] != episode:
                        keep = row["external_key"] if row and kind == "alertmanager" else None
                        _put(con, fp, key, "firing", episode, now, digest, keep)
                        mine[key] = {"episode": episode}
                    elif row["state"] == "rejected" and row["config_hash"] != digest:
                        _due_again(con, fp, key, row["notice"], now)
                    elif row["state"] == "delivered" and row["notice"] == "firing" and (
                            kind == "alertmanager" or row["delivered_at"] + repeat <= now):
                        _due_again(con, fp, key, "firing", now)
            # A firing notice still owed to a route the rule no longer sends to (the rules file changed) is
            # not sent there; the route it sends to now was given its own above. (A channel no longer
            # configured at all is dropped below, for every alert.)
            for key, row in mine.items():
                name, _, kind = key.rpartition("/")
                if (name not in chain and name in routes and kind in routes[name].kinds()
                        and row.get("state") == "pending" and row.get("notice") == "firing"):
                    con.execute("UPDATE alert_deliveries SET state = 'dropped', last_error = 'the rule sends to "
                                "another route now' WHERE alert_id = ? AND channel = ?", [fp, key])
        elif status == "silenced":
            # Alertmanager holds what it is told and resolves what is not refreshed: an alert it already has stays
            # firing there while a silence holds back the other channels (a false "resolved" would page no one
            # back when the silence ends); an alert silenced before Alertmanager heard of it is not posted.
            for key, row in mine.items():
                name, _, kind = key.rpartition("/")
                if (kind == "alertmanager" and name in routes and row["episode"] == episode
                        and row["state"] == "delivered" and row["notice"] == "firing"):
                    _due_again(con, fp, key, "firing", now)
        elif status == "resolved":
            for key, row in mine.items():
                if row["episode"] != episode or row["notice"] != "firing":
                    continue
                name, _, kind = key.rpartition("/")
                route = routes.get(name)
                wanted = (row["delivered_at"] is not None and rules.defaults.send_resolved and rule in rule_names
                          and route is not None and kind in route.kinds())
                if wanted:
                    _due_again(con, fp, key, "resolved", now)
                else:
                    con.execute("UPDATE alert_deliveries SET state = 'dropped', notice = 'resolved' "
                                "WHERE alert_id = ? AND channel = ?", [fp, key])
    # A channel taken out of the rules file drops what it still owed.
    for fp, mine in rows.items():
        for key, row in mine.items():
            name, _, kind = key.rpartition("/")
            if row.get("state") == "pending" and (name not in routes or kind not in routes[name].kinds()):
                con.execute("UPDATE alert_deliveries SET state = 'dropped', last_error = 'channel no longer configured' "
                            "WHERE alert_id = ? AND channel = ?", [fp, key])


def due(con: duckdb.DuckDBPyConnection, firing: dict[str, Alert]) -> dict[str, list[dict]]:
    """Pending notices by channel (a silenced alert's firing notice waits for the silence to end, except the
    refresh of an alert Alertmanager already has)."""
    cur = con.execute(
        "SELECT d.alert_id, d.channel, d.notice, d.external_key, d.progress, a.rule, a.severity, a.labels, a.summary, "
        "a.first_fired_at, a.sends, a.resolved_at FROM alert_deliveries d JOIN alerts a ON a.alert_id = d.alert_id "
        "WHERE d.state = 'pending' AND (d.notice = 'resolved' OR a.status = 'firing' OR (a.status = 'silenced' "
        "AND ends_with(d.channel, '/alertmanager') AND d.delivered_at IS NOT NULL)) "
        "ORDER BY a.first_fired_at, d.alert_id")
    work: dict[str, list[dict]] = {}
    for fp, key, notice, external, progress, rule, severity, labels, summary, first, sends, resolved_at in cur.fetchall():
        n = note(fp, rule, key.rpartition("/")[0], severity, labels, summary, notice, first, sends, firing.get(fp))
        n.update(channel=key, external_key=external, progress=progress, resolved_at=resolved_at)
        work.setdefault(key, []).append(n)
    return work


def _record(con: duckdb.DuckDBPyConnection, notes: list[dict], answer: Answer, digest: str,
            now: datetime, external_key: str | None = None) -> None:
    fps = [n["fingerprint"] for n in notes]
    key = notes[0]["channel"]
    if answer.ok:
        con.execute("UPDATE alert_deliveries SET state = 'delivered', attempts = attempts + ?, last_status = ?, "
                    "last_error = NULL, config_hash = ?, delivered_at = ?, progress = NULL, "
                    "external_key = coalesce(?, external_key) WHERE channel = ? AND list_contains(?, alert_id)",
                    [answer.attempts, answer.status, digest, now, external_key, key, fps])
    else:
        con.execute("UPDATE alert_deliveries SET state = ?, attempts = attempts + ?, last_status = ?, last_error = ?, "
                    "config_hash = ? WHERE channel = ? AND list_contains(?, alert_id)",
                    ["rejected" if answer.final else "pending", answer.attempts, answer.status, answer.error, digest,
                     key, fps])


def _progress(con: duckdb.DuckDBPyConnection, n: dict, step: str | None, external_key: str | None = None) -> None:
    con.execute("UPDATE alert_deliveries SET progress = ?, external_key = coalesce(?, external_key) "
                "WHERE alert_id = ? AND channel = ?", [step, external_key, n["fingerprint"], n["channel"]])


def _shown(url: str) -> str:
    return redact(url)


class Channels:
    """Sends (or, dry, writes to the outbox) the notices one run owes its HTTP channels and escalation e-mail."""

    def __init__(self, con: duckdb.DuckDBPyConnection, rules: Rules, *, now: datetime, out: Path,
                 report: str | None, dry_run: bool) -> None:
        self.con, self.rules, self.now, self.out, self.report, self.dry_run = con, rules, now, out, report, dry_run
        self.result = Outcome()
        self.secrets = all_secrets(rules)
        self.client = httpx.Client(timeout=rules.delivery.timeout_seconds, follow_redirects=False)

    def run(self, work: dict[str, list[dict]]) -> Outcome:
        routes = {r.name: r for r in self.rules.routes}
        try:
            for key, notes in sorted(work.items()):
                name, _, kind = key.rpartition("/")
                self._channel(routes[name], kind, key, notes)
        finally:
            self.client.close()
        return self.result

    def _channel(self, route: Route, kind: str, key: str, notes: list[dict]) -> None:
        names = secret_names(self.rules, route, kind)
        env = {n: os.environ.get(n) for n in names}
        missing = [n for n, v in env.items() if v is None and kind != "email"]
        if missing and not self.dry_run:
            error = f"${missing[0]} is not set (export it; the rules file names only the variable)"
            self._fail(key, notes, Answer(False, None, error, False, 0), config_hash(self.rules, route, kind))
            return
        digest = config_hash(self.rules, route, kind)
        secret = {n: env[n] or "" for n in names}
        if kind == "email":
            self._email(route, key, notes, digest)
        elif kind in BATCHED:
            self._request(key, notes, self._batch(route, kind, notes, secret), digest)
        elif kind == "pagerduty":
            cfg = route.pagerduty
            assert cfg is not None
            for n in notes:
                key_value = secret[cfg.routing_key_env]
                req = ch.Request("POST", cfg.url, ch.pagerduty(n, key_value, self.report), _shown(cfg.url),
                                 ch.pagerduty(n, MASK, self.report))
                self._request(key, [n], req, digest)
        else:
            for n in notes:
                self._jira(route, key, n, secret, digest)

    def _batch(self, route: Route, kind: str, notes: list[dict], secret: dict[str, str]) -> ch.Request:
        if kind == "slack":
            assert route.slack is not None
            body = ch.slack(route.name, notes, self.report)
            return ch.Request("POST", secret[route.slack.url_env], body, f"${route.slack.url_env}", body)
        if kind == "alertmanager":
            cfg = route.alertmanager
            assert cfg is not None
            for n in notes:
                old = json.loads(n["external_key"]) if n.get("external_key") else None
                n["retired_labels"] = [old] if old and old != ch.labels(n) else []
            body_list = ch.alertmanager(notes, self.now, cfg.ends_after, self.report)
            url = cfg.url.rstrip("/") + "/api/v2/alerts"
            return ch.Request("POST", url, body_list, _shown(url), body_list)
        cfg_w = route.webhook
        assert cfg_w is not None
        body = ch.webhook(route.name, notes, self.report)
        req = ch.Request("POST", cfg_w.url, body, _shown(cfg_w.url), body)
        if cfg_w.secret_env:
            signature = hmac.new(secret[cfg_w.secret_env].encode(), req.content(), hashlib.sha256).hexdigest()
            req.headers["X-Migrate-Lens-Signature"] = f"sha256={signature}"
        return req

    def _request(self, key: str, notes: list[dict], req: ch.Request, digest: str) -> Answer | None:
        if self.dry_run:
            self._outbox(key, notes, req)
            return None
        answer = send(self.client, req, self.rules.delivery, self.secrets)
        external_key = None
        if answer.ok:
            if key.endswith("/alertmanager"):
                for n in notes:  # the label set now posted, to end it if the severity changes
                    self.con.execute("UPDATE alert_deliveries SET external_key = ? WHERE alert_id = ? AND channel = ?",
                                     [json.dumps(ch.labels(n), sort_keys=True), n["fingerprint"], key])
            if key.endswith("/jira") and external_key is None and isinstance(answer.data, dict):
                external_key = answer.data.get("key")  # the issue just created
            _record(self.con, notes, answer, digest, self.now, external_key)
            self.result.sent += 1
        else:
            self._fail(key, notes, answer, digest)
        return answer

    def _fail(self, key: str, notes: list[dict], answer: Answer, digest: str) -> None:
        _record(self.con, notes, answer, digest, self.now)
        self.result.failed += 1
        what = "rejected, not retried until its settings change" if answer.final else "kept pending"
        self.result.errors.append(f"{key}: {answer.error} ({what})")

    def _outbox(self, key: str, notes: list[dict], req: ch.Request) -> None:
        folder = self.out / "outbox"
        folder.mkdir(parents=True, exist_ok=True)
        tail = f"-{notes[0]['fingerprint']}" if len(notes) == 1 and not key.endswith(BATCHED) else ""
        stem = f"{self.now:%Y%m%dT%H%M%S}-{key.replace('/', '-')}{tail}"
        path = folder / f"{stem}.json"
        i = 1
        while path.exists():
            i += 1
            path = folder / f"{stem}-{i}.json"
        path.write_text(json.dumps({"channel": key, "method": req.method, "url": req.shown_url,
                                    "body": req.shown_body}, indent=2, default=str) + "\n", encoding="utf-8")
        self.result.outbox.append(path)

    def _email(self, route: Route, key: str, notes: list[dict], digest: str) -> None:
        msg = compose(route, notes, self.rules, now=self.now, report=self.report)
        if self.dry_run or self.rules.smtp.host is None:
            folder = self.out / "outbox"
            folder.mkdir(parents=True, exist_ok=True)
            path = folder / f"{self.now:%Y%m%dT%H%M%S}-{route.name}-escalated.eml"
            path.write_bytes(bytes(msg))
            self.result.outbox.append(path)
            if self.dry_run:
                return
            answer = Answer(True, None, None, False, 1)
        else:
            try:
                send_mail(self.rules.smtp, msg)
                answer = Answer(True, None, None, False, 1)
            except (OSError, smtplib.SMTPException) as e:
                answer = Answer(False, None, scrub(f"{type(e).__name__}: {e}", self.secrets)[:300], False, 1)
        if answer.ok:
            _record(self.con, notes, answer, digest, self.now)
            self.result.sent += 1
        else:
            self._fail(key, notes, answer, digest)

    def _jira(self, route: Route, key: str, n: dict, secret: dict[str, str], digest: str) -> None:
        cfg = route.jira
        assert cfg is not None
        token = secret[cfg.token_env]
        auth = (f"Basic {base64.b64encode(f'{secret[cfg.user_env]}:{token}'.encode()).decode()}" if cfg.user_env
                else f"Bearer {token}")
        base = cfg.url.rstrip("/") + "/rest/api/2"

        def req(method: str, path: str, body: object = None) -> ch.Request:
            return ch.Request(method, base + path, body, _shown(base + path), body, {"Authorization": auth})

        issue = n.get("external_key")
        if n["state"] == "firing" and not issue:
            if n.get("progress") == "create_sent" and not self.dry_run:
                # The last create's answer was lost: find the issue it may have made before making another.
                jql = quote(f'labels = "{ch.jira_label(n)}"')
                found = send(self.client, req("GET", f"/search?jql={jql}&fields=key"), self.rules.delivery,
                             self.secrets)
                issues = found.data.get("issues") if found.ok and isinstance(found.data, dict) else None
                if issues:
                    _record(self.con, [n], found, digest, self.now, issues[0]["key"])
                    self.result.sent += 1
                    return
            if not self.dry_run:
                _progress(self.con, n, "create_sent")
            self._request(key, [n], req("POST", "/issue", ch.jira_issue(n, cfg.project, cfg.issue_type, self.report)),
                          digest)
            return
        if not issue:  # resolved, but the issue was never created: nobody was told it fired
            if not self.dry_run:
                self.con.execute("UPDATE alert_deliveries SET state = 'dropped' WHERE alert_id = ? AND channel = ?",
                                 [n["fingerprint"], key])
            return
        comment = req("POST", f"/issue/{issue}/comment", ch.jira_comment(n, self.now))
        if n["state"] == "firing":
            self._request(key, [n], comment, digest)
            return
        if n.get("progress") != "commented":
            if self.dry_run:
                self._outbox(key, [n], comment)
            else:
                answer = send(self.client, comment, self.rules.delivery, self.secrets)
                if not answer.ok:
                    self._fail(key, [n], answer, digest)
                    return
                _progress(self.con, n, "commented")
        if self.dry_run:
            self._outbox(key, [n], req("POST", f"/issue/{issue}/transitions", {"transition": {"name": cfg.transition}}))
            return
        listed = send(self.client, req("GET", f"/issue/{issue}/transitions"), self.rules.delivery, self.secrets)
        if not listed.ok:
            self._fail(key, [n], listed, digest)
            return
        offered = listed.data.get("transitions", []) if isinstance(listed.data, dict) else []
        wanted = cfg.transition.casefold()
        match = [t for t in offered if wanted in (str(t.get("name", "")).casefold(),
                                                  str((t.get("to") or {}).get("name", "")).casefold())]
        if not match:
            names = ", ".join(str(t.get("name")) for t in offered) or "none"
            self._fail(key, [n], Answer(False, listed.status, f"transition {cfg.transition!r} is not offered for "
                                        f"{issue} (offered: {names})", True, 1), digest)
            return
        self._request(key, [n], req("POST", f"/issue/{issue}/transitions", {"transition": {"id": match[0]["id"]}}),
                      digest)
