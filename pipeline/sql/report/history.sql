-- Own-time history of one script scope up to $as_of (for a sparkline), oldest first.
SELECT ts, own_ms FROM (
    SELECT ts, own_ms FROM migrate_events
    WHERE kind = 'applied' AND own_ms IS NOT NULL AND env = $env AND service = $service
      AND version = $version AND direction = $direction AND ts <= $as_of
    ORDER BY ts DESC LIMIT 40
) ORDER BY ts
