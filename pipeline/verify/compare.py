"""Differences between two snapshots, written for a person reading a CI log: what the down left behind,
what it removed, what it changed, and which tables' rows it did not bring back."""

from __future__ import annotations

from pipeline.verify.postgres import DataSnapshot, SchemaSnapshot

MAX_LINES = 12
MAX_DEFINITION = 160


def schema_difference(expected: SchemaSnapshot, actual: SchemaSnapshot, *, extra: str = "left behind",
                      gone: str = "missing") -> str:
    """'' when equal; else one line per object: `left behind: index public.x (CREATE INDEX …)`,
    `missing: column public.t.c (text)`, `changed: column public.t.c: text -> integer`."""
    lines = []
    for key in sorted(expected.keys() | actual.keys()):
        kind, name = key
        if key not in expected:
            lines.append(f"{extra}: {kind} {name}{_shown(actual[key])}")
        elif key not in actual:
            lines.append(f"{gone}: {kind} {name}{_shown(expected[key])}")
        elif expected[key] != actual[key]:
            lines.append(f"changed: {kind} {name}: {_cut(expected[key])} -> {_cut(actual[key])}")
    return _bounded(lines)


def data_difference(before: DataSnapshot, after: DataSnapshot) -> str:
    """'' when every table of `before` has the same rows after; else one line per table that differs."""
    lines = []
    for table, (rows, checksum) in sorted(before.items()):
        if table not in after:
            lines.append(f"{table}: gone ({rows} row{'s' if rows != 1 else ''} before)")
            continue
        rows_after, checksum_after = after[table]
        if rows_after != rows:
            lines.append(f"{table}: {rows} row{'s' if rows != 1 else ''} before, {rows_after} after")
        elif checksum_after != checksum:
            lines.append(f"{table}: {rows} row{'s' if rows != 1 else ''}, but their contents differ")
    return _bounded(lines)


def _shown(definition: str) -> str:
    return f" ({_cut(definition)})" if definition else ""


def _cut(text: str) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= MAX_DEFINITION else flat[: MAX_DEFINITION - 1] + "…"


def _bounded(lines: list[str]) -> str:
    if len(lines) > MAX_LINES:
        lines = [*lines[:MAX_LINES], f"… and {len(lines) - MAX_LINES} more"]
    return "\n".join(lines)
