"""Alerts against a real SMTP server on 127.0.0.1 (aiosmtpd): fire, dedupe, repeat, resolve, retry after an
outage, silences, STARTTLS / implicit TLS with login, dry runs, and the rules file's own checks."""

from __future__ import annotations

import datetime as dt
import email
import ipaddress
import json
import re
import socket
import ssl
from email import policy
from pathlib import Path

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword
from click.testing import CliRunner
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from pipeline.alerts import Rules, alert, load_rules
from pipeline.cli import main
from pipeline.core.errors import ConfigError

from .conftest import rows

T0 = dt.datetime(2026, 11, 16, 8, 0)
PASSWORD = "smtp-Pa55word"


class Inbox:
    """Collects what the server accepted."""

    def __init__(self) -> None:
        self.messages: list[email.message.EmailMessage] = []

    async def handle_DATA(self, server, session, envelope):
        self.messages.append(email.message_from_bytes(envelope.content, policy=policy.default))
        return "250 OK"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _certificate(folder: Path) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = dt.datetime.now(dt.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(days=1))
            .not_valid_after(now + dt.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost"),
                                                        x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), True)
            .sign(key, hashes.SHA256()))
    cert_path, key_path = folder / "cert.pem", folder / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_path, key_path


def _authenticator(server, session, envelope, mechanism, auth_data):
    ok = isinstance(auth_data, LoginPassword) and auth_data.login == b"alerts" and auth_data.password == PASSWORD.encode()
    return AuthResult(success=ok)


@pytest.fixture
def smtp_server():
    """A plain SMTP server on 127.0.0.1; yields (inbox, port)."""
    inbox = Inbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=_free_port())
    controller.start()
    yield inbox, controller.port
    controller.stop()


def _rules(port: int, *, security: str = "none", extra: str = "", smtp_extra: str = "") -> Rules:
    text = f"""
[defaults]
repeat_interval = "24h"
send_resolved = true

[smtp]
host = "127.0.0.1"
port = {port}
security = "{security}"
sender = "migrate-lens <lens@localhost>"
timeout_seconds = 5
{smtp_extra}

[[routes]]
name = "oncall"
to = ["oncall@localhost"]

[[routes]]
name = "team"
to = ["team@localhost", "lead@localhost"]

[[rules]]
name = "dirty"
kinds = ["dirty_open"]
severities = ["critical", "warning"]
min_observed = 30
route = "oncall"
repeat_interval = "4h"

[[rules]]
name = "slow"
kinds = ["duration_outlier"]
min_ratio = 3.0
route = "team"
{extra}
"""
    import tomllib

    return Rules.model_validate(tomllib.loads(text))


def _finding(con, finding_id: str, *, kind: str = "dirty_open", severity: str = "critical", status: str = "open",
             database: str = "tenant_007", observed: float = 95.0, expected: float = 0.0,
             explanation: str = "prod/billing/tenant_007 is dirty at version 23 for 95 min") -> None:
    con.execute("DELETE FROM findings WHERE finding_id = ?", [finding_id])
    con.execute("INSERT INTO findings (finding_id, kind, severity, env, service, database, version, ts, observed, "
                "expected, score, unit, explanation, status, runbook, as_of) VALUES "
                "(?, ?, ?, 'prod', 'billing', ?, 23, ?, ?, ?, NULL, 'minutes', ?, ?, 'force N-1, then up', ?)",
                [finding_id, kind, severity, database, T0, observed, expected, explanation, status, T0])


def _state(con) -> list[tuple]:
    return rows(con, "SELECT rule, status, sends, pending, last_error IS NOT NULL FROM alerts ORDER BY rule, fingerprint")


def test_fire_dedupe_repeat_and_resolve(warehouse, smtp_server, tmp_path):
    inbox, port = smtp_server
    rules = _rules(port)
    _finding(warehouse, "f1")
    first = alert(warehouse, rules=rules, as_of=T0, out=tmp_path)
    assert (first.firing, first.emails_sent) == (1, 1)
    [msg] = inbox.messages
    assert msg["Subject"] == "[migrate-lens] CRITICAL: 1 firing (oncall)"
    assert msg["To"] == "oncall@localhost"
    text = msg.get_body(("plain",)).get_content()
    assert "prod/billing/tenant_007 is dirty at version 23" in text and "force N-1, then up" in text
    assert msg.get_body(("html",)) is not None

    # An hour later nothing new: deduplicated.
    assert alert(warehouse, rules=rules, as_of=T0 + dt.timedelta(hours=1), out=tmp_path).emails_sent == 0
    assert len(inbox.messages) == 1
    # After the rule's 4h repeat interval it is sent again.
    assert alert(warehouse, rules=rules, as_of=T0 + dt.timedelta(hours=4), out=tmp_path).emails_sent == 1
    assert len(inbox.messages) == 2
    assert _state(warehouse) == [("dirty", "firing", 2, None, False)]
    # The finding resolves: one resolved notice, then silence.
    _finding(warehouse, "f1", status="resolved")
    done = alert(warehouse, rules=rules, as_of=T0 + dt.timedelta(hours=5), out=tmp_path)
    assert (done.resolved, done.emails_sent) == (1, 1)
    assert inbox.messages[-1]["Subject"] == "[migrate-lens] RESOLVED: 0 firing, 1 resolved (oncall)"
    assert alert(warehouse, rules=rules, as_of=T0 + dt.timedelta(hours=30), out=tmp_path).emails_sent == 0
    assert len(inbox.messages) == 3
    assert _state(warehouse) == [("dirty", "resolved", 3, None, False)]


def test_one_email_per_route_listing_its_alerts_and_thresholds_apply(warehouse, smtp_server, tmp_path):
    inbox, port = smtp_server
    _finding(warehouse, "d1", database="tenant_001")
    _finding(warehouse, "d2", database="tenant_002", severity="warning")
    _finding(warehouse, "d3", database="tenant_003", observed=10)  # dirty 10 min: under min_observed
    _finding(warehouse, "s1", kind="duration_outlier", severity="warning", observed=48_800, expected=2_100,
             explanation="prod/billing 23/u backfill: level shift, 48.8 s vs 2.1 s before, 23x")
    _finding(warehouse, "s2", kind="duration_outlier", severity="warning", database="tenant_009", observed=2_500,
             expected=2_100, explanation="small wobble")  # ratio 1.2: under min_ratio
    result = alert(warehouse, rules=_rules(port), as_of=T0, out=tmp_path)
    assert (result.firing, result.emails_sent) == (3, 2)
    by_to = {m["To"]: m for m in inbox.messages}
    assert set(by_to) == {"oncall@localhost", "team@localhost, lead@localhost"}
    oncall = by_to["oncall@localhost"].get_body(("plain",)).get_content()
    assert "tenant_001" in oncall and "tenant_002" in oncall and "tenant_003" not in oncall
    assert by_to["oncall@localhost"]["Subject"] == "[migrate-lens] CRITICAL: 2 firing (oncall)"
    assert "small wobble" not in by_to["team@localhost, lead@localhost"].get_body(("plain",)).get_content()


def test_server_down_keeps_alerts_pending_then_delivers_once(warehouse, tmp_path):
    port = _free_port()  # nothing listens there yet
    rules = _rules(port)
    _finding(warehouse, "f1")
    down = alert(warehouse, rules=rules, as_of=T0, out=tmp_path)
    assert (down.emails_sent, down.emails_failed) == (0, 1)
    assert "ConnectionRefusedError" in down.errors[0]
    assert _state(warehouse) == [("dirty", "firing", 0, "firing", True)]

    inbox = Inbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        up = alert(warehouse, rules=rules, as_of=T0 + dt.timedelta(minutes=10), out=tmp_path)
        assert up.emails_sent == 1 and len(inbox.messages) == 1
        assert _state(warehouse) == [("dirty", "firing", 1, None, False)]
        again = alert(warehouse, rules=rules, as_of=T0 + dt.timedelta(minutes=20), out=tmp_path)
        assert again.emails_sent == 0 and len(inbox.messages) == 1
    finally:
        controller.stop()


def test_silence_holds_alerts_until_it_expires(warehouse, smtp_server, tmp_path):
    inbox, port = smtp_server
    rules = _rules(port, extra='''
[[silences]]
matchers = { kind = "dirty_open", database = "tenant_0*" }
until = 2026-11-16T12:00:00Z
comment = "restore in progress"
created_by = "sre"
''')
    _finding(warehouse, "f1")
    held = alert(warehouse, rules=rules, as_of=T0, out=tmp_path)
    assert (held.silenced, held.emails_sent) == (1, 0)
    assert alert(warehouse, rules=rules, as_of=T0 + dt.timedelta(hours=3), out=tmp_path).emails_sent == 0
    assert _state(warehouse) == [("dirty", "silenced", 0, None, False)]
    after = alert(warehouse, rules=rules, as_of=T0 + dt.timedelta(hours=4, minutes=1), out=tmp_path)
    assert (after.silenced, after.emails_sent) == (0, 1)
    assert len(inbox.messages) == 1


def test_silence_command_is_stored_and_respected(tmp_path, smtp_server):
    _inbox, port = smtp_server
    db = tmp_path / "w.duckdb"
    runner = CliRunner()
    made = runner.invoke(main, ["--db", str(db), "--as-of", "2026-11-16T08:00:00Z", "silence", "--match",
                                "service=billing", "--for", "2h", "--comment", "maintenance", "--by", "sre"])
    assert made.exit_code == 0, made.output
    assert made.stdout.startswith("silence ") and "service=billing until 2026-11-16 10:00 UTC" in made.stdout
    bad = runner.invoke(main, ["--db", str(db), "silence", "--match", "colour=red", "--for", "2h", "--comment", "x"])
    assert bad.exit_code == 1 and bad.stderr.startswith("Error: --match colour=red: use LABEL=GLOB")
    from pipeline.warehouse import connect

    con = connect(db)
    try:
        _finding(con, "f1")
        assert alert(con, rules=_rules(port), as_of=T0 + dt.timedelta(hours=1), out=tmp_path).silenced == 1
        assert alert(con, rules=_rules(port), as_of=T0 + dt.timedelta(hours=2), out=tmp_path).emails_sent == 1
    finally:
        con.close()


@pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")
@pytest.mark.parametrize("security", ["starttls", "tls"])
def test_tls_with_login_reads_the_password_from_the_environment(warehouse, tmp_path, monkeypatch, security):
    cert, key = _certificate(tmp_path)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    inbox = Inbox()
    # aiosmtpd does not count implicit TLS as TLS for auth_require_tls; the whole connection is TLS there.
    kwargs = ({"tls_context": context, "require_starttls": True, "auth_require_tls": True} if security == "starttls"
              else {"ssl_context": context, "auth_require_tls": False})
    controller = Controller(inbox, hostname="127.0.0.1", port=_free_port(), authenticator=_authenticator,
                            auth_required=True, **kwargs)
    controller.start()
    try:
        rules = _rules(controller.port, security=security,
                       smtp_extra=f'username = "alerts"\npassword_env = "LENS_TEST_SMTP_PW"\nca_file = "{cert}"')
        _finding(warehouse, "f1")
        monkeypatch.delenv("LENS_TEST_SMTP_PW", raising=False)
        with pytest.raises(ConfigError, match=r"smtp.password_env: \$LENS_TEST_SMTP_PW is not set"):
            alert(warehouse, rules=rules, as_of=T0, out=tmp_path)
        monkeypatch.setenv("LENS_TEST_SMTP_PW", "wrong")
        refused = alert(warehouse, rules=rules, as_of=T0, out=tmp_path)
        assert refused.emails_failed == 1 and refused.errors[0].startswith("oncall: SMTP") and inbox.messages == []
        assert _state(warehouse) == [("dirty", "firing", 0, "firing", True)]
        monkeypatch.setenv("LENS_TEST_SMTP_PW", PASSWORD)
        sent = alert(warehouse, rules=rules, as_of=T0 + dt.timedelta(minutes=1), out=tmp_path)
        assert sent.emails_sent == 1 and len(inbox.messages) == 1
        assert PASSWORD not in json.dumps(rows(warehouse, "SELECT * FROM alerts"), default=str)
    finally:
        controller.stop()


def test_dry_run_writes_eml_and_changes_no_state(warehouse, smtp_server, tmp_path):
    inbox, port = smtp_server
    _finding(warehouse, "f1", explanation='dirty; dsn postgres://billing:Sup3rS3cret@db/x <script>alert(1)</script>')
    preview = alert(warehouse, rules=_rules(port), as_of=T0, out=tmp_path, dry_run=True)
    [eml] = preview.outbox
    assert eml.parent == tmp_path / "outbox" and eml.suffix == ".eml"
    raw = eml.read_bytes()
    msg = email.message_from_bytes(raw, policy=policy.default)
    html = msg.get_body(("html",)).get_content()
    assert "<script>alert(1)" not in html and "&lt;script&gt;" in html
    assert b"Sup3rS3cret" not in raw
    assert inbox.messages == [] and rows(warehouse, "SELECT count(*) FROM alerts") == [(0,)]
    real = alert(warehouse, rules=_rules(port), as_of=T0, out=tmp_path)
    assert real.emails_sent == 1


def test_without_smtp_host_mail_goes_to_the_outbox_once(warehouse, tmp_path):
    rules = load_rules(None)
    assert rules.smtp.host is None
    _finding(warehouse, "f1")
    first = alert(warehouse, rules=rules, as_of=T0, out=tmp_path)
    assert len(first.outbox) == 1
    assert alert(warehouse, rules=rules, as_of=T0 + dt.timedelta(hours=1), out=tmp_path).outbox == ()


def test_default_rules_validate_and_every_field_is_described():
    rules = load_rules(None)
    assert {r.route for r in rules.rules} <= {r.name for r in rules.routes}

    def fields(model):
        for name, field in model.model_fields.items():
            yield name, field
            ann = field.annotation
            inner = getattr(ann, "__args__", (ann,))
            for candidate in (ann, *inner):
                if isinstance(candidate, type) and hasattr(candidate, "model_fields"):
                    yield from fields(candidate)

    for name, field in fields(Rules):
        assert field.description, name


@pytest.mark.parametrize(("text", "message"), [
    ('[[rules]]\nname = "x"\nroute = "nowhere"\n', "rule 'x' routes to 'nowhere'"),
    ('[smtp]\nport = "many"\n', "smtp.port: Input should be a valid integer"),
    ('[defaults]\nrepeat_interval = "soon"\n', "defaults.repeat_interval: Value error"),
    ('[[routes]]\nname = "a"\nto = []\n', "routes.0: Value error, route 'a' needs at least one channel: to, slack, "
                                        "pagerduty, alertmanager, webhook, jira"),
    ('[[routes]]\nname = "a"\nto = ["x@y"]\nescalate_to = "b"\nescalate_after = "1h"\n',
     "route 'a' escalates to 'b', which is not a [[routes]] name"),
    ('[[routes]]\nname = "a"\nto = ["x@y"]\nescalate_to = "a"\nescalate_after = "1h"\n',
     "routes escalate in a circle: a -> a"),
    ('[[routes]]\nname = "a"\nslack = {}\n', "routes.0.slack.url_env: Field required"),
    ('[[routes]]\nname = "a"\nalertmanager = { url = "http://am:9093", ends_after = "soon" }\n',
     "routes.0.alertmanager.ends_after: Value error"),
    ("[smtp\n", "not valid TOML"),
])
def test_a_bad_rules_file_names_the_mistake_on_one_line(tmp_path, text, message):
    path = tmp_path / "rules.toml"
    path.write_text(text, encoding="utf-8")
    result = CliRunner().invoke(main, ["--db", str(tmp_path / "w.duckdb"), "alert", "--rules", str(path)])
    assert result.exit_code == 1
    assert result.stderr.count("\n") == 1 and result.stderr.startswith(f"Error: {path}: ")
    assert message in result.stderr


def test_alert_command_prints_one_summary_line(tmp_path):
    from pipeline.warehouse import connect

    con = connect(tmp_path / "w.duckdb")
    _finding(con, "f1")
    con.close()
    result = CliRunner().invoke(main, ["--db", str(tmp_path / "w.duckdb"), "--out", str(tmp_path / "out"),
                                       "--as-of", "2026-11-16T08:00:00Z", "alert", "--dry-run"])
    assert result.exit_code == 0, result.output
    assert result.stdout == "alerts: 1 firing, 0 resolved, 0 silenced; e-mails: 1 written to the outbox\n"



@pytest.mark.parametrize(("toml", "where"), [
    ('[defaults]\nrepeat_interval = "soon"\n', "defaults.repeat_interval"),
    ('[[routes]]\nname = "r"\nto = ["a@b.c"]\nescalate_after = "2 hours"\nescalate_to = "r"\n',
     "routes.0.escalate_after"),
    ('[[routes]]\nname = "r"\nalertmanager = { url = "http://127.0.0.1:9", ends_after = "8" }\n',
     "routes.0.alertmanager.ends_after"),
    ('[[routes]]\nname = "r"\nto = ["a@b.c"]\n[[rules]]\nname = "x"\nkinds = ["dirty_database"]\nroute = "r"\n'
     'repeat_interval = "1w"\n', "rules.0.repeat_interval"),
])
def test_every_duration_of_the_rules_file_is_checked_where_it_is_written(tmp_path, toml, where):
    path = tmp_path / "rules.toml"
    path.write_text(toml, encoding="utf-8")
    with pytest.raises(ConfigError, match=rf"{re.escape(where)}: Value error, '.+' is not a duration like 30m"):
        load_rules(path)
