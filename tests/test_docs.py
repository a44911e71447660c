"""Drift tests: the README and the config stay in step with the code."""

from __future__ import annotations

import re
import tomllib

import pytest
from pydantic import BaseModel

from pipeline.cli import main
from pipeline.core.config import Config

from .conftest import ROOT

README = (ROOT / "README.md").read_text(encoding="utf-8")


@pytest.mark.parametrize("name", sorted(main.commands))
def test_every_command_has_help_and_is_in_the_readme(name):
    command = main.commands[name]
    assert (command.help or "").strip(), name
    assert f"`{name}" in README, f"README does not document `{name}`"


def _fields(model: type[BaseModel], prefix: str = ""):
    for field_name, field in model.model_fields.items():
        yield f"{prefix}{field_name}", field
        annotation = field.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            yield from _fields(annotation, f"{prefix}{field_name}.")


@pytest.mark.parametrize(("path", "field"), list(_fields(Config)), ids=[p for p, _ in _fields(Config)])
def test_every_config_field_is_described(path, field):
    assert field.description and len(field.description) > 10, path


def test_the_readme_config_example_is_valid_and_complete():
    block = re.search(r"```toml\n(.*?)```", README, re.DOTALL)
    assert block, "README has no ```toml example"
    parsed = Config.model_validate(tomllib.loads(block.group(1)))
    sections = {name for name, _ in Config.model_fields.items()}
    assert sections <= set(tomllib.loads(block.group(1))), "every config section appears in the README example"
    assert parsed.ingest.batch_lines == Config().ingest.batch_lines
    assert parsed.warehouse.memory_limit == Config().warehouse.memory_limit


@pytest.mark.parametrize("kind", ["failed_run", "dirty_open", "forced_recovery", "duration_outlier", "failure_spike",
                                  "lock_timeout", "prod_rollback", "promotion_skipped", "non_idempotent",
                                  "missing_down", "interrupted_run", "down_test_failed"])
def test_every_finding_kind_is_documented_and_has_a_runbook(kind):
    from pipeline.analyze.findings import RUNBOOK

    assert f"`{kind}`" in README
    assert RUNBOOK[kind]


@pytest.mark.parametrize("table", ["ingested_sources", "rejects", "log_lines", "migrate_events", "runs",
                                   "script_baselines", "findings", "rollback_readiness", "verify_results"])
def test_every_relation_is_documented_and_exists(table, warehouse):
    assert f"`{table}`" in README
    columns = {c for (c,) in warehouse.execute(
        "SELECT column_name FROM duckdb_columns() WHERE table_name = ?", [table]).fetchall()}
    assert columns, table


CONTRACT_COLUMNS = {
    "ingested_sources": "source_uri, size_bytes, fingerprint, format, lines, rejected, ingested_at",
    "rejects": "source_uri, line_no, reason, raw",
    "log_lines": "line_id, source_uri, line_no, ts, stream_key, env, service, database, message",
    "migrate_events": "event_id, ts, run_id, env, service, database, kind, version, direction, name, duration_ms, "
                      "read_ms, ran_ms, own_ms, error_class, error_text",
    "runs": "run_id, env, service, database, started_at, ended_at, command, applied, from_version, to_version, "
            "outcome, error_class, error_text",
    "script_baselines": "env, service, version, direction, name, n, median_ms, p95_ms, mad_ms, last_ms, last_at",
    "findings": "finding_id, kind, severity, env, service, database, version, run_id, ts, observed, expected, "
                "score, explanation, status",
    "verify_results": "service, version, check, status, detail, folder, git_commit, verified_at",
    "rollback_readiness": "service, version, down_file, in_prod, down_tried_envs, last_down_ok, reapplied_after_down, "
                          "ready, down_tested_at, down_test, down_test_failed_checks",
}


@pytest.mark.parametrize("table", sorted(CONTRACT_COLUMNS))
def test_contract_columns_exist(table, warehouse):
    have = {c for (c,) in warehouse.execute(
        "SELECT column_name FROM duckdb_columns() WHERE table_name = ?", [table]).fetchall()}
    want = {c.strip() for c in CONTRACT_COLUMNS[table].split(",")}
    assert want <= have, want - have


def _surface_relations() -> set[str]:
    section = README.split("## The SQL surface", 1)[1].split("\n## ", 1)[0]
    return set(re.findall(r"^\*\*`([a-z_]+)`\*\*", section, flags=re.MULTILINE))


def test_export_covers_every_relation_the_sql_surface_documents(warehouse):
    from pipeline.query import EXPORT

    documented = _surface_relations()
    assert documented == set(EXPORT)
    tables = {t for (t,) in warehouse.execute("SELECT table_name FROM duckdb_tables()").fetchall()}
    assert documented <= tables
