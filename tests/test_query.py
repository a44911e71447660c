"""The SQL surface for SREs: named queries, the read-only query command, parameters always bound, output
formats, and the Parquet export read back with DuckDB."""

from __future__ import annotations

import csv
import io
import json
import re

import duckdb
import polars as pl
import pytest
from click.testing import CliRunner

from pipeline.cli import main
from pipeline.core.assets import queries_folder
from pipeline.query import EXPORT
from pipeline.warehouse.named import named_queries

from .conftest import SampleTemplate, sample_truth


@pytest.fixture(scope="module")
def demo_db(sample_template: SampleTemplate, tmp_path_factory):
    """The demo fleet, ingested and analyzed (the `export` test writes beside it)."""
    return sample_template.copy(tmp_path_factory.mktemp("query") / "demo.duckdb")


def _q(db, *args: str):
    return CliRunner().invoke(main, ["--db", str(db), "--as-of", "2026-11-16T00:00:00Z", "query", *args])


def test_there_are_at_least_ten_named_queries_each_documented():
    queries = named_queries()
    assert len(queries) >= 10
    readme = queries_folder().joinpath("README.md").read_text(encoding="utf-8")
    for name, q in queries.items():
        assert q.answers, f"{name}: no `-- answers:` header"
        assert name in readme, f"{name} is not in queries/README.md"
        used = set(re.findall(r"\$([A-Za-z_]\w*)", re.sub(r"--[^\n]*", "", q.sql)))
        assert used <= {p.name for p in q.params}, f"{name}: parameters without a header line: {used}"


@pytest.mark.parametrize("name", sorted(named_queries()))
def test_every_named_query_runs_against_the_demo_schema(demo_db, name):
    result = _q(demo_db, name, "--format", "json")
    assert result.exit_code == 0, result.stderr
    assert isinstance(json.loads(result.stdout), list)


def test_list_shows_names_and_what_they_answer(demo_db):
    result = _q(demo_db, "--list")
    assert result.exit_code == 0
    lines = result.stdout.splitlines()
    assert len(lines) == len(named_queries())
    for name, q in named_queries().items():
        assert any(line.startswith(name) and q.answers in line for line in lines)


def test_a_parameter_with_quotes_and_semicolons_stays_a_value(demo_db):
    hostile = "prod'; DROP TABLE runs; --"
    result = _q(demo_db, "SELECT count(*) AS n FROM runs WHERE env = $env", "--param", f"env={hostile}",
                "--format", "json")
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout) == [{"n": 0}]
    con = duckdb.connect(str(demo_db), read_only=True)
    assert con.execute("SELECT count(*) FROM runs").fetchall()[0][0] > 0
    con.close()


def test_writes_are_refused_with_a_clear_error(demo_db):
    result = _q(demo_db, "DELETE FROM runs")
    assert result.exit_code == 1
    assert result.stderr == ("Error: the query command is read-only: it cannot change the warehouse "
                             "(use the stage commands, or open the file with the DuckDB CLI)\n")


def test_unknown_name_and_unknown_param_are_one_line_errors(demo_db):
    missing = _q(demo_db, "no_such_query")
    assert missing.exit_code == 1 and missing.stderr.startswith("Error: no_such_query: no such named query")
    extra = _q(demo_db, "SELECT 1 AS x", "--param", "colour=red")
    assert extra.exit_code == 1 and extra.stderr.startswith("Error: --param colour: the query has no such parameter")


def test_each_output_format_carries_the_same_rows(demo_db, tmp_path):
    sql = "SELECT env, count(*) AS runs FROM runs GROUP BY env ORDER BY env"
    truth = duckdb.connect(str(demo_db), read_only=True).execute(sql).fetchall()
    as_json = json.loads(_q(demo_db, sql, "--format", "json").stdout)
    assert [(r["env"], r["runs"]) for r in as_json] == truth
    as_csv = list(csv.DictReader(io.StringIO(_q(demo_db, sql, "--format", "csv").stdout)))
    assert [(r["env"], int(r["runs"])) for r in as_csv] == truth
    table = _q(demo_db, sql).stdout
    assert all(env in table for env, _ in truth) and table.rstrip().endswith(f"({len(truth)} rows)")
    out = tmp_path / "runs.parquet"
    written = _q(demo_db, sql, "--format", "parquet", "--output", str(out))
    assert written.exit_code == 0, written.stderr
    assert pl.read_parquet(out).rows() == truth
    refused = _q(demo_db, sql, "--format", "parquet")
    assert refused.exit_code == 1 and "--output" in refused.stderr


def test_parquet_export_reads_back_with_the_same_counts(demo_db, tmp_path):
    folder = tmp_path / "lake"
    result = CliRunner().invoke(main, ["--db", str(demo_db), "export", "--parquet", str(folder)])
    assert result.exit_code == 0, result.stderr
    con = duckdb.connect(str(demo_db), read_only=True)
    reader = duckdb.connect()
    for table, (env, month) in EXPORT.items():
        want = con.execute(f"SELECT count(*) FROM {table}").fetchall()[0][0]
        got = reader.execute(f"SELECT count(*) FROM read_parquet('{folder / table}/**/*.parquet', "
                             "hive_partitioning = true)").fetchall()[0][0]
        assert got == want, table
        if env and want:
            assert list((folder / table).glob("env=*")), f"{table} is not partitioned by env"
        if month and want:
            assert list((folder / table).glob("env=*/month=*")), f"{table} is not partitioned by month"
    prod = reader.execute(f"SELECT count(*) FROM read_parquet('{folder}/runs/**/*.parquet', hive_partitioning = true) "
                          "WHERE env = 'prod'").fetchall()[0][0]
    assert prod == con.execute("SELECT count(*) FROM runs WHERE env = 'prod'").fetchall()[0][0]
    con.close()


def test_dirty_episode_queries_agree_with_the_findings(demo_db):
    now = json.loads(_q(demo_db, "dirty_now", "--format", "json").stdout)
    assert [(r["env"], r["service"], r["database"], r["dirty_version"]) for r in now] == [
        (s["env"], s["service"], s["database"], s["version"]) for s in sample_truth()["final_state"] if s["dirty"]]
    forced = json.loads(_q(demo_db, "forced_recoveries", "--format", "json").stdout)
    con = duckdb.connect(str(demo_db), read_only=True)
    inferred = con.execute("SELECT count(*) FROM findings WHERE kind = 'forced_recovery'").fetchall()[0][0]
    con.close()
    assert len(forced) == inferred == sum(f["kind"] == "forced_recovery" for f in sample_truth()["findings"]) > 0
