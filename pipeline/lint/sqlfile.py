"""A migration file as PostgreSQL reads it: statements parsed by libpg_query (pglast), and the ignore comments.

PostgreSQL parses the whole query string before it runs any of it, and golang-migrate sends a file as one
query, so a file parses at once. When PostgreSQL rejects it, each statement is parsed on its own so the
rest of the file is still checked, and the rejected ones carry PostgreSQL's message and position.
"""

from __future__ import annotations

import re
from bisect import bisect_right
from dataclasses import dataclass
from typing import Any

from pglast import parser

from pipeline.core.vocabulary import LINT_RULES

ALL = "*"  # an ignore comment that names no rule silences every rule

# Ignore comments, each on a line of its own. The foreign markers name their own tools' rules: the ones
# that mean one of ours are mapped below, others silence nothing of ours.
_MARKER = re.compile(r"(?im)^[ \t]*--[ \t]*(migrate-lens:ignore(?:-file)?|atlas:nolint|squawk-ignore(?:-file)?)"
                     r"\b[ \t]*([^\n]*)$")
_FOREIGN_IDS = {
    # squawk's rule names
    "prefer-robust-stmts": "not-idempotent", "require-concurrent-index-creation": "index-not-concurrent",
    "require-concurrent-index-deletion": "index-not-concurrent",
    "adding-required-field": "add-column-not-null-no-default", "adding-not-nullable-field": "set-not-null",
    "adding-field-with-default": "add-column-volatile-default",
    "adding-foreign-key-constraint": "constraint-not-valid-missing",
    "constraint-missing-not-valid": "constraint-not-valid-missing", "changing-column-type": "column-type-change",
    "renaming-column": "rename", "renaming-table": "rename", "require-timeout-settings": "no-lock-timeout",
    "ban-drop-column": "destructive-in-up", "ban-drop-table": "destructive-in-up",
    "ban-concurrent-index-creation-in-transaction": "concurrently-in-transaction",
    # Atlas's analyzers and check codes
    "destructive": "destructive-in-up", "ds101": "destructive-in-up", "ds102": "destructive-in-up",
    "ds103": "destructive-in-up", "backward_incompatible": "rename", "bc101": "rename", "bc102": "rename",
    "mf103": "add-column-not-null-no-default", "mf104": "set-not-null", "concurrent_index": "index-not-concurrent",
}
_BLANK_LINE = re.compile(r"\n[ \t\r]*\n")
_COMMENT = re.compile(r"--|/\*")


@dataclass(frozen=True, slots=True)
class Statement:
    node: Any  # the pglast.ast statement; None when PostgreSQL rejects it
    start: int  # offset of its first token
    end: int  # offset just past it
    line: int  # 1-based line of its first token
    ignored: frozenset[str]  # rule ids an ignore comment right above it silences (ALL: every rule)
    error: str | None = None  # PostgreSQL's message when it rejects the statement
    error_line: int = 0
    error_column: int = 0


@dataclass(frozen=True, slots=True)
class SqlFile:
    text: str
    statements: tuple[Statement, ...]
    ignored: frozenset[str]  # rule ids silenced for the whole file (ALL: every rule)
    has_comment: bool  # a comment anywhere: an empty down that says why it is empty

    def source(self, st: Statement) -> str:
        return self.text[st.start:st.end]


def read_sql(text: str) -> SqlFile:
    """`text` parsed the way PostgreSQL parses the query golang-migrate sends."""
    newlines = [i for i, c in enumerate(text) if c == "\n"] if "\n" in text else []

    def position(offset: int) -> tuple[int, int]:
        line = bisect_right(newlines, offset - 1)
        return line + 1, offset - (newlines[line - 1] + 1 if line else 0) + 1

    try:
        # stmt_len 0: the statement runs to the end of the text
        pieces = [(raw.stmt, raw.stmt_location, raw.stmt_location + raw.stmt_len if raw.stmt_len else len(text),
                   None) for raw in parser.parse_sql(text)]
    except parser.ParseError:
        pieces = _one_by_one(text)
    markers = [(m.start(), m[1].lower(), _ids(m[2])) for m in _MARKER.finditer(text)] if "ignore" in text or \
        "nolint" in text else []
    file_ignored: set[str] = set()
    statements = []
    previous_end = 0
    for node, start, end, error in pieces:
        start = _first_token(text, start, end)
        ignored: set[str] = set()
        for at, kind, ids in markers:
            if kind.endswith("-file"):
                file_ignored |= ids
            elif previous_end <= at < start:
                # right above the statement, or at the top of the file and set apart by a blank line
                apart = _BLANK_LINE.search(text, at, start) is not None
                (file_ignored if apart and not statements else ignored).update(ids)
        line = position(start)[0]
        err_line, err_col = position(error[1]) if error else (0, 0)
        statements.append(Statement(node, start, end, line, frozenset(ignored), error and error[0], err_line,
                                    err_col))
        previous_end = end
    for at, _kind, ids in markers:  # after the last statement, or a file without one: the whole file
        if at >= previous_end:
            file_ignored |= ids
    return SqlFile(text, tuple(statements), frozenset(file_ignored), _COMMENT.search(text) is not None)


def _ids(listed: str) -> set[str]:
    """The rule ids an ignore comment names: ours as written, foreign ones mapped; none named: ALL."""
    words = [w for w in re.split(r"[\s,]+", listed.split("--")[0].strip()) if w]
    if not words:
        return {ALL}
    return {w if w in LINT_RULES else _FOREIGN_IDS.get(w.lower(), "") for w in words} - {""}


def _first_token(text: str, start: int, end: int) -> int:
    """Past the whitespace and comments before a statement (pglast's locations include them after an error)."""
    pos = start
    while pos < end:
        ch = text[pos]
        if ch.isspace():
            pos += 1
        elif text.startswith("--", pos):
            nl = text.find("\n", pos)
            pos = end if nl < 0 else nl + 1
        elif text.startswith("/*", pos):
            close = text.find("*/", pos + 2)
            pos = end if close < 0 else close + 2
        else:
            break
    return min(pos, end)


def _one_by_one(text: str) -> list[tuple[Any, int, int, tuple[str, int] | None]]:
    """Each statement parsed on its own, split at the semicolons PostgreSQL's scanner sees."""
    scanned, unscannable = text, None
    try:
        tokens = parser.scan(text)
    except parser.ParseError as e:  # e.g. an unterminated quote: from its statement on, the file is one piece
        unscannable = (e.args[0], e.args[1] if e.args[1] is not None else len(text))
        scanned = text[:unscannable[1]]
        tokens = parser.scan(scanned)
    pieces: list[tuple[Any, int, int, tuple[str, int] | None]] = []

    def add(start: int, end: int) -> None:
        chunk = text[start:end]
        try:
            parsed = parser.parse_sql(chunk)
            pieces.append((parsed[0].stmt if parsed else None, start, end, None))
        except parser.ParseError as e:
            at = start + (e.args[1] if e.args[1] is not None else len(chunk.rstrip(" \t\r\n;")))
            pieces.append((None, start, end, (e.args[0], at)))

    start, words = 0, False  # words: the piece holds more than comments
    for tok in tokens:
        if tok.name == "ASCII_59":
            if words:
                add(start, tok.end + 1)
            start, words = tok.end + 1, False
        elif tok.name not in ("SQL_COMMENT", "C_COMMENT"):
            words = True
    if unscannable:
        pieces.append((None, start, len(text), unscannable))
    elif words:
        add(start, len(text))
    return pieces
