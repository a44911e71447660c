"""Lint a golang-migrate folder for the rollback and idempotency practice (PostgreSQL).

Files are split into statements and classified with sqlglot's postgres dialect; a statement sqlglot cannot
parse is checked with patterns. Results print as text, JSON or SARIF 2.1.0 and are stored in `lint_issues`.
"""

from __future__ import annotations

import logging
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import NamedTuple

import duckdb
from sqlglot import exp
from sqlglot.dialects.postgres import Postgres
from sqlglot.errors import ParseError, SqlglotError
from sqlglot.tokens import Token, TokenType

from pipeline.core.errors import SourceError, UsageError, WarehouseError
from pipeline.core.redact import redact
from pipeline.core.vocabulary import FINDINGS_EXIT, LINT_LEVELS, lint_rank
from pipeline.lint.model import RULES, Direction, LintIssue, LintResult
from pipeline.lint.output import render, to_json, to_sarif, to_text
from pipeline.warehouse import transaction

__all__ = ["RULES", "LintIssue", "LintResult", "exit_code", "lint", "render", "store", "to_json", "to_sarif", "to_text"]

# golang-migrate's source.DefaultParse: migrate skips files that do not match, and so does lint.
FILENAME = re.compile(r"^([0-9]+)_(.*)\.(down|up)\.(.*)$")

_PG = Postgres()
logging.getLogger("sqlglot").setLevel(logging.ERROR)  # no "falling back to Command" chatter on stderr
_LITERALS = frozenset(t for t in TokenType if t.name.endswith("STRING"))
_CREATE_KINDS = {"TABLE", "INDEX", "TYPE", "SEQUENCE", "VIEW", "MATERIALIZED VIEW", "SCHEMA", "EXTENSION",
                 "FUNCTION", "PROCEDURE"}
_OR_REPLACE = {"VIEW", "FUNCTION", "PROCEDURE"}
_DATA_DROPS = {"TABLE", "SCHEMA", "COLUMN"}
# What PostgreSQL refuses inside a transaction block ("… cannot run inside a transaction block").
_CONCURRENTLY = re.compile(r"(?i)^(?:CREATE\s+(?:UNIQUE\s+)?INDEX\s+CONCURRENTLY|DROP\s+INDEX\s+CONCURRENTLY|"
                           r"REINDEX\b.*?\bCONCURRENTLY|"
                           r"ALTER\s+TABLE\b.*?\bDETACH\s+PARTITION\s+\S+\s+CONCURRENTLY)\b")
_BEGIN = re.compile(r"(?i)^(?:BEGIN|START\s+TRANSACTION)\b")
# Pattern fallback, on the normalised text (comments dropped, literals blanked, whitespace collapsed).
_LEX = re.compile(r"(?s)--[^\n]*|/\*.*?(?:\*/|\Z)|'(?:[^']|'')*(?:'|\Z)|\"(?:[^\"]|\"\")*(?:\"|\Z)"
                  r"|\$([A-Za-z_]\w*|)\$.*?(?:\$\1\$|\Z)|;|\s+|[^;'\"$/\-\s]+|.")
_CREATE_RE = re.compile(
    r"(?i)^CREATE\s+(OR\s+REPLACE\s+)?"
    r"(?:(?:GLOBAL|LOCAL|TEMP|TEMPORARY|UNLOGGED|UNIQUE|TRUSTED|PROCEDURAL)\s+)*"
    r"(MATERIALIZED\s+VIEW|TABLE|INDEX|TYPE|SEQUENCE|VIEW|SCHEMA|EXTENSION|FUNCTION|PROCEDURE)\b\s*"
    r"(?:CONCURRENTLY\s+)?(IF\s+NOT\s+EXISTS\s+)?((?!ON\b)[^\s(]+)?")
_DROP_RE = re.compile(r"(?i)^DROP\s+(MATERIALIZED\s+VIEW|\w+)\s+(?:CONCURRENTLY\s+)?"
                      r"(IF\s+EXISTS\s+)?([^\s(,]+)?")
_ALTER_RE = re.compile(r"(?i)^ALTER\s+TABLE\s+(?:IF\s+EXISTS\s+)?(?:ONLY\s+)?\S+\s+(.*)$")
_ACTION_RE = re.compile(r"(?i)(?:^|,)\s*(ADD|DROP)\s+(?:(COLUMN|CONSTRAINT)\s+)?"
                        r"(IF\s+(?:NOT\s+)?EXISTS\s+)?([^\s,]+)")
_TABLE_CONSTRAINTS = {"CONSTRAINT", "PRIMARY", "UNIQUE", "FOREIGN", "CHECK", "EXCLUDE"}
_TRUNCATE_RE = re.compile(r"(?i)^TRUNCATE\s+(?:TABLE\s+)?(?:ONLY\s+)?([^\s;]+)")
_DELETE_RE = re.compile(r"(?i)^DELETE\s+FROM\s+(?:ONLY\s+)?(\S+)")

_Fact = tuple[str, str, bool, str]  # (verb, kind, guarded, name), e.g. ("create", "TABLE", False, "users")


class _File(NamedTuple):
    path: Path
    version: int
    direction: Direction
    ext: str


class _Stmt(NamedTuple):
    line: int
    text: str  # as written
    norm: str  # what the patterns read: comments dropped, literals blanked to '', whitespace collapsed


def lint(folder: Path, *, multi_statement: bool = False) -> LintResult:
    """Every issue in the golang-migrate folder `folder`, in file and line order.

    `multi_statement`: the DSN sets x-multi-statement=true, so migrate runs a file's statements one by one.
    """
    folder = Path(folder)
    files = _migration_files(folder)
    issues: list[LintIssue] = []
    first: dict[tuple[int, str], _File] = {}
    for f in files:  # in name order, as migrate reads them: the later file is the one it rejects
        other = first.setdefault((f.version, f.direction), f)
        if other is not f:
            issues.append(_issue("duplicate-version", f, 1, (
                f"version {f.version} already has {other.path.name}; migrate refuses the whole folder "
                f"(duplicate migration file: {f.path.name}): give one of them a new version")))
    for f in files:
        if f.direction == "up" and (f.version, "down") not in first:
            down = f.path.name[: -len(f".up.{f.ext}")] + f".down.{f.ext}"
            issues.append(_issue("missing-down", f, 1, (
                f"no down file for version {f.version}: `migrate down` steps past it and undoes nothing "
                f"(it logs <empty>); add {down}"), direction="down"))
        if f.ext.lower() == "sql":
            issues.extend(_lint_sql(f, multi_statement))
    issues.sort(key=lambda i: (i.path, i.line, i.rule))
    return LintResult(folder, len(files), len({f.version for f in files}), tuple(issues))


def _migration_files(folder: Path) -> list[_File]:
    if not folder.is_dir():
        raise SourceError(f"{folder}: no such migrations folder; "
                          "pass the directory migrate's -path points at")
    try:
        names = sorted(p.name for p in folder.iterdir() if p.is_file())
    except OSError as e:
        raise SourceError(f"{folder}: cannot list the folder ({e.strerror}); check its permissions") from e
    files = [_File(folder / n, int(m[1]), "up" if m[3] == "up" else "down", m[4])
             for n in names if (m := FILENAME.match(n))]
    if not files:
        raise SourceError(f"{folder}: no migration files (N_name.up.sql / N_name.down.sql); "
                          "point lint at the folder migrate's -path uses")
    return files


def _issue(rule: str, f: _File, line: int, message: str, *, direction: Direction | None = None) -> LintIssue:
    return LintIssue(rule, RULES[rule][0], f.path.name, line, f.version, direction or f.direction,
                     redact(message))


def _lint_sql(f: _File, multi_statement: bool) -> list[LintIssue]:
    try:
        sql = f.path.read_text(encoding="utf-8-sig", errors="replace")
    except OSError as e:
        raise SourceError(f"{f.path}: cannot read the migration ({e.strerror}); check its permissions") from e
    stmts = _split(sql)
    if not stmts and f.direction == "down":  # golang-migrate runs an empty body as a no-op
        return [_issue("empty-down", f, 1, (
            f"{f.path.name} holds no statement: `migrate down` marks version {f.version} rolled back and "
            "changes nothing; write the statements that undo the up"))]
    out: list[LintIssue] = []
    begin = next((s for s in stmts if _BEGIN.match(s.norm)), None)
    for st in stmts:
        tree, problem = _parse(st)
        if problem:
            out.append(_issue("unparsable", f, st.line, (
                f"sqlglot cannot parse this statement ({problem}); it was checked with patterns only, "
                "and PostgreSQL may reject it too")))
        facts = _facts(tree, st.norm) if tree is not None else _pattern_facts(st.norm)
        for verb, kind, guarded, name in facts:
            for rule, message in _judge(verb, kind, guarded, name, up=f.direction == "up"):
                out.append(_issue(rule, f, st.line, message))
        # golang-migrate's postgres driver sends the whole file as one query; PostgreSQL runs a query of
        # several statements as one implicit transaction (unless the DSN sets x-multi-statement=true).
        if (m := _CONCURRENTLY.match(st.norm)) and (begin or (len(stmts) > 1 and not multi_statement)):
            why = (f"this file opens a transaction at line {begin.line}" if begin else
                   f"golang-migrate sends this file's {len(stmts)} statements as one query, which PostgreSQL "
                   "runs as one transaction")
            out.append(_issue("concurrently-in-transaction", f, st.line, (
                f"{m[0]} cannot run inside a transaction block and {why}: "
                "move it to a migration file of its own, without BEGIN/COMMIT")))
    return out


def _split(sql: str) -> list[_Stmt]:
    """Statements with sqlglot's tokenizer, which knows comments, quotes and dollar-quoted bodies."""
    try:
        tokens = _PG.tokenize(sql)
    except SqlglotError:
        return _split_by_pattern(sql)  # e.g. an unterminated quote: PostgreSQL would refuse it as well
    groups: list[list[Token]] = [[]]
    depth = 0  # BEGIN ATOMIC … END (SQL-standard function bodies) holds semicolons of its own
    for i, tok in enumerate(tokens):
        if tok.token_type == TokenType.SEMICOLON and not depth:
            groups.append([])
            continue
        if tok.token_type == TokenType.BEGIN and groups[-1] and tokens[i + 1:i + 2] and \
                tokens[i + 1].text.upper() == "ATOMIC":
            depth += 1
        elif depth and tok.token_type in (TokenType.CASE, TokenType.END):
            depth += 1 if tok.token_type == TokenType.CASE else -1
        groups[-1].append(tok)
    return [_from_tokens(sql, g) for g in groups if g]


def _from_tokens(sql: str, toks: list[Token]) -> _Stmt:
    words = []
    for prev, tok in zip([None, *toks], toks, strict=False):
        if tok.token_type in _LITERALS and (prev is None or prev.token_type != TokenType.COMMAND):
            words.append("''")  # after a COMMAND (REINDEX, DO …) sqlglot keeps the rest as one string
        elif tok.token_type == TokenType.IDENTIFIER:
            words.append(f'"{tok.text}"')
        else:
            words.append(tok.text)
    start = toks[0].start
    norm = " ".join(" ".join(words).split())
    return _Stmt(sql.count("\n", 0, start) + 1, sql[start: toks[-1].end + 1], norm)


def _split_by_pattern(sql: str) -> list[_Stmt]:
    groups: list[list[re.Match[str]]] = [[]]
    for m in _LEX.finditer(sql):
        if m[0] == ";":
            groups.append([])
        elif not (m[0].isspace() or m[0].startswith(("--", "/*"))):
            groups[-1].append(m)
    return [_Stmt(sql.count("\n", 0, g[0].start()) + 1, sql[g[0].start(): g[-1].end()],
                  " ".join("''" if len(m[0]) > 1 and m[0][0] in "'$" else m[0] for m in g))
            for g in groups if g]


def _parse(st: _Stmt) -> tuple[exp.Expression | None, str | None]:
    """The statement's tree (None for what sqlglot keeps as a bare Command) and why it failed, if it did."""
    try:
        trees = _PG.parse(st.text)
    except ParseError as e:
        err = e.errors[0] if e.errors else {}
        where = f" at line {st.line + err['line'] - 1}" if err.get("line") else ""
        return None, f"{err.get('description') or str(e).splitlines()[0]}{where}"
    except Exception as e:  # noqa: BLE001 - sqlglot raises more than ParseError on input it does not expect
        return None, f"{type(e).__name__}: {(str(e).splitlines() or [''])[0]}"
    tree = trees[0] if trees else None
    return (tree if isinstance(tree, exp.Expression) and not isinstance(tree, exp.Command) else None), None


def _facts(tree: exp.Expression, norm: str) -> list[_Fact]:
    """What a parsed statement creates, drops, adds, truncates or deletes, and whether it is guarded."""
    kind = str(tree.args.get("kind") or "").upper()
    if isinstance(tree, exp.Create):
        if kind == "VIEW" and re.match(r"(?i)CREATE\s+(?:OR\s+REPLACE\s+)?MATERIALIZED\b", norm):
            kind = "MATERIALIZED VIEW"
        return [("create", kind, bool(tree.args.get("exists") or tree.args.get("replace")), _name(tree))]
    if isinstance(tree, exp.Drop):
        return [("drop", kind, bool(tree.args.get("exists")), _name(tree))]
    if isinstance(tree, exp.Alter) and kind == "TABLE":
        return [("add", "COLUMN", bool(a.args.get("exists")), a.name) if isinstance(a, exp.ColumnDef) else
                ("drop", str(a.args.get("kind") or "COLUMN").upper(), bool(a.args.get("exists")), _name(a))
                for a in tree.args.get("actions") or [] if isinstance(a, (exp.ColumnDef, exp.Drop))]
    if isinstance(tree, exp.TruncateTable):
        return [("truncate", "TABLE", False, ", ".join(t.sql(dialect="postgres") for t in tree.expressions))]
    return [("delete", "", d.args.get("where") is not None, _name(d)) for d in tree.find_all(exp.Delete)]


def _name(node: exp.Expression) -> str:
    names = []
    for target in node.args.get("tables") or [node.this]:  # sqlglot 26+ keeps DROP's objects in `tables`
        while isinstance(target, (exp.Schema, exp.Index)):
            target = target.this
        names.append(target.sql(dialect="postgres") if isinstance(target, exp.Expression)
                     else str(target or ""))
    return ", ".join(n for n in names if n)


def _pattern_facts(norm: str) -> list[_Fact]:
    """The same facts read with patterns, for statements sqlglot cannot parse or keeps as a Command."""
    if m := _CREATE_RE.match(norm):
        return [("create", " ".join(m[2].upper().split()), bool(m[1] or m[3]), m[4] or "")]
    if m := _DROP_RE.match(norm):
        return [("drop", " ".join(m[1].upper().split()), bool(m[2]), m[3] or "")]
    if m := _ALTER_RE.match(norm):
        body = m[1]
        while (flat := re.sub(r"\([^()]*\)", "", body)) != body:  # commas inside (…) do not split actions
            body = flat
        return [(verb.lower(), (kind or "COLUMN").upper(), bool(guard), name)
                for verb, kind, guard, name in _ACTION_RE.findall(body)
                if verb.upper() == "DROP" or (kind or name).upper() not in _TABLE_CONSTRAINTS]
    if m := _TRUNCATE_RE.match(norm):
        return [("truncate", "TABLE", False, m[1])]
    if m := _DELETE_RE.match(norm):
        return [("delete", "", bool(re.search(r"(?i)\bWHERE\b", norm)), m[1])]
    return []


def _judge(verb: str, kind: str, guarded: bool, name: str, *, up: bool) -> list[tuple[str, str]]:
    what, text = f"{kind} {name}".strip(), ""
    if verb == "create" and kind in _CREATE_KINDS and not guarded:
        if kind == "TYPE":
            text = (f"CREATE {what} fails if the type exists, and PostgreSQL has no "
                    "CREATE TYPE IF NOT EXISTS: guard it with a DO block that checks pg_type")
        elif kind == "INDEX" and not name:
            text = ("CREATE INDEX without a name adds one more index on every run; "
                    "name it and write IF NOT EXISTS")
        else:
            fix = f"CREATE OR REPLACE {kind}" if kind in _OR_REPLACE else f"CREATE {kind} IF NOT EXISTS"
            text = f"CREATE {what} fails if it already exists; write {fix}"
    elif verb == "drop" and not guarded:
        text = f"DROP {what} fails if it is already gone; write DROP {kind} IF EXISTS"
    elif verb == "add" and not guarded:
        text = f"ADD COLUMN {name} fails if the column exists; write ADD COLUMN IF NOT EXISTS"
    out = [("not-idempotent", text)] if text else []
    destroys = {"drop": kind in _DATA_DROPS and f"DROP {what}", "truncate": f"TRUNCATE {name}",
                "delete": not guarded and f"DELETE FROM {name} without WHERE"}.get(verb)
    if up and destroys:
        text = (f"{destroys} in an up migration destroys data that no down can bring back; "
                "review it (copy the data first, or split the change)")
        out.append(("destructive-in-up", text))
    return out


def store(con: duckdb.DuckDBPyConnection, result: LintResult, service: str) -> int:
    """Replace `service`'s rows in lint_issues with `result`'s issues; the number of rows stored."""
    now = datetime.now(UTC).replace(tzinfo=None)
    rows = [(service, i.version, i.direction, i.rule, i.severity, i.path, i.line, i.message, now)
            for i in result.issues]
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
