"""verify results as a text table for people, JSON for scripts, and JUnit XML for CI test reports
(the Jenkins/Surefire shape that GitHub Actions reporters, GitLab and Jenkins read)."""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET

from pipeline.core.vocabulary import VERIFY_CHECKS
from pipeline.verify.model import VerifyResult

# Characters XML 1.0 cannot carry at all (an error text may quote any byte of a file).
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")
_MARK = {"pass": "pass", "fail": "FAIL", "skip": "skip", "missing": "MISSING"}


def to_text(result: VerifyResult) -> str:
    """One row per version, one column per check; then each failure's detail, then the summary."""
    head = ["version", "name", *VERIFY_CHECKS]
    rows = [[str(v.version), v.name, *(_MARK[c.status] for c in v.checks)] for v in result.versions]
    widths = [max(len(r[i]) for r in [head, *rows]) for i in range(len(head))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip() for row in [head, *rows]]
    for v in result.versions:
        for c in v.checks:
            if c.status in ("fail", "missing"):
                detail = c.detail.replace("\n", "\n    ")
                lines.append(f"{v.version} {c.check}: {c.status}\n    {detail}")
    if result.not_reached:
        lines.append("not reached: " + ", ".join(str(n) for n in result.not_reached))
    if result.skipped_files:
        lines.append("skipped (not N_title.up|down.ext): " + ", ".join(result.skipped_files))
    return "\n".join([*lines, result.summary()])


def to_json(result: VerifyResult) -> str:
    return json.dumps({
        "ok": result.ok,
        "folder": str(result.folder),
        "server": result.server,
        "strict": result.strict,
        "allow_missing_down": result.allow_missing_down,
        "multi_statement": result.multi_statement,
        "versions": [{"version": v.version, "name": v.name,
                      "checks": {c.check: c.status for c in v.checks},
                      "details": {c.check: c.detail for c in v.checks if c.detail}} for v in result.versions],
        "not_reached": list(result.not_reached),
        "skipped_files": list(result.skipped_files),
        "verified_at": result.verified_at.isoformat() + "Z",
        "seconds": round(result.seconds, 3),
        "summary": result.summary(),
    }, indent=2)


def to_junit(result: VerifyResult) -> str:
    """<testsuites><testsuite name=verify:FOLDER><testcase classname=migrations.N_name name=check>, one test
    case per version and check. A failure counted by the options is <failure>; a reported one (data_restored
    or idempotent_up without --strict, a missing down with --allow-missing-down) is a pass with the detail in
    <system-out>; a skip is <skipped>. Versions not reached are skipped test cases too."""
    counted = {(v.version, c.check) for v, c in result.problems()}
    suite = ET.Element("testsuite", name=f"migrate-lens verify {result.folder}",
                       timestamp=result.verified_at.isoformat(timespec="seconds"), hostname="localhost")
    tests = failures = skipped = 0
    for v in result.versions:
        for c in v.checks:
            case = ET.SubElement(suite, "testcase", classname=f"migrations.{v.version}_{v.name}", name=c.check,
                                 time=f"{c.seconds:.3f}")
            tests += 1
            if (v.version, c.check) in counted:
                failures += 1
                first = (c.detail.splitlines() or [c.status])[0]
                failure = ET.SubElement(case, "failure", message=_xml(first), type=c.status)
                failure.text = _xml(c.detail)
            elif c.status == "skip":
                skipped += 1
                ET.SubElement(case, "skipped", message=_xml(c.detail))
            elif c.detail:
                ET.SubElement(case, "system-out").text = _xml(f"{c.status} (reported, not counted): {c.detail}")
    for n in result.not_reached:
        case = ET.SubElement(suite, "testcase", classname=f"migrations.{n}", name="up", time="0.000")
        ET.SubElement(case, "skipped", message="not reached: an earlier up failed")
        tests += 1
        skipped += 1
    suite.set("tests", str(tests))
    suite.set("failures", str(failures))
    suite.set("errors", "0")
    suite.set("skipped", str(skipped))
    suite.set("time", f"{result.seconds:.3f}")
    root = ET.Element("testsuites", name="migrate-lens verify", tests=str(tests), failures=str(failures),
                      errors="0", skipped=str(skipped), time=f"{result.seconds:.3f}")
    root.append(suite)
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode")


def _xml(text: str) -> str:
    return _NOT_XML.sub("\N{REPLACEMENT CHARACTER}", text)


def render(result: VerifyResult, output_format: str) -> str:
    """`result` as `text`, `json` or `junit`."""
    return {"text": to_text, "json": to_json, "junit": to_junit}[output_format](result)
