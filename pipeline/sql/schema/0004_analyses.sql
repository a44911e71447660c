-- One row per `analyze`: when it ran, for which clock, and how far ingest had got. `report` and `alert`
-- compare it with `ingested_sources` so that a stale or missing analysis is never reported as health.
CREATE TABLE IF NOT EXISTS analyses (
    analyzed_at      TIMESTAMP NOT NULL,   -- wall clock, UTC
    as_of            TIMESTAMP NOT NULL,   -- the analysis clock (--as-of)
    ingested_through TIMESTAMP,            -- max(ingested_sources.ingested_at) it saw; NULL: nothing ingested
    findings         BIGINT NOT NULL,
    open_findings    BIGINT NOT NULL
);
