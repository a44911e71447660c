"""The statement rules, over one parsed migration file in statement order.

What a file did before a statement decides about it: a table created earlier in the file is new (empty, not
yet used by running code, so the lock and rewrite rules leave it alone), a `DROP ... IF EXISTS` or a DO
block that checks the catalog guards the statements after it, a `SET lock_timeout` covers what follows.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from pglast import ast
from pglast.enums import AlterTableType, ObjectType

from pipeline.lint import nodes
from pipeline.lint.alter_table import check_alter_table
from pipeline.lint.nodes import Obj
from pipeline.lint.sqlfile import SqlFile, Statement

_OR_REPLACE = {"view": "CREATE OR REPLACE VIEW", "function": "CREATE OR REPLACE FUNCTION",
               "procedure": "CREATE OR REPLACE PROCEDURE"}
_DATA_DROPS = {"table", "schema", "materialized view"}
# A DO block that looks in the catalog (or catches the duplicate) before it creates or drops something.
_EXISTENCE_CHECK = re.compile(r"(?i)\bexists\b|to_regclass|to_regtype|duplicate_object|duplicate_table|"
                              r"undefined_object|undefined_table|pg_catalog|information_schema")
_SET_CONFIG_LOCK = re.compile(r"(?i)set_config\s*\(\s*'lock_timeout'")


@dataclass
class Found:
    """An issue before suppression and configured levels are applied."""

    rule: str
    line: int
    message: str
    statement: Statement | None = None  # its ignore comments apply
    column: int | None = None
    level: str | None = None  # a level of its own, instead of the rule's (empty-down explained by a comment)


@dataclass
class NotNullChecks:
    """CHECK (col IS NOT NULL) constraints seen so far in the folder's ups, in version order."""

    pending: dict[tuple[str, str], str] = field(default_factory=dict)  # (table, constraint) -> column, NOT VALID
    validated: set[tuple[str, str]] = field(default_factory=set)  # (table, column)


@dataclass
class FileCheck:
    sql: SqlFile
    up: bool
    multi_statement: bool
    checks: NotNullChecks
    found: list[Found] = field(default_factory=list)
    new_tables: dict[str, bool] = field(default_factory=dict)  # created in this file -> with IF NOT EXISTS
    created: set[Obj] = field(default_factory=set)
    guarded: set[tuple[str, str]] = field(default_factory=set)  # (kind, name) dropped IF EXISTS before
    do_bodies: list[str] = field(default_factory=list)
    lock_timeout: bool = False
    lock_reported: bool = False
    begin_line: int = 0

    def run(self) -> list[Found]:
        statements = self.sql.statements
        self.begin_line = next((s.line for s in statements if nodes.opens_transaction(s.node)), 0)
        for st in statements:
            if st.node is None:
                self.add("unparsable", st, (
                    f"PostgreSQL rejects this: {st.error} at line {st.error_line}, column {st.error_column} "
                    f"(the statement starts on line {st.line}); migrate fails here and leaves the version dirty"),
                         line=st.error_line, column=st.error_column)
                continue
            self.concurrently(st)
            handler = getattr(self, f"on_{type(st.node).__name__}", None)
            if handler:
                handler(st, st.node)
            for table in nodes.deletes_everything(st.node):
                if self.up and table not in self.new_tables:
                    self.add("destructive-in-up", st, f"DELETE FROM {table} without WHERE in an up migration "
                             "destroys data that no down can bring back; review it (copy the data first, or "
                             "split the change)")
            self.created.update(nodes.creates(st.node))
        return self.found

    # ------------------------------------------------------------------------------------------ helpers
    def add(self, rule: str, st: Statement | None, message: str, *, line: int | None = None,
            column: int | None = None) -> None:
        self.found.append(Found(rule, line or (st.line if st else 1), message, st, column))

    def is_guarded(self, kind: str, name: str) -> bool:
        if (kind, name) in self.guarded:
            return True
        word = re.compile(rf"(?<![\w$]){re.escape(name.lower())}(?![\w$])")
        return any(word.search(body) for body in self.do_bodies)

    def existing(self, table: str) -> bool:
        """A table this file did not create: it may hold rows, and running code uses it."""
        return table not in self.new_tables

    def made_here_unguarded(self, table: str) -> bool:
        """Created by this file without IF NOT EXISTS: a re-run already stops at that CREATE, reported once."""
        return self.new_tables.get(table) is False

    def takes_lock(self, st: Statement, what: str, table: str) -> None:
        if self.lock_timeout or self.lock_reported or not self.existing(table):
            return
        self.lock_reported = True  # once per file: one SET at the top covers every statement
        self.add("no-lock-timeout", st, (
            f"{what} waits for a lock on {table or 'its table'} with no SET lock_timeout before it: behind a long "
            f"transaction it queues every query on {table or 'the table'}; start the file with "
            "SET lock_timeout = '5s'"))

    def not_idempotent_create(self, st: Statement, obj: Obj, guarded_by_syntax: bool) -> None:
        if guarded_by_syntax or self.is_guarded(obj.kind, obj.name):
            return
        what = f"{obj.kind.upper()} {obj.name}"
        if obj.kind in ("type", "domain"):
            text = (f"CREATE {what} fails if the {obj.kind} exists, and PostgreSQL has no CREATE "
                    f"{obj.kind.upper()} IF NOT EXISTS: guard it with a DO block that checks pg_type")
        elif obj.kind in _OR_REPLACE:
            text = f"CREATE {what} fails if it already exists; write {_OR_REPLACE[obj.kind]}"
        else:
            text = f"CREATE {what} fails if it already exists; write CREATE {obj.kind.upper()} IF NOT EXISTS"
        self.add("not-idempotent", st, text)

    def concurrently(self, st: Statement) -> None:
        command = nodes.concurrently(st.node)
        many = len(self.sql.statements) > 1 and not self.multi_statement
        if not command or not (self.begin_line or many):
            return
        # golang-migrate's postgres driver sends the whole file as one query; PostgreSQL runs a query of
        # several statements as one implicit transaction (unless the DSN sets x-multi-statement=true).
        why = (f"this file opens a transaction at line {self.begin_line}" if self.begin_line else
               f"golang-migrate sends this file's {len(self.sql.statements)} statements as one query, which "
               "PostgreSQL runs as one transaction")
        self.add("concurrently-in-transaction", st, (
            f"{command} cannot run inside a transaction block and {why}: "
            "move it to a migration file of its own, without BEGIN/COMMIT"))

    # --------------------------------------------------------------------------------- one per node type
    def on_CreateStmt(self, st: Statement, node: ast.CreateStmt) -> None:
        name = node.relation.relname
        if node.relation.relpersistence != "t":  # a temporary table is gone when migrate's session ends
            self.not_idempotent_create(st, Obj("table", name), node.if_not_exists)
        self.new_tables[name] = bool(node.if_not_exists) or node.relation.relpersistence == "t"

    def on_CreateTableAsStmt(self, st: Statement, node: ast.CreateTableAsStmt) -> None:
        rel = node.into.rel
        if rel.relpersistence != "t":
            self.not_idempotent_create(st, Obj(nodes.kind_word(node.objtype), rel.relname), node.if_not_exists)
        self.new_tables[rel.relname] = bool(node.if_not_exists) or rel.relpersistence == "t"

    def on_IndexStmt(self, st: Statement, node: ast.IndexStmt) -> None:
        table = node.relation.relname
        if not node.idxname:
            self.add("not-idempotent", st, "CREATE INDEX without a name adds one more index on every run; "
                                           "name it and write IF NOT EXISTS")
        elif not self.made_here_unguarded(table):
            self.not_idempotent_create(st, Obj("index", node.idxname), node.if_not_exists)
        if not node.concurrent and self.existing(table):
            self.add("index-not-concurrent", st, (
                f"CREATE INDEX on {table} blocks every write to it until the index is built; write CREATE INDEX "
                "CONCURRENTLY, alone in its migration file"))
            self.takes_lock(st, f"CREATE INDEX {node.idxname or ''}".rstrip(), table)

    def on_ViewStmt(self, st: Statement, node: ast.ViewStmt) -> None:
        self.not_idempotent_create(st, Obj("view", node.view.relname), node.replace)

    def on_CreateFunctionStmt(self, st: Statement, node: ast.CreateFunctionStmt) -> None:
        kind = "procedure" if node.is_procedure else "function"
        self.not_idempotent_create(st, Obj(kind, nodes.last(node.funcname)), node.replace)

    def on_CompositeTypeStmt(self, st: Statement, node: ast.CompositeTypeStmt) -> None:
        self.not_idempotent_create(st, Obj("type", node.typevar.relname), False)

    def on_CreateEnumStmt(self, st: Statement, node: Any) -> None:
        self.not_idempotent_create(st, Obj("type", nodes.last(node.typeName)), False)

    on_CreateRangeStmt = on_CreateEnumStmt

    def on_CreateSeqStmt(self, st: Statement, node: ast.CreateSeqStmt) -> None:
        self.not_idempotent_create(st, Obj("sequence", node.sequence.relname), node.if_not_exists)

    def on_CreateSchemaStmt(self, st: Statement, node: ast.CreateSchemaStmt) -> None:
        if node.schemaname:
            self.not_idempotent_create(st, Obj("schema", node.schemaname), node.if_not_exists)

    def on_CreateExtensionStmt(self, st: Statement, node: ast.CreateExtensionStmt) -> None:
        self.not_idempotent_create(st, Obj("extension", node.extname), node.if_not_exists)

    def on_CreateTrigStmt(self, st: Statement, node: ast.CreateTrigStmt) -> None:
        table = node.relation.relname
        if not node.replace and not self.made_here_unguarded(table) and \
                not self.is_guarded("trigger", node.trigname):
            self.add("not-idempotent", st, (
                f"CREATE TRIGGER {node.trigname} fails if it already exists; write CREATE OR REPLACE TRIGGER "
                "(PostgreSQL 14+) or DROP TRIGGER IF EXISTS before it"))
        self.takes_lock(st, f"CREATE TRIGGER {node.trigname}", table)

    def on_AlterEnumStmt(self, st: Statement, node: ast.AlterEnumStmt) -> None:
        if node.newVal and not node.oldVal and not node.skipIfNewValExists:
            self.add("not-idempotent", st, (
                f"ALTER TYPE {nodes.last(node.typeName)} ADD VALUE '{node.newVal}' fails if the value exists; "
                "write ADD VALUE IF NOT EXISTS"))

    def on_DoStmt(self, st: Statement, node: ast.DoStmt) -> None:
        body = next((a.arg.sval for a in node.args or () if a.defname == "as"), "")
        if _EXISTENCE_CHECK.search(body):
            self.do_bodies.append(body.lower())

    def on_VariableSetStmt(self, st: Statement, node: ast.VariableSetStmt) -> None:
        if (node.name or "").lower() == "lock_timeout":
            self.lock_timeout = True

    def on_SelectStmt(self, st: Statement, node: ast.SelectStmt) -> None:
        if _SET_CONFIG_LOCK.search(self.sql.source(st)):
            self.lock_timeout = True

    def on_TruncateStmt(self, st: Statement, node: ast.TruncateStmt) -> None:
        tables = [r.relname for r in node.relations or ()]
        old = [t for t in tables if self.existing(t)]
        if self.up and old:
            self.add("destructive-in-up", st, (
                f"TRUNCATE {', '.join(old)} in an up migration destroys data that no down can bring back; "
                "review it (copy the data first, or split the change)"))
        for table in old[:1]:
            self.takes_lock(st, f"TRUNCATE {table}", table)

    def on_RenameStmt(self, st: Statement, node: ast.RenameStmt) -> None:
        old, new = nodes.renamed(node)
        table = node.relation.relname if node.relation else ""
        if old and old.kind in ("table", "column") and self.existing(table):
            self.add("rename", st, (
                f"RENAME of {old} to {new.name if new else '?'}: the running code still uses {old.name} and fails "
                "until it is deployed; add the new name alongside (a view or a new column) and drop the old later"))
            self.takes_lock(st, f"ALTER TABLE {table} RENAME", table)
        if old and old.kind == "table" and not self.existing(table) and new:
            self.new_tables[new.name] = self.new_tables[table]

    def on_DropStmt(self, st: Statement, node: ast.DropStmt) -> None:
        targets = nodes.drop_targets(node)
        kind = nodes.kind_word(node.removeType)
        if node.missing_ok:
            self.guarded.update((t.kind, t.name) for t in targets)
        made_here = {(o.kind, o.name) for o in self.created} | {("table", t) for t in self.new_tables}
        gone = [t for t in targets if (t.kind, t.name) not in made_here and
                not (t.table and not self.existing(t.table))]
        if not node.missing_ok and gone:
            shown = ", ".join(t.name for t in gone)
            self.add("not-idempotent", st,
                     f"DROP {kind.upper()} {shown} fails if it is already gone; write DROP {kind.upper()} IF EXISTS")
        if self.up and kind in _DATA_DROPS and gone:
            self.add("destructive-in-up", st, (
                f"DROP {kind.upper()} {', '.join(t.name for t in gone)} in an up migration destroys data that no "
                "down can bring back; review it (copy the data first, or split the change)"))
        if node.removeType == ObjectType.OBJECT_INDEX and not node.concurrent and gone:
            self.add("index-not-concurrent", st, (
                f"DROP INDEX {', '.join(t.name for t in gone)} blocks every read and write of its table until it "
                "is done; write DROP INDEX CONCURRENTLY, alone in its migration file"))
            self.takes_lock(st, f"DROP INDEX {gone[0].name}", "")
        elif kind == "table" and gone:
            self.takes_lock(st, f"DROP TABLE {gone[0].name}", gone[0].name)

    def on_AlterTableStmt(self, st: Statement, node: ast.AlterTableStmt) -> None:
        if node.objtype != ObjectType.OBJECT_TABLE or node.relation is None:
            return
        check_alter_table(self, st, node, node.relation.relname)
        if any(c.subtype == AlterTableType.AT_DropColumn for c in node.cmds or ()):
            self.guarded.update(("column", c.name) for c in node.cmds if c.subtype == AlterTableType.AT_DropColumn
                                and c.missing_ok)
