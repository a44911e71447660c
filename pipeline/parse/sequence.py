"""The order-dependent half of the migrate grammar, in polars: lines in stream order, pieces joined, error
blocks, doubled errors, runs and each script's own time.

Every step here looks at a line's neighbours in its stream. In SQL each of them was a window that sorted the
rebuild's lines again (five sorts of every line); here the lines are sorted once, by stream and position, and
a neighbour is a shift within the stream. What a line is by itself (its shape, version, duration) is decided
in SQL before (`sql/parse/line_shapes.sql`), and what an error block says after (`sql/parse/error_heads.sql`).
"""

from __future__ import annotations

import hashlib

import polars as pl

# Kinds after which the next line starts a new run (nothing follows them in one migrate process), unless
# that line is the process's own ending.
_ENDS_RUN = ["dirty", "migration_failed", "lock_timeout", "missing_file", "connection_failed", "prompt_refused",
             "limit_short", "error", "no_change", "version", "finished_total", "closing", "usage", "cli_version"]

_first_in_stream = pl.col("sid") != pl.col("sid").shift(1, fill_value=-1)


def _prev(column: str) -> pl.Expr:
    """The value of `column` on the line before in the same stream (null on a stream's first line)."""
    return pl.when(_first_in_stream).then(None).otherwise(pl.col(column).shift(1))


def _carried(value: pl.Expr) -> pl.Expr:
    """The last non-null `value` so far in the stream. Frames are sorted by stream, so this is a forward fill
    that does not reach across a stream's start (no grouping needed)."""
    owner = pl.when(value.is_not_null()).then(pl.col("sid")).forward_fill()
    return pl.when(owner == pl.col("sid")).then(value.forward_fill())


def _position(first: pl.Expr) -> pl.Expr:
    """1, 2, 3… from each row where `first` holds (frames sorted so that those rows start their groups)."""
    row = pl.int_range(pl.len())
    return row - pl.when(first).then(row).forward_fill() + 1


def logical_lines(physical: pl.DataFrame) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Physical lines in stream order, numbered; Docker/CRI pieces of a line over 16 KiB joined.

    Returns the logical lines whose shape is known, and the joined ones, whose text must be shaped again
    (`text` set, shape columns null); both sorted by (sid, lseq)."""
    ordered = physical.lazy().sort(["sid", "ts", "source_uri", "line_no"], nulls_last=True).with_columns(
        lseq=pl.col("kept_seq") + _position(_first_in_stream),
        continues=_prev("partial").fill_null(False),
        prev_ts=_prev("ts"),
    ).drop("kept_seq", "source_uri", "line_no").collect()
    in_pieces = pl.col("partial") | pl.col("continues")
    pieces = ordered.filter(in_pieces)
    whole = (ordered.filter(~in_pieces) if pieces.height else ordered).rename({"line_id": "first_line_id"})
    whole = whole.with_columns(nphys=pl.lit(1, pl.Int32)).drop("partial", "continues", "prefix")
    if pieces.is_empty():
        return whole, whole.clear()
    joined = (
        pieces.with_columns(_carried(pl.when(~pl.col("continues")).then(pl.col("lseq"))).alias("head"))
        .group_by("sid", "head", maintain_order=True)
        .agg(pl.col("wrapped").first(), pl.col("ts").min(), pl.col("prev_ts").first(),
             pl.col("ts_origin").first(), pl.col("env").first(), pl.col("service").first(),
             pl.col("database").first(), pl.col("line_id").first().alias("first_line_id"),
             pl.len().cast(pl.Int32).alias("nphys"), pl.col("whole").any(),
             pl.concat_str(pl.col("prefix").fill_null(""), "msg").str.join("").alias("text"))
        .rename({"head": "lseq"})
    )
    return whole, joined


def error_blocks(lines: pl.DataFrame, cont_ms: int) -> tuple[pl.DataFrame, pl.DataFrame]:
    """The lines that become events, and the error heads with their block's text.

    Nothing follows a fatal error in its process, so the lines after an `error:` head belong to it (the SQL
    body of a failed migration, a `2 errors occurred:` list) until a line carries a verbose prefix, arrives
    after a pause, or is a whole record (slog): that starts the next segment. `lines` must be sorted by
    (sid, lseq); the heads come back as (sid, lseq, t0, block_lines)."""
    gap = pl.col("ts").dt.epoch("ms") - pl.col("prev_ts").dt.epoch("ms")
    lines = lines.with_columns(gap_ms=gap).with_columns(
        seg=_carried(pl.when(pl.col("verbose_mode") | pl.col("whole") | pl.col("gap_ms").is_null()
                             | (pl.col("gap_ms") > cont_ms)).then(pl.col("lseq"))),
    ).with_columns(
        err_start=pl.when(pl.col("line_kind") == "error").then(pl.col("lseq")).min().over("sid", "seg"),
    )
    in_block = pl.col("err_start").is_not_null() & (pl.col("lseq") >= pl.col("err_start"))
    heads = (
        lines.filter(in_block)
        .group_by("sid", "err_start", maintain_order=True)
        .agg(pl.col("msg").str.join("\n").alias("block_text"), pl.col("nphys").sum().alias("block_lines"))
        .select("sid", pl.col("err_start").alias("lseq"),
                pl.col("block_text").str.replace(r"^error: ", "").alias("t0"),
                pl.col("block_lines").cast(pl.Int32))
    )
    kept = lines.filter(pl.col("line_kind").is_not_null()
                        & (pl.col("err_start").is_null() | (pl.col("lseq") <= pl.col("err_start"))))
    return kept.drop("seg", "err_start"), heads


def events(lines: pl.DataFrame, heads: pl.DataFrame, streams: pl.DataFrame, run_gap_ms: int) -> pl.DataFrame:
    """Events in stream order, with their stream key and run, doubled errors dropped and each applied
    script's own time. `heads` is what `error_heads.sql` said of each error block, with the block's line
    count; `streams` the (sid, stream_key) of the rebuild."""
    ev = (
        lines.join(heads, on=["sid", "lseq"], how="left", suffix="_err")
        .sort("sid", "lseq")
        .with_columns(
            kind=pl.coalesce("kind", "line_kind"),
            version=pl.coalesce("version", "version_err"),
            line_count=pl.coalesce("block_lines", "nphys"),
        )
        .drop("version_err", "block_lines", "nphys", "line_kind")
        .with_columns(prev_error=_prev("error_text"), prev_kind=_prev("kind"), prev_event_ts=_prev("ts"))
    )
    event_gap = pl.col("ts").dt.epoch("ms") - pl.col("prev_event_ts").dt.epoch("ms")
    starts_run = (
        pl.when(pl.col("prev_kind").is_null()).then(True)
        .when(pl.col("wrapped")).then(False)  # a wrapper's run_id is one process already
        .when(event_gap > run_gap_ms).then(True)
        .when(pl.col("prev_kind").is_in(_ENDS_RUN) & ~pl.col("kind").is_in(["finished_total", "closing"])).then(True)
        .otherwise(False)
    )
    # In -verbose mode the non-fatal error and the fatal one are two timestamped lines: keep the first.
    doubled = (pl.col("error_text").is_not_null() & pl.col("prev_error").is_not_null()
               & (pl.col("gap_ms").fill_null(0) <= 2000)
               & ((pl.col("error_text") == pl.col("prev_error"))
                  | ((pl.col("error_text") == "file does not exist") & (pl.col("prev_kind") == "missing_file"))))
    ev = ev.with_columns(starts_run=starts_run).filter(~doubled)
    # the run's first event, and the last `Read and execute` so far (by row: its version may be null)
    ev = ev.with_row_index("row").with_columns(
        run_row=_carried(pl.when(pl.col("starts_run")).then(pl.col("row"))),
        exec_row=_carried(pl.when(pl.col("kind") == "executing").then(pl.col("row"))),
    ).with_columns(
        run_start_seq=pl.col("lseq").gather(pl.col("run_row")),
        exec_seq=pl.col("lseq").gather(pl.col("exec_row")),
        exec_version=pl.col("version").gather(pl.col("exec_row")),
        exec_direction=pl.col("direction").gather(pl.col("exec_row")),
        exec_name=pl.col("name").gather(pl.col("exec_row")),
    ).drop("row", "exec_row")
    # A failed migration names no version without -verbose; with it, the last `Read and execute` of its run does.
    failed = (pl.col("kind") == "migration_failed") & (pl.col("exec_seq") >= pl.col("run_start_seq"))
    ev = ev.with_columns(
        version=pl.when(failed).then(pl.coalesce("version", "exec_version")).otherwise("version"),
        direction=pl.when(failed).then(pl.coalesce("direction", "exec_direction")).otherwise("direction"),
        name=pl.when(failed).then(pl.coalesce("name", "exec_name")).otherwise("name"),
    )
    ev = _own_time(ev).join(streams, on="sid", how="left")
    return ev.join(_run_ids(ev), on="run_row", how="left").select(
        pl.col("first_line_id").alias("event_id"), "ts", "run_id", "stream_key", "env", "service", "database",
        pl.col("lseq").alias("seq"), "kind", "version", "direction", "name", "duration_ms", "read_ms", "ran_ms",
        "own_ms", "own_us", "error_class", "error_text", "error_message", "sql_line", "sql_column", "error_detail",
        "verbose_mode", "line_count")


def _own_time(ev: pl.DataFrame) -> pl.DataFrame:
    """APPLIED durations are near-cumulative (read counts from when the script was queued, up to -prefetch 10
    ahead), so without -verbose a script's own time is the step between consecutive APPLIED values; past the
    prefetch window, the step between the shipper's arrival times."""
    applied = ev.with_row_index("row").filter(pl.col("kind") == "applied")
    # sorted by stream and position: a run's applied lines are consecutive
    first = _first_in_stream | (pl.col("run_start_seq") != pl.col("run_start_seq").shift(1))
    step = applied.with_columns(
        prev_dur=pl.when(first).then(None).otherwise(pl.col("duration_ms").shift(1)),
        prev_ts=pl.when(first).then(None).otherwise(pl.col("ts").shift(1)),
        pos=_position(first),
    )
    by_time = (pl.col("pos") > 10) & (pl.col("ts_origin") == "envelope") & pl.col("ran_ms").is_null() \
        & pl.col("prev_dur").is_not_null() & (pl.col("name") != "<empty>")
    step = step.select(
        "row",
        own_ms=pl.when(pl.col("name") == "<empty>").then(0.0)  # no file for that direction: nothing ran
        .when(pl.col("ran_ms").is_not_null()).then(pl.col("ran_ms"))
        .when(pl.col("prev_dur").is_null()).then(pl.col("duration_ms"))
        .when(~by_time).then(pl.max_horizontal(pl.col("duration_ms") - pl.col("prev_dur"), pl.lit(0.0))),
        # microseconds; divided in SQL (events_insert.sql), whose decimal division rounds as it always did
        own_us=pl.when(by_time).then(pl.col("ts").dt.epoch("us") - pl.col("prev_ts").dt.epoch("us")),
    )
    return ev.with_row_index("row").join(step, on="row", how="left").sort("row").drop("row")


def _run_ids(ev: pl.DataFrame) -> pl.DataFrame:
    """(run_row, run_id) of each run: a wrapper's run_id is its own (`run:<id>` streams); any other run is
    named after its stream and its first event, hashed once per run (a few thousand per rebuild)."""
    firsts = ev.filter(pl.col("starts_run")).select("run_row", "stream_key", "first_line_id", "wrapped")
    ids = [key[4:] if wrapped else "r" + hashlib.md5(f"{key}\x1f{first}".encode()).hexdigest()[:15]
           for key, first, wrapped in firsts.select("stream_key", "first_line_id", "wrapped").iter_rows()]
    return firsts.select("run_row").with_columns(run_id=pl.Series(ids, dtype=pl.String))
