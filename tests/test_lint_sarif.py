"""lint's SARIF 2.1.0: valid against the schema, with rule metadata and repository-relative locations."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import jsonschema
import pytest

from pipeline.lint import RULES, lint, to_sarif

ROOT = Path(__file__).resolve().parent.parent
CORPUS = ROOT / "tests" / "fixtures" / "lint"
# The whole SARIF 2.1.0 JSON Schema (JSON Schema 2020-12), as Microsoft's SARIF SDK embeds it in its multitool.
SCHEMA = json.loads((ROOT / "tests" / "fixtures" / "sarif-2.1.0.schema.json").read_text(encoding="utf-8"))
FOLDERS = [CORPUS / "unparsable" / "flags-syntax-error", CORPUS / "unmatched-name" / "flags-no-direction",
           CORPUS / "missing-down" / "flags-no-down", ROOT / "tests/fixtures/real-migrate-logs/migrations/app"]


def validate(doc: dict) -> None:
    jsonschema.Draft202012Validator(SCHEMA, format_checker=jsonschema.FormatChecker()).validate(doc)


@pytest.mark.parametrize("folder", FOLDERS, ids=lambda p: p.name)
def test_sarif_is_valid_and_carries_every_issue(folder):
    result = lint(folder)
    doc = json.loads(to_sarif(result))
    validate(doc)
    [run] = doc["runs"]
    rules = run["tool"]["driver"]["rules"]
    assert [r["id"] for r in rules] == list(RULES)
    assert len(run["results"]) == len(result.issues) > 0
    for res, issue in zip(run["results"], result.issues, strict=True):
        assert res["ruleId"] == issue.rule == rules[res["ruleIndex"]]["id"]
        assert res["level"] == {"error": "error", "warning": "warning", "info": "note"}[issue.severity]
        assert res["message"]["text"] == issue.message
        assert res["locations"][0]["physicalLocation"]["region"]["startLine"] == issue.line


def test_the_schema_catches_what_code_scanning_would_refuse():
    doc = json.loads(to_sarif(lint(FOLDERS[0])))
    doc["runs"][0]["results"][0]["level"] = "info"  # SARIF says "note"
    with pytest.raises(jsonschema.ValidationError):
        validate(doc)
    doc = json.loads(to_sarif(lint(FOLDERS[0])))
    del doc["runs"][0]["results"][0]["message"]
    with pytest.raises(jsonschema.ValidationError):
        validate(doc)


def test_rule_metadata_says_why_and_how_to_fix():
    doc = json.loads(to_sarif(lint(FOLDERS[0])))
    rule = next(r for r in doc["runs"][0]["tool"]["driver"]["rules"] if r["id"] == "unparsable")
    assert rule["shortDescription"]["text"] == RULES["unparsable"].title
    assert rule["fullDescription"]["text"] == RULES["unparsable"].why
    assert RULES["unparsable"].fix in rule["help"]["markdown"]
    assert rule["defaultConfiguration"]["level"] == "error"


def test_inside_a_git_checkout_paths_are_relative_to_its_root():
    doc = json.loads(to_sarif(lint(FOLDERS[0])))  # this checkout (a worktree's .git is a file)
    [run] = doc["runs"]
    assert run["originalUriBaseIds"] == {"SRCROOT": {"uri": ROOT.as_uri() + "/"}}
    location = next(r for r in run["results"] if r["ruleId"] == "unparsable")["locations"][0]["physicalLocation"]
    assert location["artifactLocation"] == {"uri": "tests/fixtures/lint/unparsable/flags-syntax-error/1_change.up.sql",
                                            "uriBaseId": "SRCROOT"}
    assert location["region"] == {"startLine": 3, "startColumn": 3}  # where PostgreSQL stops


@pytest.mark.skipif(shutil.which("git") is None, reason="needs git")
def test_in_a_fresh_repository_and_outside_one(tmp_path):
    repo = tmp_path / "repo"
    folder = repo / "db" / "migrations"
    folder.mkdir(parents=True)
    (folder / "1_a.up.sql").write_text("CREATE TABLE t (a int);\n", encoding="utf-8")
    outside = json.loads(to_sarif(lint(folder)))["runs"][0]
    assert outside["originalUriBaseIds"]["SRCROOT"]["uri"] == folder.resolve().as_uri() + "/"
    assert {r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"] for r in outside["results"]} == \
        {"1_a.up.sql"}
    subprocess.run(["git", "init", "-q", str(repo)], check=True)
    inside = json.loads(to_sarif(lint(folder)))["runs"][0]
    assert inside["originalUriBaseIds"]["SRCROOT"]["uri"] == repo.resolve().as_uri() + "/"
    assert {r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"] for r in inside["results"]} == \
        {"db/migrations/1_a.up.sql"}
