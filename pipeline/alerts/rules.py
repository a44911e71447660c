"""The alert rules file: defaults, SMTP, routes, rules and silences (pydantic models), read from TOML with
every mistake named on one line."""

from __future__ import annotations

import re
import tomllib
from datetime import datetime, timedelta
from pathlib import Path
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError, model_validator

from pipeline.core.assets import default_rules
from pipeline.core.errors import ConfigError
from pipeline.core.vocabulary import SEVERITIES, at_or_above

_DURATION = re.compile(r"^(\d+(?:\.\d+)?)(m|h|d)$")


def parse_interval(text: str) -> timedelta:
    """`30m`, `4h`, `7d` as a timedelta."""
    m = _DURATION.match(text.strip())
    if not m:
        raise ValueError(f"{text!r} is not a duration like 30m, 4h or 7d")
    value, unit = float(m.group(1)), m.group(2)
    return timedelta(minutes=value) if unit == "m" else timedelta(hours=value) if unit == "h" else timedelta(days=value)


def _checked_interval(text: str) -> str:
    parse_interval(text)
    return text


# A duration field of the rules file (repeat, escalation, Alertmanager's endsAt): kept as written, checked on load.
Interval = Annotated[str, AfterValidator(_checked_interval)]


def _warning_and_above() -> list[str]:
    """A rule's default severities: warning and every more urgent one."""
    return [s for s in SEVERITIES if at_or_above(s, "warning")]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Defaults(_Model):
    repeat_interval: Interval = Field("24h", description="A firing alert is not re-sent before this (30m, 4h, 7d).")
    send_resolved: bool = Field(True, description="Send a notice when an alert's finding resolves.")
    report_url: str | None = Field(
        None, description="Where the weekly reviews are published (the `reports/` folder); each e-mail links "
        "`<report_url>/<YYYY-Www>.html`, the review of the week it is about.")


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


class Slack(_Model):
    url_env: str = Field(description="Environment variable holding the incoming-webhook URL (the URL is a secret).")


class PagerDuty(_Model):
    routing_key_env: str = Field(description="Environment variable holding the Events API v2 routing key.")
    url: str = Field("https://events.pagerduty.com/v2/enqueue", description="Events API v2 endpoint.")


class Alertmanager(_Model):
    url: str = Field(description="Alertmanager base URL; alerts are posted to <url>/api/v2/alerts.")
    ends_after: Interval = Field("8d", description="Each run posts firing alerts with endsAt = clock + this "
                                              "(Alertmanager resolves what is not refreshed).")


class Webhook(_Model):
    url: str = Field(description="Receiver of the Alertmanager webhook payload (version 4).")
    secret_env: str | None = Field(None, description="Environment variable holding the HMAC-SHA256 key; when set, "
                                                     "the body is signed in X-Migrate-Lens-Signature: sha256=<hex>.")


class Jira(_Model):
    url: str = Field(description="Jira base URL (REST API v2 under <url>/rest/api/2/).")
    project: str = Field(description="Project key the issues are created in.")
    issue_type: str = Field("Task", description="Issue type name of the created issues.")
    transition: str = Field("Done", description="Transition applied when the alert resolves.")
    user_env: str | None = Field(None, description="Environment variable holding the user (Basic auth with the "
                                                   "token); unset: the token is sent as a Bearer token.")
    token_env: str = Field(description="Environment variable holding the API token.")


CHANNELS = ("slack", "pagerduty", "alertmanager", "webhook", "jira")


class Route(_Model):
    name: str = Field(description="Route name that rules point to.")
    to: list[str] = Field(default_factory=list, description="Recipients of this route's e-mail (none: no e-mail).")
    slack: Slack | None = Field(None, description="A Slack incoming webhook.")
    pagerduty: PagerDuty | None = Field(None, description="PagerDuty Events API v2.")
    alertmanager: Alertmanager | None = Field(None, description="An Alertmanager (API v2).")
    webhook: Webhook | None = Field(None, description="Any receiver of the Alertmanager webhook payload.")
    jira: Jira | None = Field(None, description="One Jira issue per alert (REST API v2).")
    escalate_after: Interval | None = Field(None, description="An alert still firing this long after it first fired "
                                                         "also goes to escalate_to (30m, 2h, 1d).")
    escalate_to: str | None = Field(None, description="The route alerts escalate to.")

    @model_validator(mode="after")
    def _some_channel(self) -> Route:
        if not self.to and not any(getattr(self, c) for c in CHANNELS):
            raise ValueError(f"route {self.name!r} needs at least one channel: to, {', '.join(CHANNELS)}")
        if (self.escalate_after is None) != (self.escalate_to is None):
            raise ValueError(f"route {self.name!r}: give escalate_after and escalate_to together")
        return self

    def kinds(self) -> list[str]:
        """The channels this route has: `email` when it has recipients, then the others it configures."""
        return (["email"] if self.to else []) + [c for c in CHANNELS if getattr(self, c)]


class Delivery(_Model):
    timeout_seconds: float = Field(10.0, gt=0, description="Connect and read timeout of one HTTP request.")
    retries: int = Field(3, ge=0, le=10, description="Retries within a run after a 5xx, 429, timeout or refused "
                                                    "connection; then the notice waits for the next run.")
    backoff_seconds: float = Field(1.0, ge=0, description="First wait between retries; doubles each time.")
    max_retry_after_seconds: float = Field(60.0, ge=0, le=60, description="Cap on a 429's Retry-After (at most 60).")


class Rule(_Model):
    name: str = Field(description="Rule name; part of every alert's identity.")
    kinds: list[str] = Field(default_factory=list, description="Finding kinds it matches (empty: any).")
    severities: list[str] = Field(default_factory=_warning_and_above,
                                  description="Finding severities it matches.")
    envs: list[str] = Field(default_factory=list, description="Env globs it matches (empty: any).")
    services: list[str] = Field(default_factory=list, description="Service globs it matches (empty: any).")
    min_observed: float | None = Field(None, description="Only findings whose observed figure is at least this "
                                                         "(dirty minutes, failure rate, count).")
    min_ratio: float | None = Field(None, description="Only findings whose observed / expected is at least this.")
    min_score: float | None = Field(None, description="Only findings whose score is at least this.")
    route: str = Field(description="The route its alerts are sent to.")
    repeat_interval: Interval | None = Field(None, description="Overrides defaults.repeat_interval.")


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
    delivery: Delivery = Field(default_factory=Delivery, description="HTTP channels: timeout and retries.")
    routes: list[Route] = Field(default_factory=list, description="Recipients and channels.")
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
        if len(names) != len(self.routes):
            raise ValueError("route names must be unique")
        routes = {r.name: r for r in self.routes}
        for route in self.routes:
            seen, hop = [route.name], route.escalate_to
            while hop is not None:
                if hop not in routes:
                    raise ValueError(f"route {seen[-1]!r} escalates to {hop!r}, which is not a [[routes]] name")
                if hop in seen:
                    raise ValueError(f"routes escalate in a circle: {' -> '.join([*seen, hop])}")
                seen.append(hop)
                hop = routes[hop].escalate_to
        return self

    def escalations(self, route: str, fired_for: timedelta) -> list[str]:
        """The routes an alert of `route` that has fired for `fired_for` escalated to (a chain, in order)."""
        routes = {r.name: r for r in self.routes}
        found: list[str] = []
        current = routes.get(route)
        while current and current.escalate_to and current.escalate_after \
                and fired_for >= parse_interval(current.escalate_after):
            found.append(current.escalate_to)
            current = routes.get(current.escalate_to)
        return found


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
