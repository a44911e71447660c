"""Lint a golang-migrate folder of PostgreSQL migrations: rollback, idempotency, locks and rewrites.

Files are parsed by PostgreSQL's own parser (libpg_query, through pglast), so `unparsable` means PostgreSQL
rejects the SQL. Results print as text, JSON or SARIF 2.1.0 and can be stored in `lint_issues`. Linting
imports neither DuckDB nor polars: only `store` needs the warehouse.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from pipeline.core.errors import SourceError, UsageError, WarehouseError
from pipeline.core.redact import redact
from pipeline.core.vocabulary import FINDINGS_EXIT, LINT_LEVELS, lint_rank
from pipeline.lint.checks import FileCheck, Found, NotNullChecks
from pipeline.lint.inverse import missing_inverse
from pipeline.lint.model import RULES, Direction, LintIssue, LintResult, Rule
from pipeline.lint.output import render, to_json, to_sarif, to_text
from pipeline.lint.sqlfile import ALL, SqlFile, read_sql

if TYPE_CHECKING:
    import duckdb

    from pipeline.core.config import LintConfig

__all__ = ["RULES", "LintIssue", "LintResult", "Rule", "exit_code", "lint", "render", "store", "to_json",
           "to_sarif", "to_text"]

# golang-migrate's source.DefaultParse: migrate loads only the files that match.
FILENAME = re.compile(r"^([0-9]+)_(.*)\.(down|up)\.(.*)$")


@dataclass(frozen=True)
class _File:
    path: Path
    version: int
    direction: Direction
    ext: str


def lint(folder: Path, *, multi_statement: bool = False, config: LintConfig | None = None) -> LintResult:
    """Every issue in the golang-migrate folder `folder`, in file and line order.

    `multi_statement`: the DSN sets x-multi-statement=true, so migrate runs a file's statements one by one.
    `config`: the `[lint]` section (rules disabled, levels replaced).
    """
    folder = Path(folder)
    files, unmatched = _migration_files(folder)
    found: list[tuple[_File | None, str, Found]] = [
        (None, name, Found("unmatched-name", 1, (
            f"golang-migrate does not load {name} (its names are N_name.up.sql / N_name.down.sql), so its "
            "statements never run: rename it or move it out of the folder"))) for name in unmatched]
    first: dict[tuple[int, str], _File] = {}
    for f in files:  # in name order, as migrate reads them: the later file is the one it rejects
        other = first.setdefault((f.version, f.direction), f)
        if other is not f:
            found.append((f, f.path.name, Found("duplicate-version", 1, (
                f"version {f.version} already has {other.path.name}; migrate refuses the whole folder "
                f"(duplicate migration file: {f.path.name}): give one of them a new version"))))
    parsed: dict[Path, SqlFile] = {}
    checks = NotNullChecks()  # SET NOT NULL may rely on a CHECK validated by an earlier version
    for f in sorted(files, key=lambda f: (f.version, f.direction == "up", f.path.name)):
        if f.ext.lower() == "sql":
            parsed[f.path] = sql = _read(f)
            found += [(f, f.path.name, x) for x in _lint_sql(f, sql, multi_statement, checks)]
    for f in files:
        pair = first.get((f.version, "down" if f.direction == "up" else "up"))
        if f.direction == "up" and pair is None:
            down = f.path.name[: -len(f".up.{f.ext}")] + f".down.{f.ext}"
            found.append((f, f.path.name, Found("missing-down", 1, (
                f"no down file for version {f.version}: `migrate down` steps past it and undoes nothing "
                f"(it logs <empty>); add {down}"))))
        elif f.direction == "down" and pair is None:
            found.append((f, f.path.name, Found("missing-up", 1, (
                f"{f.path.name} has no up file: migrate records version {f.version} as applied and runs "
                "nothing for it; add the up file or remove this one"))))
        elif f.direction == "down" and f.path in parsed:
            # the up of the same name: with duplicate versions, the version alone pairs the wrong files
            up = f.path.with_name(f.path.name[: -len(f".down.{f.ext}")] + f".up.{f.ext}")
            if up in parsed:
                found += [(f, f.path.name, x) for x in _inverse(parsed[up], parsed[f.path], up.name)]
    issues, suppressed = _finish(found, parsed, config)
    return LintResult(folder, len(files), len({f.version for f in files}), tuple(issues), suppressed)


def _migration_files(folder: Path) -> tuple[list[_File], list[str]]:
    """The files migrate loads, in name order, and the .sql files it would skip."""
    if not folder.is_dir():
        raise SourceError(f"{folder}: no such migrations folder; "
                          "pass the directory migrate's -path points at")
    try:
        names = sorted(p.name for p in folder.iterdir() if p.is_file())
    except OSError as e:
        raise SourceError(f"{folder}: cannot list the folder ({e.strerror}); check its permissions") from e
    files = [_File(folder / n, int(m[1]), "up" if m[3] == "up" else "down", m[4])
             for n in names if (m := FILENAME.match(n))]
    unmatched = [n for n in names if n.lower().endswith(".sql") and not FILENAME.match(n)]
    if not files:
        skipped = f" ({len(unmatched)} .sql files do not match: {', '.join(unmatched[:3])})" if unmatched else ""
        raise SourceError(f"{folder}: no migration files (N_name.up.sql / N_name.down.sql){skipped}; "
                          "point lint at the folder migrate's -path uses")
    return files, unmatched


def _read(f: _File) -> SqlFile:
    try:
        text = f.path.read_text(encoding="utf-8-sig", errors="replace")
    except OSError as e:
        raise SourceError(f"{f.path}: cannot read the migration ({e.strerror}); check its permissions") from e
    return read_sql(text)


def _lint_sql(f: _File, sql: SqlFile, multi_statement: bool, checks: NotNullChecks) -> list[Found]:
    if not sql.statements and f.direction == "down":  # golang-migrate runs an empty body as a no-op
        explained = sql.has_comment
        return [Found("empty-down", 1, (
            f"{f.path.name} holds no statement: `migrate down` marks version {f.version} rolled back and "
            + ("changes nothing (a comment in the file says why)" if explained else
               "changes nothing; write the statements that undo the up, or a comment saying why there are none")),
            level="info" if explained else None)]
    return FileCheck(sql, f.direction == "up", multi_statement, checks).run()


def _inverse(up: SqlFile, down: SqlFile, up_name: str) -> list[Found]:
    if not down.statements or any(s.node is None for s in (*up.statements, *down.statements)):
        return []  # empty-down and unparsable say more
    left, gone = missing_inverse(up, down)
    if not left and not gone:
        return []
    parts = []
    if left:
        parts.append(f"does not drop {', '.join(map(str, left))} that {up_name} creates")
    if gone:
        parts.append(f"does not re-create {', '.join(map(str, gone))} that {up_name} drops")
    return [Found("down-not-inverse", 1, (
        f"this down {' and '.join(parts)}: `migrate down` succeeds and leaves the schema between two versions"))]


def _finish(found: list[tuple[_File | None, str, Found]], parsed: dict[Path, SqlFile],
            config: LintConfig | None) -> tuple[list[LintIssue], int]:
    """Ignore comments, `[lint] disable` and `[lint.levels]` applied; the issues and how many were silenced."""
    issues, suppressed = [], 0
    disabled = set(config.disable) if config else set()
    levels = config.levels if config else {}
    for f, name, x in found:
        file_ignored = parsed[f.path].ignored if f is not None and f.path in parsed else frozenset()
        ignored = file_ignored | (x.statement.ignored if x.statement else frozenset())
        if x.rule in disabled or x.rule in ignored or ALL in ignored:
            suppressed += 1
            continue
        level = levels.get(x.rule) or x.level or RULES[x.rule].level  # type: ignore[index]
        issues.append(LintIssue(x.rule, level, name, x.line, f.version if f else None,  # type: ignore[arg-type]
                                f.direction if f else None, redact(x.message), x.column))
    issues.sort(key=lambda i: (i.path, i.line, i.rule))
    return issues, suppressed


def store(con: duckdb.DuckDBPyConnection, result: LintResult, service: str) -> int:
    """Replace `service`'s rows in lint_issues with `result`'s issues; the number of rows stored.

    A file with no version (unmatched-name) is stored as version -1."""
    import duckdb  # only here: linting alone starts without DuckDB

    from pipeline.warehouse import transaction

    now = datetime.now(UTC).replace(tzinfo=None)
    rows = [(service, -1 if i.version is None else i.version, i.direction, i.rule, i.severity, i.path, i.line,
             i.message, now) for i in result.issues]
    try:
        with transaction(con):
            con.execute("DELETE FROM lint_issues WHERE service = ?", [service])
            if rows:
                con.executemany("INSERT INTO lint_issues (service, version, direction, rule, severity, path, "
                                "line, message, linted_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", rows)
    except duckdb.Error as e:
        raise WarehouseError(f"lint_issues: storing the lint of {service} failed: "
                             f"{str(e).splitlines()[0]} (check --db)") from e
    return len(rows)


def exit_code(result: LintResult, fail_on: str) -> int:
    """3 when an issue is at or above `fail_on` (error, warning, info; never: always 0), else 0."""
    if fail_on == "never":
        return 0
    if fail_on not in LINT_LEVELS:
        raise UsageError(f"--fail-on {fail_on}: choose error, warning, info or never")
    return FINDINGS_EXIT if any(lint_rank(i.severity) <= lint_rank(fail_on) for i in result.issues) else 0
