"""Lint results as text for people, JSON for scripts and SARIF 2.1.0 for code-scanning UIs."""

from __future__ import annotations

import json
from dataclasses import asdict

from pipeline.lint.model import RULES, LintResult


def to_text(result: LintResult) -> str:
    """One `path:line: severity rule: message` line per issue, then the summary."""
    lines = [f"{i.path}:{i.line}: {i.severity} {i.rule}: {i.message}" for i in result.issues]
    return "\n".join([*lines, result.summary()])


def to_json(result: LintResult) -> str:
    return json.dumps({"folder": str(result.folder), "files": result.files, "versions": result.versions,
                       "summary": result.summary(), "issues": [asdict(i) for i in result.issues]}, indent=2)


def to_sarif(result: LintResult) -> str:
    """SARIF 2.1.0 for code-scanning UIs; URIs are the folder as given joined with each file's name."""
    def uri(path: str) -> str:
        full = result.folder / path
        return full.as_uri() if full.is_absolute() else full.as_posix()

    rules = list(RULES)
    level = {"error": "error", "warning": "warning", "info": "note"}
    return json.dumps({
        "$schema": "https://json.schemastore.org/sarif-2.1.0.json",
        "version": "2.1.0",
        "runs": [{
            "tool": {"driver": {"name": "migrate-lens", "rules": [
                {"id": r, "name": r, "shortDescription": {"text": text},
                 "defaultConfiguration": {"level": level[sev]}} for r, (sev, text) in RULES.items()]}},
            "results": [{
                "ruleId": i.rule, "ruleIndex": rules.index(i.rule), "level": level[i.severity],
                "message": {"text": i.message},
                "locations": [{"physicalLocation": {"artifactLocation": {"uri": uri(i.path)},
                                                    "region": {"startLine": i.line}}}],
                "properties": {"version": i.version, "direction": i.direction},
            } for i in result.issues],
        }],
    }, indent=2)


def render(result: LintResult, output_format: str) -> str:
    """`result` as `text`, `json` or `sarif`."""
    return {"text": to_text, "json": to_json, "sarif": to_sarif}[output_format](result)
