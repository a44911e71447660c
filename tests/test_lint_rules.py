"""`lint` rules over the corpus in tests/fixtures/lint/<rule>/<case>/, ignore comments and the `[lint]` config.

Each case is a small migrations folder: a `flags-*` case must raise its rule, a `clean-*` case must not.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from pipeline.cli import main
from pipeline.core.config import Config, LintConfig, load_config
from pipeline.core.errors import ConfigError
from pipeline.core.vocabulary import LINT_RULES
from pipeline.lint import RULES, lint

CORPUS = Path(__file__).parent / "fixtures" / "lint"
CASES = sorted((rule.name, case.name) for rule in CORPUS.iterdir() for case in rule.iterdir())


def rules_in(folder: Path, **kwargs) -> set[str]:
    return {i.rule for i in lint(folder, **kwargs).issues}


def write(tmp_path: Path, files: dict[str, str]) -> Path:
    folder = tmp_path / "migrations"
    folder.mkdir(exist_ok=True)
    for name, text in files.items():
        (folder / name).write_text(text, encoding="utf-8")
    return folder


@pytest.mark.parametrize("rule, case", CASES, ids=[f"{r}/{c}" for r, c in CASES])
def test_corpus_case(rule, case):
    raised = rule in rules_in(CORPUS / rule / case)
    assert raised == case.startswith("flags-"), f"{rule}/{case}: {'raised' if raised else 'not raised'}"


def test_every_rule_has_a_flagging_and_a_clean_case_in_the_corpus():
    for rule in LINT_RULES:
        kinds = {case.split("-")[0] for r, case in CASES if r == rule}
        assert kinds == {"flags", "clean"}, rule


def test_every_rule_has_a_level_a_title_a_why_and_a_fix():
    assert list(RULES) == list(LINT_RULES)
    for rule in RULES.values():
        assert rule.level in ("error", "warning", "info")
        assert all(len(text) > 15 and "\n" not in text for text in (rule.title, rule.why, rule.fix))


# ------------------------------------------------------------------------------------------ ignore comments

UP = "CREATE TABLE accounts (id bigint);\n"


@pytest.mark.parametrize("marker, silenced", [
    ("-- migrate-lens:ignore not-idempotent", True),
    ("-- migrate-lens:ignore rename, not-idempotent", True),
    ("--migrate-lens:ignore not-idempotent -- reviewed by the DBA", True),
    ("-- migrate-lens:ignore rename", False),
    ("-- migrate-lens:ignore", True),  # no id: every rule
    ("-- atlas:nolint", True),
    ("-- atlas:nolint destructive", False),  # Atlas's name for destructive-in-up
    ("-- squawk-ignore prefer-robust-stmts", True),  # squawk's name for not-idempotent
    ("-- squawk-ignore", True),
    ("-- squawk-ignore-file prefer-robust-stmts", True),
    ("-- a comment that mentions migrate-lens:ignore not-idempotent", False),
])
def test_an_ignore_comment_on_the_line_before_the_statement(tmp_path, marker, silenced):
    folder = write(tmp_path, {"1_a.up.sql": f"SELECT 1;\n{marker}\n{UP}", "1_a.down.sql": "DROP TABLE accounts;\n"})
    up = {i.rule for i in lint(folder).issues if i.path == "1_a.up.sql"}
    assert ("not-idempotent" in up) != silenced


def test_an_ignore_comment_covers_only_the_next_statement(tmp_path):
    sql = f"-- migrate-lens:ignore not-idempotent\n{UP}CREATE TABLE orders (id bigint);\n"
    folder = write(tmp_path, {"1_a.up.sql": sql, "1_a.down.sql": "DROP TABLE accounts, orders;\n"})
    result = lint(folder)
    assert [(i.rule, i.line) for i in result.issues if i.path == "1_a.up.sql"] == [("not-idempotent", 3)]
    assert result.suppressed == 1


def test_an_ignore_comment_at_the_top_of_the_file_set_apart_covers_the_file(tmp_path):
    sql = f"-- migrate-lens:ignore not-idempotent, no-lock-timeout\n\n{UP}ALTER TABLE users ADD COLUMN x int;\n"
    folder = write(tmp_path, {"1_a.up.sql": sql, "1_a.down.sql": "-- nothing to undo: reviewed\n"})
    result = lint(folder)
    assert {i.rule for i in result.issues if i.path == "1_a.up.sql"} == set()
    assert result.suppressed == 3


def test_a_file_ignore_silences_the_whole_file_issues_too(tmp_path):
    folder = write(tmp_path, {"1_a.up.sql": "-- migrate-lens:ignore missing-down\n\nSELECT 1;\n",
                              "2_b.down.sql": "-- migrate-lens:ignore empty-down, missing-up\n"})
    assert lint(folder).issues == ()


# ---------------------------------------------------------------------------------------------- [lint] config

def test_config_disables_rules_and_sets_levels(tmp_path):
    folder = write(tmp_path, {"1_a.up.sql": "ALTER TABLE users RENAME COLUMN mail TO email;\n",
                              "1_a.down.sql": "ALTER TABLE users RENAME COLUMN email TO mail;\n"})
    assert rules_in(folder) == {"rename", "no-lock-timeout"}
    config = LintConfig(disable=["no-lock-timeout"], levels={"rename": "error"})
    result = lint(folder, config=config)
    assert [(i.rule, i.severity) for i in result.issues] == [("rename", "error"), ("rename", "error")]
    assert result.suppressed == 2


def test_config_refuses_an_unknown_rule_id(tmp_path):
    path = tmp_path / "lens.toml"
    path.write_text('[lint]\ndisable = ["no-such-rule"]\nlevels = { rename = "fatal" }\n', encoding="utf-8")
    with pytest.raises(ConfigError) as e:
        load_config(path)
    assert "lint.disable.0: Input should be 'missing-down'" in str(e.value)
    assert "lint.levels.rename: Input should be 'error', 'warning' or 'info'" in str(e.value)


# ------------------------------------------------------------------------------------------------ the CLI

@pytest.mark.parametrize("args, code", [
    ([], 0),  # --fail-on error, and the case holds warnings only
    (["--fail-on", "warning"], 3),
    (["--fail-on", "never"], 0),
])
def test_cli_exit_codes(args, code):
    result = CliRunner().invoke(main, ["lint", str(CORPUS / "rename" / "flags-table"), *args])
    assert result.exit_code == code, result.output
    assert "rename: RENAME of TABLE users to accounts" in result.stdout


def test_cli_exits_3_on_an_error_and_2_on_a_bad_level():
    failing = CliRunner().invoke(main, ["lint", str(CORPUS / "unparsable" / "flags-syntax-error")])
    assert failing.exit_code == 3
    assert "1_change.up.sql:3: error unparsable: PostgreSQL rejects this: syntax error at or near \"b\"" in \
        failing.stdout
    bad = CliRunner().invoke(main, ["lint", str(CORPUS / "unparsable" / "flags-syntax-error"), "--fail-on", "x"])
    assert (bad.exit_code, bad.stderr.strip()) == (2, "Error: --fail-on x: choose error, warning, info or never")


def test_cli_reads_the_lint_section_of_the_config(tmp_path):
    path = tmp_path / "lens.toml"
    path.write_text('[lint]\nlevels = { rename = "error" }\n', encoding="utf-8")
    result = CliRunner().invoke(main, ["--config", str(path), "lint", str(CORPUS / "rename" / "flags-table")])
    assert result.exit_code == 3
    assert "error rename:" in result.stdout


def test_lint_starts_without_duckdb_polars_or_the_config_models_unless_given_a_config(tmp_path):
    (tmp_path / "lens.toml").write_text("[lint]\ndisable = []\n", encoding="utf-8")
    code = ("import sys\nfrom pipeline.cli import main\n"
            "try:\n    main([*sys.argv[2:], 'lint', sys.argv[1], '--fail-on', 'never'])\nexcept SystemExit:\n    pass\n"
            "print(sorted(m for m in ('duckdb', 'polars', 'pyarrow', 'pydantic') if m in sys.modules))")
    folder = str(CORPUS / "rename" / "flags-table")

    def loaded(*args: str) -> str:
        run = subprocess.run([sys.executable, "-c", code, folder, *args], capture_output=True, text=True, check=True)
        assert "rename" in run.stdout  # it did lint
        return run.stdout.splitlines()[-1]

    assert loaded() == "[]"
    # a config file is read with pydantic's models; still no warehouse libraries
    assert loaded("--config", str(tmp_path / "lens.toml")) == "['pydantic']"
    assert Config().lint == LintConfig()


def test_statements_on_a_table_created_unguarded_in_the_file_leave_the_create_as_the_one_issue(tmp_path):
    sql = ("CREATE TABLE accounts (id bigint);\nALTER TABLE accounts ADD COLUMN plan text;\n"
           "ALTER TABLE accounts DROP COLUMN plan;\nCREATE INDEX accounts_id ON accounts (id);\n")
    folder = write(tmp_path, {"1_a.up.sql": sql, "1_a.down.sql": "SET lock_timeout = '1s';\nDROP TABLE IF EXISTS accounts;"})
    assert [(i.rule, i.line) for i in lint(folder).issues] == [("not-idempotent", 1)]


def test_every_rule_is_in_the_readme_table_and_the_contract():
    root = Path(__file__).resolve().parent.parent
    readme = (root / "README.md").read_text(encoding="utf-8")
    contract = (root / "docs" / "contract.md").read_text(encoding="utf-8")
    for rid, rule in RULES.items():
        assert f"| `{rid}` | {rule.level} | {rule.title} | {rule.why} | {rule.fix} |" in readme, rid
        assert f"| `{rid}` | {rule.level} | {rule.title} |" in contract, rid
