"""down-not-inverse: a down should drop what its up created and re-create what its up dropped."""

from __future__ import annotations

from pipeline.lint import nodes
from pipeline.lint.nodes import Obj
from pipeline.lint.sqlfile import SqlFile

_PARTS = {"column", "constraint", "index", "trigger"}  # gone with their table


def net_changes(sql: SqlFile) -> tuple[set[Obj], set[Obj]]:
    """(created, dropped) by the file, in order: what one statement creates and a later one drops is scratch;
    what is dropped and then created again is a redefinition. Neither is the down's business."""
    created: dict[tuple[str, str], Obj] = {}
    dropped: dict[tuple[str, str], Obj] = {}
    touched: set[tuple[str, str]] = set()
    for st in sql.statements:
        for obj in nodes.drops(st.node):
            key = (obj.kind, obj.name)
            if created.pop(key, None) is None and key not in touched:
                dropped[key] = obj
            touched.add(key)
        for obj in nodes.creates(st.node):
            key = (obj.kind, obj.name)
            if dropped.pop(key, None) is None and key not in touched:
                created[key] = obj
            touched.add(key)
    return set(created.values()), set(dropped.values())


def missing_inverse(up: SqlFile, down: SqlFile) -> tuple[list[Obj], list[Obj]]:
    """(created by the up and left by the down, dropped by the up and not re-created by the down)."""
    up_created, up_dropped = net_changes(up)
    down_drops = {(o.kind, o.name) for st in down.statements for o in nodes.drops(st.node)}
    down_creates = {(o.kind, o.name) for st in down.statements for o in nodes.creates(st.node)}
    dropped_tables = {name for kind, name in down_drops if kind == "table"}
    created_tables = {name for kind, name in down_creates if kind == "table"}
    left = [o for o in up_created if (o.kind, o.name) not in down_drops
            and not (o.kind in _PARTS and o.table in dropped_tables)]
    gone = [o for o in up_dropped if (o.kind, o.name) not in down_creates
            and not (o.kind in _PARTS and o.table in created_tables)]
    # a table the up created is dropped by the down with everything on it: its parts are not listed apart
    up_tables = {o.name for o in up_created if o.kind == "table"}
    left = [o for o in left if not (o.kind in _PARTS and o.table in up_tables)]
    return sorted(left, key=str), sorted(gone, key=str)
