"""What the demo fleet holds, as data: the bad records planted one per file (incident 12), written with the
files, and the ground truth in expected.jsonc that the tests read instead of hard-coding it."""
from __future__ import annotations

import json
import re
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

from tests.kit.envelopes import go_json, write_file
from tests.kit.gofmt import iso_ms, iso_week, rfc3339nano, utc_ns
from tests.kit.migrate import Database, Run
from tests.kit.shipping import Record, Shipment

AS_OF = "2026-11-16T00:00:00Z"  # the Monday after the data: the clock of the demo, the report and the tests
WEEKS = ["2026-W44", "2026-W45", "2026-W46"]
SECRETS = ["Sup3rS3cret"]  # in the input (incident 10c); never in the warehouse, a report or a mail
TOOL_OUTCOME = {"version": "success"}  # a `version` run exits 0
# What the analysis must report for each planted incident: (kind, status or None = either, version, scope). A
# version the logs do not name must come out NULL: the tool never guesses. A `service` finding is about the
# service in that env, not one database.
FINDINGS: dict[str, list[tuple[str, str | None, int | None, str]]] = {
    "1a": [("failed_run", "resolved", 16, "database"), ("dirty_open", "resolved", 16, "database")],
    "1c": [("forced_recovery", "resolved", 16, "database")],
    "2a": [("failed_run", "open", 23, "database"), ("dirty_open", "open", 23, "database")],
    "3a": [("prod_rollback", "resolved", 9, "database")],
    "4": [("lock_timeout", "resolved", 23, "database")],
    "5a": [("interrupted_run", "resolved", 15, "database"), ("dirty_open", "resolved", 15, "database")],
    "5c": [("forced_recovery", "resolved", 15, "database")],
    "6a": [("failed_run", "resolved", 4, "database"), ("dirty_open", "resolved", 4, "database")],
    "6b": [("failed_run", "resolved", None, "database"), ("non_idempotent", "open", None, "database")],
    "6c": [("forced_recovery", "resolved", 4, "database")],
    "7a": [("duration_outlier", None, 23, "database")],
    "7b": [("duration_outlier", "open", 23, "service")],
    "8": [("promotion_skipped", "open", 11, "database")],
    "9a": [("missing_down", "open", 5, "database")],
}
# 6b fails in default mode (the error names no version) right after the silent `force 2`: nothing in the logs
# says which version failed, so the run's dirty version must come out NULL although it was 3.
UNLOGGED_DIRTY_VERSION = {"6b"}
# Billing's release job re-runs 23/u after a silent `force 22` in every env: applied again without a down.
VERBOSE = re.compile(r"^\d{4}/\d\d/\d\d \d\d:\d\d:\d\d ")
DOWN = re.compile(r"^(?:Finished )?(\d+)/d (\S+) \(")
RELEASE_JOB = [{"kind": "non_idempotent", "status": "open", "env": env, "service": "billing", "database": None,
                "version": 23} for env in ("dev", "staging", "prod")]


class Output:
    """Writes the fleet's files and remembers, per file, its envelope (its top folder) and its records."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.sources: dict[str, dict[str, Any]] = {}

    def write(self, path: str, data: bytes, mtime_ns: int, records: int) -> None:
        write_file(self.root / path, data, mtime_ns)
        # git keeps no mtimes: the truth records them, so a checkout can be given them back (bare text files
        # take their time from the mtime).
        self.sources[path] = {"format": path.split("/", 1)[0], "records": records, "mtime_ns": mtime_ns}


class Planted:
    """The bad records: one per file, each with the reject reason the tool must record (or none)."""

    def __init__(self, out: Output, docker_ids: dict[str, str]) -> None:
        self.out = out
        self.notes: list[tuple[str, str, str]] = []  # (file, where, what) for the summary
        self.rejects: list[dict[str, Any]] = []
        docker = "docker/env=dev/service=billing/database=billing/{}-json.log".format
        # the B2, B3 and B5 release containers in dev carry the docker defects
        self.truncated, self.no_time, self.bom_crlf = (docker(docker_ids[r]) for r in ("B2-dev", "B3-dev", "B5-dev"))

    def _bad(self, path: str, where: str, what: str, reason: str | None = None, line: int | None = None) -> None:
        self.notes.append((path, where, what))
        if reason:
            self.rejects.append({"source": path, "line": line, "reason": reason})

    def line_files(self, files: dict[str, list[Record]]) -> None:
        """Every file of one record per line, with its planted defect if it has one."""
        for path in sorted(files):
            recs = sorted(files[path])
            lines = [b for _ns, _o, b in recs]
            if path == "kubernetes/orders-2026-W44.jsonl":
                lines.insert(40, b"[1,2,3]")
                self._bad(path, "line 41", "a JSON array, not an object: reject `not a JSON object`", "json_array", 41)
            if path == self.truncated:  # the first record (wait-for-it) was cut off mid-object
                lines[0] = lines[0][: len(lines[0]) * 3 // 5]
                self._bad(path, "line 1", "truncated JSON object: reject `invalid JSON`", "malformed_json", 1)
            if path == self.no_time:
                rec = json.loads(lines[1])
                assert rec["log"].startswith("wait-for-it"), rec
                del rec["time"]
                lines[1] = go_json(rec).encode()
                self._bad(path, "line 2", "docker record without `time`: reject `missing time` "
                                          "(or accept with ts NULL; never drop silently)", "no_time", 2)
            eol = b"\r\n" if path == self.bom_crlf else b"\n"
            data = eol.join(lines) + eol
            if path == self.bom_crlf:
                data = b"\xef\xbb\xbf" + data
                self._bad(path, "whole file", "UTF-8 BOM + CRLF line ends: NOT bad, every record must be "
                                              "accepted (strip the BOM, accept \\r\\n); 0 rejects")
            self.out.write(path, data, recs[-1][0], len(lines))
        path = "docker/env=dev/service=billing/database=billing/empty-json.log"  # a `force 22` container
        self.out.write(path, b"", utc_ns("2026-11-12 10:59:20"), 0)
        self._bad(path, "whole file", "zero bytes: an ingested source with 0 lines and 0 rejects, no error")

    def loki(self, shipped: Shipment) -> dict[str, Any]:
        """The logcli exports (one a week, a re-run of 11-06..11-09, W46 in Europe/Berlin time); returns how
        many records the re-run repeats, and of which file."""
        def export(name: str, lo: str, hi: str, offset_min: int = 0, bad_after: int | None = None) -> int:
            lines, last = shipped.loki_export(utc_ns(lo + " 00:00"), utc_ns(hi + " 00:00"), offset_min)
            repeated = len(lines)
            if bad_after is not None:
                lines.insert(bad_after, b'{"labels":{"container":"migrate","env":"staging"},"line":"\xff\xfe'
                                        b'2026/10/27 15:2\xc3\x28 Start buffering \xe2\x82","timestamp":"2026-10-27T1')
                self._bad(f"loki/{name}", f"line {bad_after + 1}", "bytes that are not valid UTF-8: reject "
                          "`invalid UTF-8` (raw kept, escaped)", "invalid_utf8", bad_after + 1)
            self.out.write(f"loki/{name}", b"\n".join(lines) + b"\n", last, len(lines))
            return repeated

        export("billing-staging-2026-W44.jsonl", "2026-10-26", "2026-11-02", bad_after=7)
        export("billing-staging-2026-W45.jsonl", "2026-11-02", "2026-11-09")
        repeated = export("billing-staging-2026-W45-rerun.jsonl", "2026-11-06", "2026-11-09")
        export("billing-staging-2026-W46.jsonl", "2026-11-09", "2026-11-16", offset_min=60)
        return {"records": repeated, "between": ["loki/billing-staging-2026-W45.jsonl",
                                                 "loki/billing-staging-2026-W45-rerun.jsonl"]}


def _stream(r: Run) -> str:
    """What names the run's stream in its envelope: a pod, a log stream, a run id, a container, a file."""
    s = r.spec
    return {"kubernetes": lambda: s["pod"]["pod_name"], "cloudwatch": lambda: s["task_id"],
            "events": lambda: s["run_id"], "slog": lambda: s["pod"], "loki": lambda: s["pod"],
            "docker": lambda: s["container_id"], "bare": lambda: s["path"],
            "cri": lambda: "text/cri/env=dev/service=orders/database=orders/0.log"}[s["envelope"]]()


def _dirty_version(r: Run) -> int | None:
    """The version the run left or found dirty, as the run's own lines show it."""
    s = r.spec
    if r.outcome == "failed":
        return s["fail"][0]
    if r.outcome == "interrupted":
        return s["kill_at"]
    last = r.lines[-1][1] if r.lines else ""
    if r.outcome == "dirty":
        return int(last.split("Dirty database version ")[1].split(".")[0])
    shown = [text for _ns, text in r.lines if text.endswith(" (dirty)")]  # `version` on a dirty database
    return int(shown[0].split()[-2]) if r.outcome == "version" and shown else None


def _first(r: Run) -> int:
    return r.lines[0][0] if r.lines else r.spec["t"]


def _down_steps(r: Run) -> list[dict[str, Any]]:
    """The down steps the run printed (APPLIED or verbose FINISHED): `<empty>` when there is no down file."""
    steps = [DOWN.match(VERBOSE.sub("", text)) for _ns, text in r.lines]
    return [{"env": r.spec["env"], "service": r.spec["service"], "database": r.spec["db"], "version": int(m[1]),
             "name": m[2], "week": iso_week(_first(r)), "run_first_line": rfc3339nano(_first(r))} for m in steps if m]


def _incident(r: Run) -> dict[str, Any]:
    s = r.spec
    ident, what = s["tag"].split(" ", 1)
    went_up = r.outcome in ("success", "version") and not any(step.endswith("/d") for step in r.applied)
    return {"id": ident, "what": what, "env": s["env"], "service": s["service"], "database": s["db"],
            "stream": _stream(r), "first_line": rfc3339nano(_first(r)),
            "command": s["cmd"], "outcome": TOOL_OUTCOME.get(r.outcome, r.outcome), "error_class": r.error_class,
            "applied": len(r.applied),
            "dirty_version": None if ident in UNLOGGED_DIRTY_VERSION else _dirty_version(r),
            "exit_code": r.exit_code, **({"version_after": r.version_after} if went_up else {})}


def ground_truth(runs: list[Run], state: dict[tuple[str, str, str], Database], planted: Planted,
                 duplicates: dict[str, Any],
                 level_shift: dict[str, Any]) -> str:
    """expected.jsonc: strict JSON (the `.jsonc` name keeps it out of `migrate-lens run sample_logs`, which
    reads every `.json` below the folder)."""
    outcomes: dict[str, Counter[str]] = defaultdict(Counter)
    weekly: dict[str, Counter[str]] = defaultdict(Counter)
    for r in runs:
        outcome = TOOL_OUTCOME.get(r.outcome, r.outcome)
        outcomes[f"{r.spec['service']}/{r.spec['env']}"][outcome] += 1
        weekly[iso_week(_first(r))][outcome] += 1
    incidents = [_incident(r) for r in runs if r.spec.get("tag")]
    findings = [{"incident": i["id"], "kind": kind, **({"status": status} if status else {}), "env": i["env"],
                 "service": i["service"], "database": i["database"] if scope == "database" else None,
                 "version": version}
                for i in incidents for kind, status, version, scope in FINDINGS.get(i["id"], [])]
    truth = {
        "about": "Ground truth of the demo fleet, written by sample_logs/generate.py (do not edit; regenerate). "
                 "Times are UTC; outcomes, error classes and findings are in docs/contract.md's terms.",
        "as_of": AS_OF, "weeks": WEEKS, "secrets": SECRETS,
        "sources": dict(sorted(planted.out.sources.items())),
        "records": sum(s["records"] for s in planted.out.sources.values()),
        "rejects": sorted(planted.rejects, key=lambda x: (x["source"], x["line"])),
        "duplicates": duplicates,
        "runs": {k: dict(sorted(v.items())) for k, v in sorted(outcomes.items())},
        "runs_by_week": {k: dict(sorted(v.items())) for k, v in sorted(weekly.items())},
        "down_steps": [step for r in runs for step in _down_steps(r)],
        "final_state": [{"env": env, "service": svc, "database": db, "version": st.version, "dirty": st.dirty}
                        for (svc, env, db), st in sorted(state.items())],
        "incidents": incidents,
        "findings": findings + [{"incident": "release-job", **f} for f in RELEASE_JOB],
        "level_shift": level_shift,
    }
    return json.dumps(truth, indent=1, ensure_ascii=False) + "\n"


def summary(runs: list[Run], state: dict[tuple[str, str, str], Database], planted: Planted) -> str:
    """What the generator prints: runs per service/env, each incident's lines, the prod 23/u timings, the bad
    records and the final schema state of every database."""
    out = [f"runs: {len(runs)}"]
    cnt: dict[tuple[str, str], Counter[str]] = defaultdict(Counter)
    for r in runs:
        cnt[(r.spec["service"], r.spec["env"])][r.outcome] += 1
    out += [f"  {k} {dict(sorted(cnt[k].items()))}" for k in sorted(cnt)]
    out.append("\nincidents:")
    for r in runs:
        if r.spec.get("tag"):
            i = _incident(r)
            out.append(f"  [{r.spec['tag']}]\n      {i['service']}/{i['env']}/{i['database']} "
                       f"{iso_ms(_first(r))} outcome={r.outcome} exit={r.exit_code} "
                       f"applied={r.applied}\n      files={sorted(r.files)}\n      stream={i['stream']}")
            out += [f"        {rfc3339nano(ns)} | {text}" for ns, text in r.lines[:40]]
    out.append("\n23/u own times in prod (ms):")
    out += [f"   {iso_ms(ns)} {r.spec['db']} {text[20:]}" for r in runs if (r.spec["service"], r.spec["env"]) ==
            ("billing", "prod") for ns, text in r.lines if "Finished 23/u" in text]
    out.append("\nbad records:")
    out += [f"   {b}" for b in planted.notes]
    out.append("\nfinal states:")
    out += [f"   {k} {st.version} {'dirty' if st.dirty else ''}" for k, st in sorted(state.items())]
    return "\n".join(out)
