"""Named queries (`queries/*.sql`, shipped as `pipeline.queries`): their headers, and running one with bound
parameters. Below the stages, so the report and the query command share one definition of each question."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime

import duckdb
import polars as pl

from pipeline.core.assets import queries_folder
from pipeline.core.errors import QueryError

_HEADER = re.compile(r"^--\s*(name|answers|param):\s*(.*)$")
_PARAM = re.compile(r"^(\w+)\s*=\s*(\S*)\s*(?:\((.*)\))?\s*$")
_USED = re.compile(r"\$([A-Za-z_]\w*)")


@dataclass(frozen=True)
class Param:
    name: str
    default: str
    description: str


@dataclass(frozen=True)
class NamedQuery:
    """One `queries/NAME.sql`: its header (what it answers, its parameters) and its statement."""

    name: str
    answers: str
    params: tuple[Param, ...]
    sql: str

    @classmethod
    def parse(cls, stem: str, text: str) -> NamedQuery:
        name, answers, params = stem, "", []
        for line in text.splitlines():
            m = _HEADER.match(line.strip())
            if not m:
                if line.strip() and not line.strip().startswith("--"):
                    break
                continue
            key, value = m.groups()
            if key == "name":
                name = value.strip()
            elif key == "answers":
                answers = value.strip()
            else:
                p = _PARAM.match(value.strip())
                if p:
                    params.append(Param(p.group(1), p.group(2), (p.group(3) or "").strip()))
        return cls(name, answers, tuple(params), text)


def named_queries() -> dict[str, NamedQuery]:
    """Every named query, by name."""
    files = sorted((p for p in queries_folder().iterdir() if p.name.endswith(".sql")), key=lambda p: p.name)
    return {q.name: q for q in (NamedQuery.parse(p.name.removesuffix(".sql"), p.read_text(encoding="utf-8"))
                                for p in files)}


def bind(sql: str, defaults: dict[str, str], given: dict[str, str], clock: datetime | None = None) -> dict[str, object]:
    """The values of the parameters `sql` uses: given, else the header's default. The default `now` is the
    analysis clock (`--as-of`), else the wall clock, so a named query never answers for a fixed demo date."""
    used = set(_USED.findall(re.sub(r"--[^\n]*", "", sql)))
    unknown = sorted(set(given) - used)
    if unknown:
        raise QueryError(f"--param {unknown[0]}: the query has no such parameter "
                         f"(it takes: {', '.join(sorted(used)) or 'none'})")
    values = {**{k: v for k, v in defaults.items() if k in used}, **given}
    now = (clock or datetime.now(UTC).replace(tzinfo=None)).isoformat()
    values = {k: now if v == "now" else v for k, v in values.items()}
    missing = sorted(used - values.keys())
    if missing:
        raise QueryError(f"${missing[0]}: the query needs it (add --param {missing[0]}=VALUE)")
    return dict(values)


def run_named(con: duckdb.DuckDBPyConnection, name: str, params: dict[str, str],
              clock: datetime | None = None) -> pl.DataFrame:
    """Run the named query `name` with its defaults, overridden by `params`."""
    query = named_queries()[name]
    bound = bind(query.sql, {p.name: p.default for p in query.params}, params, clock)
    return con.sql(query.sql.strip().rstrip(";"), params=bound or None).pl()
