"""The ALTER TABLE actions: where most lock and rewrite trouble starts, so each action is judged on its own."""

from __future__ import annotations

from typing import TYPE_CHECKING

from pglast import ast
from pglast.enums import AlterTableType

from pipeline.lint import nodes
from pipeline.lint.sqlfile import Statement

if TYPE_CHECKING:
    from pipeline.lint.checks import FileCheck

AT = AlterTableType


def check_alter_table(fc: FileCheck, st: Statement, node: ast.AlterTableStmt, table: str) -> None:
    existing = fc.existing(table)
    made_here = fc.made_here_unguarded(table)
    added_here = {o.name for o in fc.created if o.kind in ("column", "constraint") and o.table == table}
    for cmd in node.cmds or ():
        sub = cmd.subtype
        if sub == AT.AT_AddColumn:
            _add_column(fc, st, cmd, table, existing, made_here)
        elif sub in (AT.AT_DropColumn, AT.AT_DropConstraint):
            kind = "COLUMN" if sub == AT.AT_DropColumn else "CONSTRAINT"
            if not cmd.missing_ok and existing and cmd.name not in added_here:
                fc.add("not-idempotent", st,
                       f"DROP {kind} {cmd.name} fails if it is already gone; write DROP {kind} IF EXISTS")
            if sub == AT.AT_DropColumn and fc.up and existing and cmd.name not in added_here:
                fc.add("destructive-in-up", st, (
                    f"DROP COLUMN {table}.{cmd.name} in an up migration destroys data that no down can bring back; "
                    "review it (copy the data first, or split the change)"))
        elif sub == AT.AT_AddConstraint:
            _add_constraint(fc, st, cmd.def_, table, existing)
        elif sub == AT.AT_ValidateConstraint:
            column = fc.checks.pending.pop((table, cmd.name), None)
            if column:
                fc.checks.validated.add((table, column))
        elif sub == AT.AT_SetNotNull and existing and (table, cmd.name) not in fc.checks.validated:
            fc.add("set-not-null", st, (
                f"SET NOT NULL on {table}.{cmd.name} scans the whole table under an ACCESS EXCLUSIVE lock; add "
                f"CHECK ({cmd.name} IS NOT NULL) NOT VALID, VALIDATE it, then SET NOT NULL"))
        elif sub == AT.AT_AlterColumnType and existing:
            fc.add("column-type-change", st, (
                f"ALTER COLUMN {table}.{cmd.name} TYPE rewrites {table} and its indexes under an ACCESS EXCLUSIVE "
                "lock (unless the new type is binary-compatible); add a new column, backfill it and switch"))
    if existing and node.cmds:
        fc.takes_lock(st, f"ALTER TABLE {table}", table)


def _add_column(fc: FileCheck, st: Statement, cmd: ast.AlterTableCmd, table: str, existing: bool,
                made_here: bool) -> None:
    column: ast.ColumnDef = cmd.def_
    name = column.colname
    if not cmd.missing_ok and not made_here and not fc.is_guarded("column", name):
        fc.add("not-idempotent", st,
               f"ADD COLUMN {name} fails if the column exists; write ADD COLUMN IF NOT EXISTS")
    if not existing:
        return
    if nodes.not_null_without_default(column):
        fc.add("add-column-not-null-no-default", st, (
            f"ADD COLUMN {table}.{name} NOT NULL without a DEFAULT fails on any row already in {table} "
            "('contains null values'); add it nullable or with a constant DEFAULT, backfill, then SET NOT NULL"))
    why = nodes.volatile_default(column)
    if why:
        fc.add("add-column-volatile-default", st, (
            f"ADD COLUMN {table}.{name} with {why} rewrites all of {table} under an ACCESS EXCLUSIVE lock; add "
            "the column without it, set the default, then backfill in batches"))


def _add_constraint(fc: FileCheck, st: Statement, con: ast.Constraint, table: str, existing: bool) -> None:
    kind = getattr(con.contype, "name", "")
    column = nodes.checked_not_null(con)
    if column and con.conname:
        if con.skip_validation:
            fc.checks.pending[(table, con.conname)] = column
        else:
            fc.checks.validated.add((table, column))
    if kind in ("CONSTR_FOREIGN", "CONSTR_CHECK") and not con.skip_validation and existing:
        what = "FOREIGN KEY" if kind == "CONSTR_FOREIGN" else "CHECK"
        name = f" {con.conname}" if con.conname else ""
        fc.add("constraint-not-valid-missing", st, (
            f"ADD CONSTRAINT{name} {what} on {table} validates every row while blocking writes; add it NOT VALID, "
            "then VALIDATE CONSTRAINT in a later statement"))

