"""Alert channels against real HTTP receivers on 127.0.0.1 (pytest-httpserver): each payload checked against the
service's published shape (Slack Block Kit, PagerDuty Events API v2, Alertmanager API v2 and webhook v4, Jira
REST API v2), one accepted request per notice, resolve flows, failures retried until delivered exactly once,
4xx held until the config changes, dry runs to the outbox, escalation, and no secret in any artefact."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import json
import re
import socket
import time
import tomllib

import pytest
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from pipeline.alerts import Rules, alert

from .conftest import rows
from .test_alerts import T0, _finding

SLACK_TOKEN = "T0SECRET/B0SECRET/xoxSlackHookSecret1"
ROUTING_KEY = "pdRoutingKeySecret0123456789abcd"
HMAC_KEY = "webhook-hmac-Secret-42"
JIRA_USER = "bot@example.com"
JIRA_TOKEN = "jiraApiTokenSecret-ABC123"
SECRETS = (SLACK_TOKEN, ROUTING_KEY, HMAC_KEY, JIRA_TOKEN)
ISO = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$")


class Receiver:
    """Records every request; answers each path from a script of (status, body, headers, delay), then 2xx."""

    def __init__(self, server: HTTPServer) -> None:
        self.server = server
        self.seen: list[dict] = []
        self.script: dict[str, list[tuple[int, str, dict, float]]] = {}
        self.issues = 0
        server.expect_request(re.compile(".*")).respond_with_handler(self._handle)

    def url(self, path: str = "") -> str:
        return self.server.url_for(path)

    def fail(self, path: str, status: int, body: str = "", headers: dict | None = None, delay: float = 0.0,
             times: int = 99) -> None:
        self.script[path] = [(status, body, headers or {}, delay)] * times

    def _handle(self, request: Request) -> Response:
        data = request.get_data()
        entry = {"method": request.method, "path": request.path, "query": request.args.to_dict(),
                 "headers": dict(request.headers), "raw": data, "body": json.loads(data) if data else None}
        self.seen.append(entry)
        queue = self.script.get(request.path)
        if queue:
            status, body, headers, delay = queue.pop(0)
            time.sleep(delay)
            entry["status"] = status
            return Response(body, status=status, headers=headers)
        entry["status"], body = self._success(request)
        return Response(json.dumps(body) if body is not None else "", status=entry["status"],
                        content_type="application/json")

    def _success(self, request: Request) -> tuple[int, object]:
        path = request.path
        if path.endswith("/enqueue"):
            return 202, {"status": "success", "message": "Event processed", "dedup_key": "x"}
        if path.endswith("/rest/api/2/issue"):
            self.issues += 1
            return 201, {"id": str(10000 + self.issues), "key": f"OPS-{self.issues}", "self": "http://jira/x"}
        if path.endswith("/comment"):
            return 201, {"id": "1", "body": "ok"}
        if path.endswith("/transitions") and request.method == "GET":
            return 200, {"transitions": [{"id": "11", "name": "Start", "to": {"name": "In Progress"}},
                                         {"id": "31", "name": "Done", "to": {"name": "Done"}}]}
        if path.endswith("/transitions"):
            return 204, None
        if path.endswith("/search"):
            return 200, {"issues": [{"key": f"OPS-{self.issues}"}] if self.issues else []}
        return 200, {"ok": True} if path.endswith("/api/v2/alerts") else None

    def accepted(self, path_end: str) -> list[dict]:
        return [r for r in self.seen if r["path"].endswith(path_end) and 200 <= r["status"] < 300]

    def to(self, path_end: str) -> list[dict]:
        return [r for r in self.seen if r["path"].endswith(path_end)]


@pytest.fixture
def receiver():
    server = HTTPServer(host="127.0.0.1", port=0, threaded=True)
    server.start()
    yield Receiver(server)
    server.clear()
    server.stop()


@pytest.fixture
def secrets_env(monkeypatch, receiver):
    monkeypatch.setenv("LENS_SLACK_URL", receiver.url(f"/services/{SLACK_TOKEN}"))
    monkeypatch.setenv("LENS_PD_KEY", ROUTING_KEY)
    monkeypatch.setenv("LENS_HOOK_KEY", HMAC_KEY)
    monkeypatch.setenv("LENS_JIRA_USER", JIRA_USER)
    monkeypatch.setenv("LENS_JIRA_TOKEN", JIRA_TOKEN)


def _rules(receiver: Receiver, channels: str, *, route_extra: str = "", extra: str = "") -> Rules:
    text = f"""
[defaults]
repeat_interval = "24h"
report_url = "https://reviews.example.com/migrate"

[delivery]
timeout_seconds = 0.5
retries = 2
backoff_seconds = 0.01

[[routes]]
name = "oncall"
{channels}
{route_extra}

[[rules]]
name = "dirty"
kinds = ["dirty_open"]
severities = ["critical", "warning"]
route = "oncall"
repeat_interval = "4h"
{extra}
"""
    return Rules.model_validate(tomllib.loads(text.replace("{url}", receiver.url(""))))


SLACK = 'slack = { url_env = "LENS_SLACK_URL" }'
PAGERDUTY = 'pagerduty = { routing_key_env = "LENS_PD_KEY", url = "{url}/v2/enqueue" }'
ALERTMANAGER = 'alertmanager = { url = "{url}/am", ends_after = "8d" }'
WEBHOOK = 'webhook = { url = "{url}/hook", secret_env = "LENS_HOOK_KEY" }'
JIRA = ('jira = { url = "{url}/jira", project = "OPS", issue_type = "Incident", transition = "Done", '
        'user_env = "LENS_JIRA_USER", token_env = "LENS_JIRA_TOKEN" }')


def _deliveries(con) -> list[tuple]:
    return rows(con, "SELECT channel, state, notice, attempts, last_status, external_key FROM alert_deliveries "
                     "ORDER BY channel, alert_id")


# -- the services' documented shapes -------------------------------------------------------------------------------

def check_slack(body: dict) -> None:
    """Slack incoming webhook with Block Kit: text fallback; ≤ 50 blocks; header plain_text ≤ 150; section text
    ≤ 3000 and ≤ 10 fields of ≤ 2000; context ≤ 10 elements."""
    assert isinstance(body["text"], str) and body["text"]
    blocks = body["blocks"]
    assert 0 < len(blocks) <= 50
    for b in blocks:
        assert b["type"] in ("header", "section", "context", "divider")
        if b["type"] == "header":
            assert b["text"]["type"] == "plain_text" and len(b["text"]["text"]) <= 150
        if b["type"] == "section":
            assert b["text"]["type"] == "mrkdwn" and len(b["text"]["text"]) <= 3000
            assert len(b.get("fields", [])) <= 10 and all(len(f["text"]) <= 2000 for f in b.get("fields", []))
        if b["type"] == "context":
            assert 0 < len(b["elements"]) <= 10 and all(e["type"] in ("mrkdwn", "plain_text") for e in b["elements"])


def check_pagerduty(event: dict) -> None:
    """Events API v2: routing_key, event_action, dedup_key ≤ 255; a trigger has payload summary ≤ 1024, source,
    severity in critical|error|warning|info, ISO timestamp."""
    assert event["routing_key"] == ROUTING_KEY
    assert event["event_action"] in ("trigger", "resolve", "acknowledge") and len(event["dedup_key"]) <= 255
    if event["event_action"] == "trigger":
        p = event["payload"]
        assert 0 < len(p["summary"]) <= 1024 and p["source"] and p["severity"] in ("critical", "error", "warning", "info")
        assert ISO.match(p["timestamp"]) and isinstance(p["custom_details"], dict)
        assert set(p) <= {"summary", "source", "severity", "timestamp", "component", "group", "class", "custom_details"}
    else:
        assert "payload" not in event


def check_alertmanager(alerts: list) -> None:
    """API v2 postableAlerts: labels (non-empty, valid names, string values), annotations, RFC 3339 times."""
    assert isinstance(alerts, list) and alerts
    for a in alerts:
        assert set(a) <= {"labels", "annotations", "startsAt", "endsAt", "generatorURL"}
        assert a["labels"] and all(re.fullmatch(r"[a-zA-Z_][a-zA-Z0-9_]*", k) and isinstance(v, str) and v
                                   for k, v in a["labels"].items())
        assert all(isinstance(v, str) for v in a["annotations"].values())
        assert ISO.match(a["startsAt"]) and ISO.match(a["endsAt"])


def check_webhook(payload: dict) -> None:
    """Alertmanager webhook version 4."""
    assert payload["version"] == "4" and payload["status"] in ("firing", "resolved")
    assert {"groupKey", "truncatedAlerts", "receiver", "groupLabels", "commonLabels", "commonAnnotations",
            "externalURL", "alerts"} <= set(payload)
    for a in payload["alerts"]:
        assert {"status", "labels", "annotations", "startsAt", "endsAt", "generatorURL", "fingerprint"} == set(a)
        assert a["status"] in ("firing", "resolved") and ISO.match(a["startsAt"]) and ISO.match(a["endsAt"])


# -- the tests -----------------------------------------------------------------------------------------------------

def test_slack_webhook_and_alertmanager_get_one_request_per_route_per_run(warehouse, tmp_path, receiver,
                                                                          secrets_env):
    rules = _rules(receiver, "\n".join([SLACK, ALERTMANAGER, WEBHOOK]))
    _finding(warehouse, "a", database="tenant_001")
    _finding(warehouse, "b", database="tenant_002", severity="warning", observed=40, expected=0)
    first = alert(warehouse, rules=rules, as_of=T0, out=tmp_path)
    assert (first.channels_sent, first.channels_failed) == (3, 0)
    [slack] = receiver.to(f"/services/{SLACK_TOKEN}")
    check_slack(slack["body"])
    assert slack["body"]["text"] == "[migrate-lens] CRITICAL: 2 firing (oncall)"
    text = json.dumps(slack["body"])
    assert "prod/billing/tenant_001" in text and "95 min vs 0 min expected" in text and "force N-1, then up" in text
    assert "<https://reviews.example.com/migrate/2026-W46.html|Weekly review>" in text
    [hook] = receiver.to("/hook")
    check_webhook(hook["body"])
    assert hook["body"]["status"] == "firing" and len(hook["body"]["alerts"]) == 2
    expected = "sha256=" + hmac.new(HMAC_KEY.encode(), hook["raw"], hashlib.sha256).hexdigest()
    assert hook["headers"]["X-Migrate-Lens-Signature"] == expected
    [am] = receiver.to("/am/api/v2/alerts")
    check_alertmanager(am["body"])
    assert {a["labels"]["database"] for a in am["body"]} == {"tenant_001", "tenant_002"}
    assert {a["endsAt"] for a in am["body"]} == {"2026-11-24T08:00:00.000Z"}  # clock + 8d
    assert am["body"][0]["labels"]["alertname"] == "dirty" and am["body"][0]["startsAt"] == "2026-11-16T08:00:00.000Z"

    # An hour later: Slack and the webhook dedupe; Alertmanager is refreshed every run (clock + 8d).
    alert(warehouse, rules=rules, as_of=T0 + dt.timedelta(hours=1), out=tmp_path)
    assert len(receiver.to(f"/services/{SLACK_TOKEN}")) == 1 and len(receiver.to("/hook")) == 1
    assert {a["endsAt"] for a in receiver.to("/am/api/v2/alerts")[-1]["body"]} == {"2026-11-24T09:00:00.000Z"}

    # One resolves: a resolved notice to each, Alertmanager's endsAt = when it resolved.
    _finding(warehouse, "b", database="tenant_002", status="resolved")
    alert(warehouse, rules=rules, as_of=T0 + dt.timedelta(hours=2), out=tmp_path)
    resolved = receiver.to(f"/services/{SLACK_TOKEN}")[-1]["body"]
    check_slack(resolved)
    assert resolved["text"] == "[migrate-lens] RESOLVED: 0 firing, 1 resolved (oncall)"
    hook = receiver.to("/hook")[-1]["body"]
    assert hook["status"] == "resolved" and [a["labels"]["database"] for a in hook["alerts"]] == ["tenant_002"]
    assert hook["alerts"][0]["endsAt"] == "2026-11-16T10:00:00.000Z"
    posted = {a["labels"]["database"]: a["endsAt"] for a in receiver.to("/am/api/v2/alerts")[-1]["body"]}
    assert posted == {"tenant_001": "2026-11-24T10:00:00.000Z", "tenant_002": "2026-11-16T10:00:00.000Z"}
    # After that the resolved alert is never posted again; the firing one keeps being refreshed.
    alert(warehouse, rules=rules, as_of=T0 + dt.timedelta(hours=3), out=tmp_path)
    assert [a["labels"]["database"] for a in receiver.to("/am/api/v2/alerts")[-1]["body"]] == ["tenant_001"]
    assert len(receiver.to(f"/services/{SLACK_TOKEN}")) == 2 and len(receiver.to("/hook")) == 2


def test_a_silence_keeps_alertmanager_refreshed_and_holds_the_other_channels(warehouse, tmp_path, receiver,
                                                                             secrets_env):
    plain = _rules(receiver, "\n".join([SLACK, ALERTMANAGER]))
    silenced = _rules(receiver, "\n".join([SLACK, ALERTMANAGER]), extra="""
[[silences]]
matchers = { service = "billing" }
until = 2026-11-16T14:00:00Z
comment = "restore in progress"
created_by = "sre"
""")
    _finding(warehouse, "a", database="tenant_001")
    alert(warehouse, rules=plain, as_of=T0, out=tmp_path)
    assert len(receiver.to(f"/services/{SLACK_TOKEN}")) == 1 and len(receiver.to("/am/api/v2/alerts")) == 1

    # Silenced past the repeat interval: Slack hears nothing; Alertmanager keeps the alert it has firing (were it
    # not refreshed it would resolve after ends_after and page no one back); a new alert silenced before
    # Alertmanager heard of it is not posted.
    _finding(warehouse, "b", database="tenant_002")
    held = alert(warehouse, rules=silenced, as_of=T0 + dt.timedelta(hours=5), out=tmp_path)
    assert (held.silenced, len(receiver.to(f"/services/{SLACK_TOKEN}"))) == (2, 1)
    am = receiver.to("/am/api/v2/alerts")[-1]["body"]
    assert [(a["labels"]["database"], a["endsAt"]) for a in am] == [("tenant_001", "2026-11-24T13:00:00.000Z")]

    # The silence ends: Slack is told of both (the repeat that came due, the new one), Alertmanager of the second.
    alert(warehouse, rules=plain, as_of=T0 + dt.timedelta(hours=7), out=tmp_path)
    assert receiver.to(f"/services/{SLACK_TOKEN}")[-1]["body"]["text"] == "[migrate-lens] CRITICAL: 2 firing (oncall)"
    assert sorted(a["labels"]["database"] for a in receiver.to("/am/api/v2/alerts")[-1]["body"]) == [
        "tenant_001", "tenant_002"]


def test_a_notice_owed_to_a_route_the_rule_left_is_dropped_and_the_new_route_is_told(warehouse, tmp_path, receiver,
                                                                                    secrets_env):
    second_route = """
[[routes]]
name = "pager"
webhook = { url = "{url}/hook" }
"""
    before = _rules(receiver, SLACK, extra=second_route)
    after = before.model_copy(update={"rules": [r.model_copy(update={"route": "pager"}) for r in before.rules]})
    _finding(warehouse, "a")
    receiver.fail(f"/services/{SLACK_TOKEN}", 503, times=3)  # Slack is down for the whole first run
    first = alert(warehouse, rules=before, as_of=T0, out=tmp_path)
    assert (first.channels_sent, first.channels_failed) == (0, 1)
    assert _deliveries(warehouse) == [("oncall/slack", "pending", "firing", 3, 503, None)]

    # The rule now routes to `pager`: Slack, up again, is not sent the notice it was owed; the webhook is.
    alert(warehouse, rules=after, as_of=T0 + dt.timedelta(minutes=10), out=tmp_path)
    assert len(receiver.to(f"/services/{SLACK_TOKEN}")) == 3 and len(receiver.accepted("/hook")) == 1
    assert rows(warehouse, "SELECT channel, state, last_error FROM alert_deliveries ORDER BY channel") == [
        ("oncall/slack", "dropped", "the rule sends to another route now"), ("pager/webhook", "delivered", None)]
    alert(warehouse, rules=after, as_of=T0 + dt.timedelta(minutes=20), out=tmp_path)
    assert len(receiver.to(f"/services/{SLACK_TOKEN}")) == 3 and len(receiver.to("/hook")) == 1


def test_a_notice_owed_to_a_channel_taken_out_of_the_route_is_dropped_as_no_longer_configured(warehouse, tmp_path,
                                                                                             receiver, secrets_env):
    before = _rules(receiver, "\n".join([SLACK, WEBHOOK]))
    after = _rules(receiver, WEBHOOK)
    _finding(warehouse, "a")
    receiver.fail(f"/services/{SLACK_TOKEN}", 503, times=3)
    alert(warehouse, rules=before, as_of=T0, out=tmp_path)
    alert(warehouse, rules=after, as_of=T0 + dt.timedelta(minutes=10), out=tmp_path)
    assert len(receiver.to(f"/services/{SLACK_TOKEN}")) == 3
    assert rows(warehouse, "SELECT channel, state, last_error FROM alert_deliveries ORDER BY channel") == [
        ("oncall/slack", "dropped", "channel no longer configured"), ("oncall/webhook", "delivered", None)]


def test_pagerduty_triggers_by_alert_identity_repeats_and_resolves(warehouse, tmp_path, receiver, secrets_env):
    rules = _rules(receiver, PAGERDUTY)
    _finding(warehouse, "a")
    _finding(warehouse, "b", database="tenant_002")
    alert(warehouse, rules=rules, as_of=T0, out=tmp_path)
    events = [r["body"] for r in receiver.to("/v2/enqueue")]
    assert len(events) == 2  # one request per alert
    for e in events:
        check_pagerduty(e)
    fps = {fp for (fp,) in rows(warehouse, "SELECT fingerprint FROM alerts")}
    assert {e["dedup_key"] for e in events} == fps
    e = events[0]["payload"]
    assert (e["severity"], e["group"], e["component"], e["class"]) == ("critical", "prod", "billing", "dirty_open")
    assert e["custom_details"]["runbook"] == "force N-1, then up" and events[0]["client"] == "migrate-lens"
    assert events[0]["links"] == [{"href": "https://reviews.example.com/migrate/2026-W46.html", "text": "Weekly review"}]

    alert(warehouse, rules=rules, as_of=T0 + dt.timedelta(hours=1), out=tmp_path)
    assert len(receiver.to("/v2/enqueue")) == 2  # deduplicated
    alert(warehouse, rules=rules, as_of=T0 + dt.timedelta(hours=4), out=tmp_path)  # the rule's repeat interval
    assert len(receiver.to("/v2/enqueue")) == 4
    _finding(warehouse, "a", status="resolved")
    alert(warehouse, rules=rules, as_of=T0 + dt.timedelta(hours=5), out=tmp_path)
    [resolve] = [r["body"] for r in receiver.to("/v2/enqueue")[4:]]
    check_pagerduty(resolve)
    assert resolve["event_action"] == "resolve" and resolve["dedup_key"] in fps
    alert(warehouse, rules=rules, as_of=T0 + dt.timedelta(hours=6), out=tmp_path)
    assert len(receiver.to("/v2/enqueue")) == 5
    states = sorted((s, n) for _c, s, n, *_ in _deliveries(warehouse))
    assert states == [("delivered", "firing"), ("delivered", "resolved")]


def test_jira_creates_one_issue_comments_on_repeat_and_transitions_when_resolved(warehouse, tmp_path, receiver,
                                                                               secrets_env):
    rules = _rules(receiver, JIRA)
    _finding(warehouse, "a")
    alert(warehouse, rules=rules, as_of=T0, out=tmp_path)
    [create] = receiver.to("/jira/rest/api/2/issue")
    fields = create["body"]["fields"]
    assert fields["project"] == {"key": "OPS"} and fields["issuetype"] == {"name": "Incident"}
    assert fields["summary"].startswith("[migrate-lens] CRITICAL dirty_open prod/billing/tenant_007")
    assert "force N-1, then up" in fields["description"] and "migrate-lens" in fields["labels"]
    basic = base64.b64encode(f"{JIRA_USER}:{JIRA_TOKEN}".encode()).decode()
    assert create["headers"]["Authorization"] == f"Basic {basic}"
    assert _deliveries(warehouse) == [("oncall/jira", "delivered", "firing", 1, 201, "OPS-1")]

    alert(warehouse, rules=rules, as_of=T0 + dt.timedelta(hours=1), out=tmp_path)
    assert len(receiver.seen) == 1
    alert(warehouse, rules=rules, as_of=T0 + dt.timedelta(hours=4), out=tmp_path)
    [comment] = receiver.to("/issue/OPS-1/comment")
    assert comment["body"]["body"].startswith("Still firing at 2026-11-16T12:00:00.000Z")
    _finding(warehouse, "a", status="resolved")
    alert(warehouse, rules=rules, as_of=T0 + dt.timedelta(hours=5), out=tmp_path)
    steps = [(r["method"], r["path"].removeprefix("/jira/rest/api/2")) for r in receiver.seen[2:]]
    assert steps == [("POST", "/issue/OPS-1/comment"), ("GET", "/issue/OPS-1/transitions"),
                     ("POST", "/issue/OPS-1/transitions")]
    assert receiver.seen[-1]["body"] == {"transition": {"id": "31"}}
    assert receiver.issues == 1
    assert _deliveries(warehouse)[0][:3] == ("oncall/jira", "delivered", "resolved")


def test_a_jira_create_whose_answer_was_lost_is_found_again_not_duplicated(warehouse, tmp_path, receiver,
                                                                          secrets_env):
    rules = _rules(receiver, JIRA)
    _finding(warehouse, "a")
    receiver.script["/jira/rest/api/2/issue"] = [(201, json.dumps({"key": "OPS-1"}), {}, 1.0)] * 3  # too slow
    receiver.issues = 1  # the slow create did make OPS-1 (the search finds it by its label)
    lost = alert(warehouse, rules=rules, as_of=T0, out=tmp_path)
    assert lost.channels_failed == 1 and "timed out" in lost.channel_errors[0]
    receiver.script.clear()
    alert(warehouse, rules=rules, as_of=T0 + dt.timedelta(minutes=10), out=tmp_path)
    [search] = receiver.to("/search")
    assert search["query"]["jql"].startswith('labels = "migrate-lens-')
    assert len(receiver.to("/jira/rest/api/2/issue")) == 3  # only the first run's tries, none after the search
    assert _deliveries(warehouse)[0][:3] == ("oncall/jira", "delivered", "firing")
    assert _deliveries(warehouse)[0][5] == "OPS-1"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.parametrize("failure", ["5xx", "429", "timeout", "refused"])
@pytest.mark.parametrize("channel", ["pagerduty", "alertmanager", "slack"])
def test_a_failure_keeps_the_notice_pending_and_a_later_run_delivers_it_exactly_once(
        warehouse, tmp_path, receiver, secrets_env, monkeypatch, failure, channel):
    late = None
    if failure == "refused":  # nothing listens on the receiver's port during the first run
        port = _free_port()
        base = f"http://127.0.0.1:{port}"
        monkeypatch.setenv("LENS_SLACK_URL", f"{base}/services/{SLACK_TOKEN}")
    else:
        base = receiver.url("")
    config = {"pagerduty": PAGERDUTY, "alertmanager": ALERTMANAGER, "slack": SLACK}[channel].replace("{url}", base)
    path = {"pagerduty": "/v2/enqueue", "alertmanager": "/am/api/v2/alerts", "slack": f"/services/{SLACK_TOKEN}"}[channel]
    rules = _rules(receiver, config)
    if failure == "5xx":
        receiver.fail(path, 503, "upstream unavailable")
    elif failure == "429":
        receiver.fail(path, 429, "rate limited", {"Retry-After": "1"})
    elif failure == "timeout":
        receiver.fail(path, 200, "{}", delay=1.0)
    _finding(warehouse, "a")
    started = time.monotonic()
    down = alert(warehouse, rules=rules, as_of=T0, out=tmp_path)
    took = time.monotonic() - started
    assert (down.channels_sent, down.channels_failed) == (0, 1)
    assert f"oncall/{channel}" in down.channel_errors[0] and "kept pending" in down.channel_errors[0]
    [(state, attempts, status, error)] = rows(warehouse, "SELECT state, attempts, last_status, last_error "
                                                         "FROM alert_deliveries")
    assert state == "pending" and attempts == 3  # the first try and two retries within the run
    if failure == "429":
        assert status == 429 and error == "HTTP 429: rate limited" and took >= 2.0  # Retry-After honoured twice
    elif failure == "5xx":
        assert status == 503 and error == "HTTP 503: upstream unavailable"
    elif failure == "timeout":
        assert status is None and error == "timed out after 0.5 s"
    else:
        assert status is None and "ConnectError" in error
    if failure == "refused":
        late = HTTPServer(host="127.0.0.1", port=port, threaded=True)
        late.start()
        receiver = Receiver(late)
    else:
        receiver.script.clear()
        time.sleep(1.1 if failure == "timeout" else 0)  # the slow answers of run one are done
    try:
        before = len(receiver.accepted(path))
        up = alert(warehouse, rules=rules, as_of=T0 + dt.timedelta(minutes=10), out=tmp_path)
        assert (up.channels_sent, up.channels_failed) == (1, 0)
        assert len(receiver.accepted(path)) == before + 1
        assert rows(warehouse, "SELECT state, last_error FROM alert_deliveries") == [("delivered", None)]
        if channel != "alertmanager":  # Alertmanager is refreshed every run by design
            alert(warehouse, rules=rules, as_of=T0 + dt.timedelta(minutes=20), out=tmp_path)
            assert len(receiver.accepted(path)) == before + 1
        if channel == "pagerduty" and failure == "timeout":  # every try carried the same dedup_key
            assert len({r["body"]["dedup_key"] for r in receiver.to(path)}) == 1
    finally:
        if late is not None:
            late.clear()
            late.stop()


def test_a_4xx_is_recorded_with_its_first_line_and_not_retried_until_the_config_changes(
        warehouse, tmp_path, receiver, secrets_env, monkeypatch):
    path = f"/services/{SLACK_TOKEN}"
    receiver.fail(path, 400, "invalid_blocks\nmore detail the receiver gave")
    rules = _rules(receiver, SLACK)
    _finding(warehouse, "a")
    first = alert(warehouse, rules=rules, as_of=T0, out=tmp_path)
    assert first.channels_failed == 1 and "rejected, not retried until its settings change" in first.channel_errors[0]
    assert rows(warehouse, "SELECT state, attempts, last_status, last_error FROM alert_deliveries") == [
        ("rejected", 1, 400, "HTTP 400: invalid_blocks")]
    receiver.script.clear()
    alert(warehouse, rules=rules, as_of=T0 + dt.timedelta(hours=1), out=tmp_path)
    assert len(receiver.to(path)) == 1  # not retried: same settings
    monkeypatch.setenv("LENS_SLACK_URL", receiver.url(f"/services/{SLACK_TOKEN}/v2"))  # the URL was fixed
    fixed = alert(warehouse, rules=rules, as_of=T0 + dt.timedelta(hours=2), out=tmp_path)
    assert fixed.channels_sent == 1 and len(receiver.accepted(f"/services/{SLACK_TOKEN}/v2")) == 1
    assert rows(warehouse, "SELECT state FROM alert_deliveries") == [("delivered",)]


def test_dry_run_writes_each_would_be_request_without_secrets_and_changes_nothing(warehouse, tmp_path, receiver,
                                                                                secrets_env):
    rules = _rules(receiver, "\n".join([SLACK, PAGERDUTY, ALERTMANAGER, WEBHOOK, JIRA]))
    _finding(warehouse, "a")
    preview = alert(warehouse, rules=rules, as_of=T0, out=tmp_path, dry_run=True)
    assert receiver.seen == [] and rows(warehouse, "SELECT count(*) FROM alert_deliveries") == [(0,)]
    written = {json.loads(p.read_text())["channel"]: json.loads(p.read_text()) for p in preview.channel_outbox}
    assert set(written) == {f"oncall/{c}" for c in ("slack", "pagerduty", "alertmanager", "webhook", "jira")}
    assert all(p.parent == tmp_path / "outbox" and p.suffix == ".json" for p in preview.channel_outbox)
    assert written["oncall/slack"]["url"] == "$LENS_SLACK_URL" and written["oncall/slack"]["method"] == "POST"
    assert written["oncall/pagerduty"]["body"]["routing_key"] == "***"
    assert written["oncall/alertmanager"]["url"].endswith("/am/api/v2/alerts")
    assert written["oncall/jira"]["url"].endswith("/jira/rest/api/2/issue")
    check_slack(written["oncall/slack"]["body"])
    check_webhook(written["oncall/webhook"]["body"])
    check_alertmanager(written["oncall/alertmanager"]["body"])
    blob = b"".join(p.read_bytes() for p in preview.channel_outbox)
    assert not [s for s in SECRETS if s.encode() in blob]
    assert "channels: 5 written to the outbox" in preview.summary()


def test_no_secret_reaches_the_warehouse_the_outbox_or_stderr_even_when_a_receiver_echoes_it(
        tmp_path, receiver, secrets_env):
    from click.testing import CliRunner

    from pipeline.cli import main
    from pipeline.warehouse import connect

    db = tmp_path / "w.duckdb"
    con = connect(db)
    _finding(con, "a")
    con.close()
    rules_text = f"""
[delivery]
timeout_seconds = 0.5
retries = 0
[[routes]]
name = "oncall"
{SLACK}
{PAGERDUTY}
{WEBHOOK}
{JIRA}
[[rules]]
name = "dirty"
kinds = ["dirty_open"]
route = "oncall"
""".replace("{url}", receiver.url(""))
    (tmp_path / "rules.toml").write_text(rules_text)
    # Every receiver fails and echoes what it was sent, secrets included, as its error text.
    echo = f"bad request: key={ROUTING_KEY} auth={JIRA_TOKEN} url={SLACK_TOKEN} sig={HMAC_KEY}"
    for path in (f"/services/{SLACK_TOKEN}", "/v2/enqueue", "/hook", "/jira/rest/api/2/issue"):
        receiver.fail(path, 500, echo)
    runner = CliRunner()
    args = ["--db", str(db), "--out", str(tmp_path / "out"), "--as-of", "2026-11-16T08:00:00Z", "alert", "--rules",
            str(tmp_path / "rules.toml")]
    failed = runner.invoke(main, args)
    assert failed.exit_code == 1 and failed.stderr.startswith("Error: alert: 4 channel deliveries failed")
    dry = runner.invoke(main, [*args, "--dry-run"])
    assert dry.exit_code == 0, dry.output
    errors = rows(connect(db, read_only=True), "SELECT last_error FROM alert_deliveries")
    assert all(e and "***" in e for (e,) in errors), errors
    artefacts = {"stderr": failed.stderr.encode() + dry.stderr.encode(), "stdout": failed.stdout.encode() + dry.stdout.encode(),
                 "warehouse": db.read_bytes() + (db.with_suffix(".duckdb.wal").read_bytes()
                                                 if db.with_suffix(".duckdb.wal").exists() else b"")}
    artefacts.update({str(p): p.read_bytes() for p in (tmp_path / "out").rglob("*") if p.is_file()})
    leaks = {(name, s) for name, blob in artefacts.items() for s in SECRETS if s.encode() in blob}
    assert leaks == set()
    assert len([p for p in (tmp_path / "out" / "outbox").glob("*.json")]) == 4


def test_a_route_may_have_no_email_and_channels_need_their_variables(warehouse, tmp_path, receiver, secrets_env,
                                                                    monkeypatch):
    rules = _rules(receiver, SLACK)
    assert rules.routes[0].to == [] and rules.routes[0].kinds() == ["slack"]
    monkeypatch.delenv("LENS_SLACK_URL")
    _finding(warehouse, "a")
    missing = alert(warehouse, rules=rules, as_of=T0, out=tmp_path)
    assert missing.channels_failed == 1 and missing.outbox == ()
    assert "$LENS_SLACK_URL is not set" in missing.channel_errors[0]
    monkeypatch.setenv("LENS_SLACK_URL", receiver.url(f"/services/{SLACK_TOKEN}"))
    assert alert(warehouse, rules=rules, as_of=T0 + dt.timedelta(minutes=5), out=tmp_path).channels_sent == 1


def test_an_alert_still_firing_escalates_to_another_route_and_is_resolved_there(warehouse, tmp_path, receiver,
                                                                              secrets_env):
    text = f"""
[delivery]
retries = 0
[[routes]]
name = "team"
{SLACK}
escalate_after = "2h"
escalate_to = "lead"
[[routes]]
name = "lead"
to = ["lead@localhost"]
{WEBHOOK}
[[rules]]
name = "dirty"
kinds = ["dirty_open"]
route = "team"
""".replace("{url}", receiver.url(""))
    rules = Rules.model_validate(tomllib.loads(text))
    _finding(warehouse, "a")
    alert(warehouse, rules=rules, as_of=T0, out=tmp_path)
    assert receiver.to("/hook") == [] and len(receiver.to(f"/services/{SLACK_TOKEN}")) == 1
    alert(warehouse, rules=rules, as_of=T0 + dt.timedelta(hours=1), out=tmp_path)
    assert receiver.to("/hook") == []
    escalated = alert(warehouse, rules=rules, as_of=T0 + dt.timedelta(hours=2), out=tmp_path)
    [hook] = receiver.to("/hook")
    assert hook["body"]["receiver"] == "lead" and hook["body"]["status"] == "firing"
    assert [p.name for p in escalated.outbox] == [] and \
        list((tmp_path / "outbox").glob("*-lead-escalated.eml")), "the lead's e-mail (no SMTP host: the outbox)"
    assert rows(warehouse, "SELECT event, detail FROM alert_history WHERE event = 'escalated'") == [("escalated", "lead")]
    _finding(warehouse, "a", status="resolved")
    alert(warehouse, rules=rules, as_of=T0 + dt.timedelta(hours=3), out=tmp_path)
    assert receiver.to("/hook")[-1]["body"]["status"] == "resolved"
    assert receiver.to(f"/services/{SLACK_TOKEN}")[-1]["body"]["text"].startswith("[migrate-lens] RESOLVED")
    assert sorted(rows(warehouse, "SELECT channel, state, notice FROM alert_deliveries")) == [
        ("lead/email", "delivered", "resolved"), ("lead/webhook", "delivered", "resolved"),
        ("team/slack", "delivered", "resolved")]
