"""What a parsed PostgreSQL statement (a pglast.ast node) creates, drops and locks, in lint's plain terms."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, NamedTuple

from pglast import ast
from pglast.enums import AlterTableType, ObjectType, TransactionStmtKind

# (kind, name, table): an object lint follows within a file and between an up and its down; `table` is the
# table a column, constraint, index or trigger belongs to ("" when unknown or not applicable).


class Obj(NamedTuple):
    kind: str  # "table", "index", "column", "constraint", "trigger", "type", "view", ...
    name: str
    table: str = ""

    def __str__(self) -> str:
        return f"{self.kind.upper()} {self.table + '.' if self.table and self.kind == 'column' else ''}{self.name}"


# Functions whose value differs per row: as a column DEFAULT they make ADD COLUMN rewrite the table.
VOLATILE_FUNCTIONS = frozenset({
    "random", "gen_random_uuid", "uuid_generate_v1", "uuid_generate_v1mc", "uuid_generate_v4", "uuidv4",
    "uuidv7", "clock_timestamp", "timeofday", "nextval", "txid_current", "gen_random_bytes", "setseed",
})
SERIAL_TYPES = frozenset({"serial", "serial2", "serial4", "serial8", "smallserial", "bigserial"})
_SUBJECT_KINDS = {"trigger", "policy", "rule"}  # DROP TRIGGER t ON tbl: the name comes last


def kind_word(objtype: Any) -> str:
    """ObjectType.OBJECT_MATVIEW -> "materialized view"."""
    name = ObjectType(objtype).name.removeprefix("OBJECT_").lower()
    return {"matview": "materialized view", "foreign_table": "foreign table"}.get(name, name)


def names(value: Any) -> list[str]:
    """The identifiers of a qualified name (a String tuple, a TypeName, an ObjectWithArgs, a RangeVar)."""
    if isinstance(value, ast.String):
        return [value.sval]
    if isinstance(value, ast.TypeName):
        return names(value.names)
    if isinstance(value, ast.ObjectWithArgs):
        return names(value.objname)
    if isinstance(value, ast.RangeVar):
        return [value.relname]
    if isinstance(value, (tuple, list)):
        return [n for v in value for n in names(v)]
    return []


def last(value: Any) -> str:
    found = names(value)
    return found[-1] if found else ""


def walk(value: Any) -> Iterator[Any]:
    """Every ast node in `value`, depth first."""
    if isinstance(value, (tuple, list)):
        for item in value:
            yield from walk(item)
    elif isinstance(value, ast.Node):
        yield value
        for attr in type(value).__slots__:
            child = getattr(value, attr, None)
            if isinstance(child, (ast.Node, tuple, list)):
                yield from walk(child)


def drop_targets(node: ast.DropStmt) -> list[Obj]:
    kind = kind_word(node.removeType)
    out = []
    for target in node.objects or ():
        parts = names(target)
        if kind in _SUBJECT_KINDS and len(parts) >= 2:
            out.append(Obj(kind, parts[-1], parts[-2]))
        elif parts:
            out.append(Obj(kind, parts[-1]))
    return out


def creates(node: Any) -> list[Obj]:
    """Objects the statement brings into being (OR REPLACE redefines, so it creates nothing new)."""
    match node:
        case ast.CreateStmt(relation=rel):
            return [Obj("table", rel.relname)]
        case ast.CreateTableAsStmt(into=into, objtype=objtype):
            return [Obj(kind_word(objtype), into.rel.relname)]
        case ast.IndexStmt(idxname=str() as name, relation=rel) if name:
            return [Obj("index", name, rel.relname)]
        case ast.ViewStmt(view=rel, replace=False):
            return [Obj("view", rel.relname)]
        case ast.CreateFunctionStmt(funcname=fn, replace=False, is_procedure=proc):
            return [Obj("procedure" if proc else "function", last(fn))]
        case ast.CompositeTypeStmt(typevar=rel):
            return [Obj("type", rel.relname)]
        case ast.CreateEnumStmt(typeName=tn) | ast.CreateRangeStmt(typeName=tn):
            return [Obj("type", last(tn))]
        case ast.CreateDomainStmt(domainname=dn):
            return [Obj("domain", last(dn))]
        case ast.CreateSeqStmt(sequence=rel):
            return [Obj("sequence", rel.relname)]
        case ast.CreateSchemaStmt(schemaname=str() as name):
            return [Obj("schema", name)]
        case ast.CreateExtensionStmt(extname=name):
            return [Obj("extension", name)]
        case ast.CreateTrigStmt(trigname=name, relation=rel, replace=False):
            return [Obj("trigger", name, rel.relname)]
        case ast.AlterTableStmt(relation=rel, cmds=cmds):
            out = []
            for cmd in cmds or ():
                if cmd.subtype == AlterTableType.AT_AddColumn:
                    out.append(Obj("column", cmd.def_.colname, rel.relname))
                elif cmd.subtype == AlterTableType.AT_AddConstraint and getattr(cmd.def_, "conname", None):
                    out.append(Obj("constraint", cmd.def_.conname, rel.relname))
            return out
        case ast.RenameStmt():
            return [o for o in renamed(node)[1:] if o]
    return []


def drops(node: Any) -> list[Obj]:
    """Objects the statement removes (a rename removes the old name)."""
    match node:
        case ast.DropStmt():
            return drop_targets(node)
        case ast.AlterTableStmt(relation=rel, cmds=cmds):
            kinds = {AlterTableType.AT_DropColumn: "column", AlterTableType.AT_DropConstraint: "constraint"}
            return [Obj(kinds[cmd.subtype], cmd.name, rel.relname) for cmd in cmds or () if cmd.subtype in kinds]
        case ast.RenameStmt():
            return [o for o in renamed(node)[:1] if o]
    return []


def renamed(node: ast.RenameStmt) -> tuple[Obj | None, Obj | None]:
    """(old, new) of a table, column or index rename; (None, None) for other renames."""
    kind = kind_word(node.renameType)
    rel = node.relation.relname if node.relation else ""
    if kind == "column":
        return Obj("column", node.subname, rel), Obj("column", node.newname, rel)
    if kind in ("table", "index") and rel:
        return Obj(kind, rel), Obj(kind, node.newname)
    return None, None


def concurrently(node: Any) -> str | None:
    """PostgreSQL's name for the command when it is one that cannot run inside a transaction block."""
    match node:
        case ast.IndexStmt(concurrent=True):
            return "CREATE INDEX CONCURRENTLY"
        case ast.DropStmt(concurrent=True):
            return "DROP INDEX CONCURRENTLY"
        case ast.ReindexStmt(params=params) if any(p.defname == "concurrently" for p in params or ()):
            return "REINDEX CONCURRENTLY"
        case ast.AlterTableStmt(cmds=cmds) if any(
                c.subtype == AlterTableType.AT_DetachPartition and getattr(c.def_, "concurrent", False)
                for c in cmds or ()):
            return "ALTER TABLE ... DETACH PARTITION CONCURRENTLY"
    return None


def opens_transaction(node: Any) -> bool:
    return isinstance(node, ast.TransactionStmt) and node.kind in (TransactionStmtKind.TRANS_STMT_BEGIN,
                                                                   TransactionStmtKind.TRANS_STMT_START)


def deletes_everything(node: Any) -> list[str]:
    """Tables a DELETE without WHERE empties, at the top or in a WITH."""
    if isinstance(node, ast.DeleteStmt):
        candidates: list[Any] = [node]
    elif getattr(node, "withClause", None) is not None:
        candidates = [n for n in walk(node.withClause) if isinstance(n, ast.DeleteStmt)]
    else:
        return []
    return [d.relation.relname for d in candidates if d.whereClause is None]


def volatile_default(column: ast.ColumnDef) -> str | None:
    """Why adding `column` rewrites the table: a volatile DEFAULT, a serial type or a stored generated value."""
    type_name = last(column.typeName).lower()
    if type_name in SERIAL_TYPES:
        return f"the {type_name} type (its default is nextval())"
    for con in column.constraints or ():
        kind = getattr(con.contype, "name", "")
        if kind == "CONSTR_GENERATED" and con.generated_kind == "s":
            return "a stored generated value"
        if kind == "CONSTR_DEFAULT":
            for n in walk(con.raw_expr):
                if isinstance(n, ast.FuncCall) and last(n.funcname).lower() in VOLATILE_FUNCTIONS:
                    return f"the volatile default {last(n.funcname).lower()}()"
    return None


def not_null_without_default(column: ast.ColumnDef) -> bool:
    """NOT NULL (or PRIMARY KEY) with nothing to fill the existing rows: no DEFAULT, identity or serial."""
    kinds = {getattr(c.contype, "name", "") for c in column.constraints or ()}
    fills = {"CONSTR_DEFAULT", "CONSTR_IDENTITY", "CONSTR_GENERATED"}
    return bool(kinds & {"CONSTR_NOTNULL", "CONSTR_PRIMARY"}) and not kinds & fills and \
        last(column.typeName).lower() not in SERIAL_TYPES


def checked_not_null(constraint: Any) -> str | None:
    """The column of a CHECK (col IS NOT NULL), which lets SET NOT NULL skip its scan once validated."""
    expr = getattr(constraint, "raw_expr", None)
    if getattr(constraint.contype, "name", "") == "CONSTR_CHECK" and isinstance(expr, ast.NullTest) and \
            getattr(expr.nulltesttype, "name", "") == "IS_NOT_NULL" and isinstance(expr.arg, ast.ColumnRef):
        return last(expr.arg.fields)
    return None
