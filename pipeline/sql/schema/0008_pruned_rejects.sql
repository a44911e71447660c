-- Rejects that `prune` removed, counted by reason, so `migrate_lens_rejects_total` stays a counter: the
-- records are gone, the number of them is not (Prometheus reads a counter that drops as a reset).
CREATE TABLE IF NOT EXISTS pruned_rejects (
    reason     VARCHAR NOT NULL,
    rejects    BIGINT NOT NULL,    -- rejects of this reason removed by one prune
    pruned_at  TIMESTAMP NOT NULL
);
