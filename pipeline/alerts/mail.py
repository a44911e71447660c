"""The e-mail of one route: composed from the alert templates (plain text and HTML) and sent over SMTP."""

from __future__ import annotations

import os
import smtplib
import ssl
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid

from pipeline.alerts.rules import Route, Rules, Smtp
from pipeline.core.errors import ConfigError
from pipeline.core.render import environment, inert
from pipeline.core.vocabulary import severity_rank


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
    # Text from logs (summaries, labels) is shown, never obeyed: no control character reaches a mail reader.
    shown = [{**n, "summary": inert(n["summary"]), "labels": {k: inert(v) for k, v in n["labels"].items()}}
             for n in notes]
    context = {"notes": shown, "route": route.name, "now": now, "report": report}
    msg = EmailMessage()
    msg["Subject"] = inert(_subject(route.name, notes))
    msg["From"] = rules.smtp.sender
    msg["To"] = ", ".join(route.to)
    msg["Date"] = format_datetime(now.replace(tzinfo=UTC))
    msg["Message-ID"] = make_msgid(domain="migrate-lens")
    msg.set_content(env.get_template("alert.txt.j2").render(**context))
    msg.add_alternative(env.get_template("alert.html.j2").render(**context), subtype="html")
    return msg


def send(smtp: Smtp, msg: EmailMessage) -> None:
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
