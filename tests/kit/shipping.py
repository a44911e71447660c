"""A fleet's migrate runs carried by its shippers into files: the bytes a log pipeline would leave behind.

`Shipment` collects records per destination as runs are shipped (each shipper stamps its own receive time,
`envelopes.delivered`), then writes every file in time order (ties in shipping order) with the file's mtime
set to its last record. Where several files come from one stream of records (Loki exports of time windows,
CloudWatch events exported per day in several forms), the records are kept until the caller says how to cut
them. All randomness comes from the `rng` given, in shipping order.
"""

from __future__ import annotations

import random
from collections import defaultdict
from collections.abc import Callable
from typing import Any

from .envelopes import (
    bare_text,
    cloudwatch_event,
    cri_line,
    delivered,
    digits,
    docker_line,
    event_line,
    filter_log_events,
    fluent_bit_line,
    fluentbit_json,
    gzip_bytes,
    k8s_suffix,
    loki_line,
    plain_json,
    s3_export_line,
    slog_line,
    subscription_payload,
)
from .gofmt import MS, NS, US
from .migrate import Run

Record = tuple[int, int, bytes]  # (time ns, shipping order, the record without newline)


class Shipment:
    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.files: dict[str, list[Record]] = defaultdict(list)
        self.loki: list[tuple[int, int, dict[str, str], str]] = []
        self.cloudwatch: dict[Any, list[tuple[int, int, dict[str, Any], Run]]] = defaultdict(list)
        self.bare: dict[str, tuple[int, str]] = {}
        self._order = 0

    def _next(self) -> int:
        self._order += 1
        return self._order

    def put(self, path: str, ns: int, line: str | bytes, run: Run | None = None) -> None:
        self.files[path].append((ns, self._next(), line.encode("utf-8") if isinstance(line, str) else line))
        if run is not None:
            run.files.add(path)

    # -- shippers, one run at a time -------------------------------------------------------------------------
    def kubernetes(self, run: Run, meta: dict[str, Any], path: Callable[[int], str]) -> None:
        """Fluent Bit `json_lines`; `path(ns)` names the file a record lands in (e.g. one per ISO week)."""
        kube = fluentbit_json(meta)
        for ns, text in delivered(self.rng, run.lines):
            self.put(path(ns), ns, fluent_bit_line(text, ns, kube), run)

    def cri(self, run: Run, path: str) -> None:
        for ns, text in delivered(self.rng, run.lines):
            self.put(path, ns, cri_line(text, ns), run)

    def docker(self, run: Run, path: str) -> None:
        for ns, text in delivered(self.rng, run.lines):
            self.put(path, ns, docker_line(text, ns), run)

    def loki_records(self, run: Run, labels: dict[str, str]) -> None:
        """Into Loki; `loki_export` cuts the files."""
        for ns, text in delivered(self.rng, run.lines):
            self.loki.append((ns, self._next(), labels, text))
            run.files.add("loki")

    def cloudwatch_events(self, run: Run, stream: str, group: Callable[[int], Any]) -> None:
        """Into CloudWatch (one log stream per ECS task); `group(ms)` keys the export an event goes to."""
        for ns, text in delivered(self.rng, run.lines):
            ms = ns // MS
            ev = cloudwatch_event(stream, ns, text, ingestion_ms=ms + self.rng.randint(180, 2400),
                                  event_id=digits(self.rng, 56))
            self.cloudwatch[group(ms)].append((ms, self._next(), ev, run))

    def events(self, run: Run, path: str, run_id: str, meta: dict[str, str], args: list[str]) -> None:
        """A wrapper writing `migrate-lens/v1`: run_start, one `line` per physical line, run_end."""
        def ev(ns: int, event: str, **fields: Any) -> None:
            self.put(path, ns, event_line(ns, run_id, event, meta, **fields), run)

        t = run.spec["t"]
        ev(t, "run_start", command=run.spec["cmd"], args=args)
        for ns, text in run.lines:
            ev(ns + int(self.rng.uniform(40, 400) * US), "line", line=text)
        ev(max(run.end_ns, (run.lines[-1][0] if run.lines else t)) + int(self.rng.uniform(1, 4) * MS), "run_end",
           exit_code=run.exit_code)

    def bare_file(self, run: Run, path: str) -> None:
        """migrate's output saved by hand: no timestamps, so the file's mtime is the run's end."""
        self.bare[path] = (run.end_ns, bare_text(t for _ns, t in run.lines))
        run.files.add(path)

    def slog_service(self, runs: list[Run], pod_prefix: str, attrs: dict[str, str], db_host: str,
                     start_ns: int, end_ns: int) -> list[tuple[int, int, str]]:
        """A Go service embedding migrate, logging with slog: one pod per deploy, which runs `m.Up()` at start.

        A pod lives from its deploy until the next successful one (health checks about every 2 h); a failed
        pod logs its error once, whole, and exits, while the old pod keeps serving. Returns (ns, order, line).
        """
        out: list[tuple[int, int, str]] = []

        def rec(pod: str, ns: int, level: str, msg: str, **more: Any) -> None:
            out.append((ns, self._next(), slog_line(ns, level, msg, **attrs, pod=pod, **more)))

        rng = self.rng
        live = (f"{pod_prefix}-{k8s_suffix(rng, 10)}-{k8s_suffix(rng)}", start_ns - 3 * 86400 * NS)
        for r in [*runs, None]:
            until = r.spec["t"] if r is not None else end_ns
            pod, since = live
            hc = max(since, start_ns) + rng.randrange(2 * 3600 * NS)
            while hc < until:
                if hc >= start_ns:
                    rec(pod, hc, "INFO", "health check ok", status=200, latency_ms=round(rng.uniform(0.6, 4.5), 3))
                hc += int(rng.uniform(1.8, 2.2) * 3600 * NS)
            if r is None:
                break
            s = r.spec
            t = s["t"] - int(rng.uniform(5, 40) * MS)
            rec(s["pod"], t, "INFO", "starting server", build=s["app_version"], go_version="go1.23.4")
            rec(s["pod"], t + int(rng.uniform(3, 9) * MS), "INFO", "connecting to database", host=db_host)
            for i, (ns, text) in enumerate(r.lines):
                if i not in r.err_idx:
                    rec(s["pod"], ns, "INFO", text, component="migrate")
            if r.error_text is not None:
                assert r.error_ns is not None
                rec(s["pod"], r.error_ns, "ERROR", "migration failed", error=r.error_text)
                continue  # the process exits 1; the old pod keeps serving
            rec(s["pod"], r.end_ns + int(rng.uniform(100, 900) * US), "INFO", "schema migrations done",
                component="migrate", schema_version=int(r.version_after))  # type: ignore[arg-type]
            ready = r.end_ns + int(rng.uniform(2, 8) * MS)
            rec(s["pod"], ready, "INFO", "listening on :8080")
            stop = ready + int(rng.uniform(4, 12) * NS)
            rec(live[0], stop, "INFO", "received SIGTERM, shutting down")
            rec(live[0], stop + int(rng.uniform(40, 400) * MS), "INFO", "server stopped")
            live = (s["pod"], ready)
        return out

    # -- cutting and writing ---------------------------------------------------------------------------------
    def loki_export(self, lo: int, hi: int, offset_min: int = 0) -> tuple[list[bytes], int]:
        """`logcli query --forward` over [lo, hi): the records and the time of the last one."""
        out, last = [], lo
        for ns, _o, labels, text in sorted(self.loki, key=lambda x: (x[0], x[1])):
            if lo <= ns < hi:
                out.append(loki_line(text, ns, labels, offset_min=offset_min).encode("utf-8"))
                last = ns
        return out, last

    def cloudwatch_file(self, form: str, events: list[tuple[int, int, dict[str, Any], Run]], log_group: str,
                        ) -> bytes:
        """One export of events: `filter` (filter-log-events), `jsonl` (an event per line), `subscription`
        (a gzip'd subscription payload, one stream) or `s3export` (gzip text, one stream)."""
        evs = [e for _m, _o, e, _r in events]
        last_ns = events[-1][0] * MS
        if form == "filter":
            return filter_log_events(evs).encode("utf-8")
        if form == "jsonl":
            return b"".join(plain_json(e).encode("utf-8") + b"\n" for e in evs)
        streams = sorted({e["logStreamName"] for e in evs})
        assert len(streams) == 1, f"a {form} export holds one stream, not {streams}"
        if form == "subscription":
            payload = plain_json(subscription_payload(log_group, streams[0], evs)).encode("utf-8")
            return gzip_bytes(payload, last_ns)
        assert form == "s3export", form
        text = "".join(s3_export_line(e["timestamp"] * MS, e["message"]) + "\n" for e in evs)
        return gzip_bytes(text.encode("utf-8"), last_ns)
