"""Lint results as text for people, JSON for scripts and SARIF 2.1.0 for code scanning (GitHub and others)."""

from __future__ import annotations

import json
from dataclasses import asdict
from importlib import metadata
from pathlib import Path
from typing import Any

from pipeline.lint.model import RULES, LintResult

_SARIF_LEVEL = {"error": "error", "warning": "warning", "info": "note"}
BASE_ID = "SRCROOT"  # originalUriBaseIds key: the repository root, or the linted folder outside a checkout


def to_text(result: LintResult) -> str:
    """One `path:line: severity rule: message` line per issue, then the summary."""
    lines = [f"{i.path}:{i.line}: {i.severity} {i.rule}: {i.message}" for i in result.issues]
    return "\n".join([*lines, result.summary()])


def to_json(result: LintResult) -> str:
    return json.dumps({"folder": str(result.folder), "files": result.files, "versions": result.versions,
                       "summary": result.summary(), "suppressed": result.suppressed,
                       "issues": [asdict(i) for i in result.issues]}, indent=2)


def repository_root(folder: Path) -> Path | None:
    """The git checkout holding `folder` (a `.git` folder or file above it), or None."""
    here = folder.resolve()
    for candidate in (here, *here.parents):
        if (candidate / ".git").exists():
            return candidate
    return None


def to_sarif(result: LintResult) -> str:
    """SARIF 2.1.0: rule metadata, and artifact URIs relative to the repository root (or, outside a git
    checkout, to the folder) with that base in `originalUriBaseIds`, as code-scanning uploads expect."""
    folder = result.folder.resolve()
    root = repository_root(folder) or folder
    prefix = folder.relative_to(root).as_posix() if folder != root else ""
    rule_ids = list(RULES)
    rules = [{
        "id": rid, "name": "".join(w.capitalize() for w in rid.split("-")),
        "shortDescription": {"text": rule.title},
        "fullDescription": {"text": rule.why},
        "help": {"text": f"{rule.why} Fix: {rule.fix}",
                 "markdown": f"**Why:** {rule.why}\n\n**Fix:** {rule.fix}"},
        "defaultConfiguration": {"level": _SARIF_LEVEL[rule.level]},
        "properties": {"tags": ["migrations", "postgresql"]},
    } for rid, rule in RULES.items()]

    def result_of(i: Any) -> dict[str, Any]:
        region: dict[str, int] = {"startLine": i.line}
        if i.column:
            region["startColumn"] = i.column
        uri = f"{prefix}/{i.path}" if prefix else i.path
        return {
            "ruleId": i.rule, "ruleIndex": rule_ids.index(i.rule), "level": _SARIF_LEVEL[i.severity],
            "message": {"text": i.message},
            "locations": [{"physicalLocation": {"artifactLocation": {"uri": uri, "uriBaseId": BASE_ID},
                                                "region": region}}],
            "properties": {"version": i.version, "direction": i.direction},
        }

    return json.dumps({
        "$schema": "https://json.schemastore.org/sarif-2.1.0.json",
        "version": "2.1.0",
        "runs": [{
            "tool": {"driver": {"name": "migrate-lens", "version": _version(), "rules": rules}},
            "originalUriBaseIds": {BASE_ID: {"uri": root.as_uri().rstrip("/") + "/"}},
            "results": [result_of(i) for i in result.issues],
        }],
    }, indent=2)


def _version() -> str:
    try:
        return metadata.version("migrate-lens")
    except metadata.PackageNotFoundError:  # run from a checkout that was never installed
        return "0+unknown"


def render(result: LintResult, output_format: str) -> str:
    """`result` as `text`, `json` or `sarif`."""
    return {"text": to_text, "json": to_json, "sarif": to_sarif}[output_format](result)
