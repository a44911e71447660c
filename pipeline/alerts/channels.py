"""What each channel is sent: the request bodies of Slack, PagerDuty, Alertmanager, the webhook and Jira, built
from the notes of one run (plain dicts, no I/O). Each shape follows the service's published API; the tests
check them against it on a real HTTP receiver."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime

from pipeline.alerts.rules import parse_interval
from pipeline.core.render import human_duration, human_minutes, inert
from pipeline.core.vocabulary import severity_rank

# Slack allows 50 blocks a message; each alert takes three, so a message lists at most this many.
SLACK_MAX_ALERTS = 15


@dataclass(frozen=True)
class Request:
    """One HTTP request; `shown_url` and `shown_body` are what the outbox and errors may show (no secret)."""

    method: str
    url: str
    body: object = None
    shown_url: str = ""
    shown_body: object = None
    headers: dict[str, str] = field(default_factory=dict)

    def content(self) -> bytes:
        return b"" if self.body is None else json.dumps(self.body, separators=(",", ":")).encode()


def iso(ts: datetime) -> str:
    """RFC 3339 in UTC with a Z, as every receiver here parses it."""
    aware = ts.replace(tzinfo=UTC) if ts.tzinfo is None else ts.astimezone(UTC)
    return aware.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def where(n: dict) -> str:
    return "/".join(v for v in (n["labels"].get("env"), n["labels"].get("service"), n["labels"].get("database")) if v)


def figure(value: float | None, unit: str | None) -> str:
    if value is None:
        return "?"
    if unit == "ms":
        return human_duration(value)
    if unit == "minutes":
        return human_minutes(value)
    if unit == "rate":
        return f"{100 * value:.1f} %"
    return f"{value:,.0f}" if float(value).is_integer() else f"{value:,.2f}"


def observed_vs_expected(n: dict) -> str:
    if n.get("observed") is None:
        return "—"
    if n.get("expected") is None:
        return figure(n["observed"], n.get("unit"))
    return f"{figure(n['observed'], n.get('unit'))} vs {figure(n['expected'], n.get('unit'))} expected"


def labels(n: dict) -> dict[str, str]:
    """Alertmanager labels: the alert's identity (rule and finding labels; empty values left out)."""
    out = {"alertname": n["rule"], "severity": n["severity"], "source": "migrate-lens"}
    out.update({k: inert(v) for k, v in n["labels"].items() if v})
    return out


def annotations(n: dict, report: str | None) -> dict[str, str]:
    out = {"summary": inert(n["summary"]), "observed_vs_expected": observed_vs_expected(n)}
    if n.get("runbook"):
        out["runbook"] = n["runbook"]
    if report:
        out["review"] = report
    return out


def subject(route: str, notes: list[dict]) -> str:
    worst = min((n["severity"] for n in notes if n["state"] == "firing"), key=severity_rank, default="resolved")
    firing = sum(n["state"] == "firing" for n in notes)
    parts = [f"{firing} firing"] + ([f"{len(notes) - firing} resolved"] if len(notes) > firing else [])
    return f"[migrate-lens] {worst.upper()}: {', '.join(parts)} ({route})"


def _mrkdwn(text: str) -> str:
    """Slack's mrkdwn escapes only these three; text from logs must not become a link or a mention."""
    return inert(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def slack(route: str, notes: list[dict], report: str | None) -> dict:
    """An incoming-webhook message: `text` (the notification fallback) and Block Kit `blocks`."""
    title = subject(route, notes)
    blocks: list[dict] = [{"type": "header", "text": {"type": "plain_text", "text": title[:150]}}]
    for n in notes[:SLACK_MAX_ALERTS]:
        state = "FIRING" if n["state"] == "firing" else "RESOLVED"
        head = f"*{state}* · *{n['severity']}* · `{_mrkdwn(n['labels'].get('kind', ''))}` (rule {_mrkdwn(n['rule'])})"
        blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": f"{head}\n{_mrkdwn(n['summary'])[:2500]}"},
                       "fields": [{"type": "mrkdwn", "text": f"*Severity*\n{n['severity']}"},
                                  {"type": "mrkdwn", "text": f"*What*\n{_mrkdwn(n['labels'].get('kind', ''))}"},
                                  {"type": "mrkdwn", "text": f"*Where*\n{_mrkdwn(where(n)) or '—'}"},
                                  {"type": "mrkdwn", "text": f"*Observed vs expected*\n{observed_vs_expected(n)}"}]})
        hint = f"Runbook: {_mrkdwn(n['runbook'])}" if n.get("runbook") else "Runbook: —"
        blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": hint[:2900]}]})
        blocks.append({"type": "divider"})
    if len(notes) > SLACK_MAX_ALERTS:
        blocks.append({"type": "context", "elements": [
            {"type": "mrkdwn", "text": f"…and {len(notes) - SLACK_MAX_ALERTS} more (see the review)"}]})
    if report:
        link = f"<{report}|Weekly review>" if report.startswith(("http://", "https://")) else f"Weekly review: {report}"
        blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": link}})
    return {"text": title, "blocks": blocks}


_PD_SEVERITY = {"critical": "critical", "warning": "warning", "info": "info"}


def pagerduty(n: dict, routing_key: str, report: str | None) -> dict:
    """Events API v2: `trigger` (or `resolve`) keyed by the alert identity, so PagerDuty dedupes a repeat."""
    if n["state"] == "resolved":
        return {"routing_key": routing_key, "event_action": "resolve", "dedup_key": n["fingerprint"]}
    details = {"rule": n["rule"], **{k: v for k, v in n["labels"].items() if v},
               "observed_vs_expected": observed_vs_expected(n), "runbook": n.get("runbook") or "",
               "explanation": inert(n["summary"])}
    event: dict = {
        "routing_key": routing_key, "event_action": "trigger", "dedup_key": n["fingerprint"],
        "payload": {"summary": inert(f"{n['severity'].upper()} {n['labels'].get('kind', '')} {where(n)}: "
                                     f"{n['summary']}")[:1024],
                    "source": where(n) or "migrate-lens", "severity": _PD_SEVERITY.get(n["severity"], "error"),
                    "timestamp": iso(n["first_fired_at"]), "component": n["labels"].get("service") or "unknown",
                    "group": n["labels"].get("env") or "unknown", "class": n["labels"].get("kind") or n["rule"],
                    "custom_details": details},
        "client": "migrate-lens",
    }
    if report and report.startswith(("http://", "https://")):
        event["client_url"] = report
        event["links"] = [{"href": report, "text": "Weekly review"}]
    return event


def alertmanager(notes: list[dict], now: datetime, ends_after: str, report: str | None) -> list[dict]:
    """`POST /api/v2/alerts` body: every firing alert again with endsAt = clock + ends_after (nothing refreshes
    it between runs, and Alertmanager resolves what is not refreshed); a resolved one with endsAt = when it
    resolved; a label set posted before under another severity ended now."""
    out = []
    for n in notes:
        ends = n["resolved_at"] if n["state"] == "resolved" else now + parse_interval(ends_after)
        alert = {"labels": labels(n), "annotations": annotations(n, report), "startsAt": iso(n["first_fired_at"]),
                 "endsAt": iso(ends)}
        if report and report.startswith(("http://", "https://")):
            alert["generatorURL"] = report
        out.append(alert)
        for old in n.get("retired_labels") or []:
            out.append({**alert, "labels": old, "endsAt": iso(now)})
    return out


def webhook(route: str, notes: list[dict], report: str | None) -> dict:
    """Alertmanager's webhook payload, version 4, which many receivers already parse."""
    alerts = [{"status": n["state"], "labels": labels(n), "annotations": annotations(n, report),
               "startsAt": iso(n["first_fired_at"]),
               "endsAt": iso(n["resolved_at"]) if n["state"] == "resolved" else "0001-01-01T00:00:00Z",
               "generatorURL": report if report and report.startswith(("http://", "https://")) else "",
               "fingerprint": n["fingerprint"]} for n in notes]
    common_labels = dict(set.intersection(*(set(a["labels"].items()) for a in alerts))) if alerts else {}
    common_annotations = dict(set.intersection(*(set(a["annotations"].items()) for a in alerts))) if alerts else {}
    return {"version": "4", "groupKey": f'{{}}:{{route="{route}"}}', "truncatedAlerts": 0,
            "status": "firing" if any(n["state"] == "firing" for n in notes) else "resolved",
            "receiver": route, "groupLabels": {"route": route}, "commonLabels": common_labels,
            "commonAnnotations": common_annotations, "externalURL": "", "alerts": alerts}


def jira_label(n: dict) -> str:
    """The label that finds an alert episode's issue again (after a create whose answer was lost)."""
    return f"migrate-lens-{n['fingerprint']}-{n['first_fired_at']:%Y%m%dT%H%M%S}"


def jira_issue(n: dict, project: str, issue_type: str, report: str | None) -> dict:
    """REST API v2 `POST /rest/api/2/issue`."""
    lines = [inert(n["summary"]), "", f"*Rule:* {n['rule']}", f"*Severity:* {n['severity']}",
             f"*Where:* {where(n)}", f"*Observed vs expected:* {observed_vs_expected(n)}",
             f"*Runbook:* {n.get('runbook') or '—'}", f"*First fired:* {iso(n['first_fired_at'])}"]
    if report:
        lines.append(f"*Weekly review:* {report}")
    title = inert(f"[migrate-lens] {n['severity'].upper()} {n['labels'].get('kind', '')} {where(n)}")
    return {"fields": {"project": {"key": project}, "summary": title[:250], "description": "\n".join(lines),
                       "issuetype": {"name": issue_type}, "labels": ["migrate-lens", jira_label(n)]}}


def jira_comment(n: dict, now: datetime) -> dict:
    if n["state"] == "resolved":
        return {"body": f"Resolved at {iso(n['resolved_at'] or now)}: the finding is no longer open (migrate-lens)."}
    return {"body": f"Still firing at {iso(now)} (migrate-lens): {inert(n['summary'])} "
                    f"({observed_vs_expected(n)})"}
