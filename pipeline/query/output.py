"""Query results as text: a table for people, CSV and JSON for scripts, Parquet for other engines.

Text from logs is shown, never obeyed: control characters (terminal escape sequences included) become
`\\xNN` in the table and in CSV; JSON escapes them itself. Nested values (lists, structs) become JSON in CSV.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import polars as pl

from pipeline.core.render import inert

FORMATS = ("table", "csv", "json", "parquet")


def _flat(frame: pl.DataFrame) -> pl.DataFrame:
    """Nested columns as JSON text and every string made inert, for CSV."""
    nested = [c for c, t in frame.schema.items() if t.is_nested() or t == pl.Object]
    if nested:
        cells = frame.select(nested).to_dicts()
        frame = frame.with_columns(
            pl.Series(c, [None if row[c] is None else json.dumps(row[c], default=str, ensure_ascii=False)
                          for row in cells], dtype=pl.String) for c in nested)
    strings = [c for c, t in frame.schema.items() if t == pl.String]
    return frame.with_columns(pl.col(c).map_elements(inert, return_dtype=pl.String) for c in strings)


def render(frame: pl.DataFrame, output_format: str) -> str:
    """`frame` as a table, CSV or JSON text."""
    if output_format == "csv":
        return _flat(frame).write_csv()
    if output_format == "json":
        return frame.write_json() + "\n"
    from rich.console import Console
    from rich.table import Table

    table = Table(*(inert(c) for c in frame.columns), show_lines=False)
    for row in frame.iter_rows():
        table.add_row(*("" if v is None else inert(str(v)) for v in row))
    with open(os.devnull, "w", encoding="utf-8") as sink:
        console = Console(width=max(80, min(250, 20 * len(frame.columns))), record=True, markup=False, file=sink)
        console.print(table)
    return console.export_text() + f"({frame.height:,} row{'s' if frame.height != 1 else ''})\n"


def write(frame: pl.DataFrame, output_format: str, path: Path) -> None:
    """`frame` to a file in any of FORMATS."""
    if output_format == "parquet":
        frame.write_parquet(path)
    else:
        path.write_text(render(frame, output_format), encoding="utf-8")
