-- Alert channels beside e-mail (issue #17). `alerts` keeps its grain (one row per alert identity); delivery
-- state per alert and channel lives here, so each channel is told exactly once per notice whatever the others do.
CREATE TABLE IF NOT EXISTS alert_deliveries (
    alert_id      VARCHAR NOT NULL,    -- alerts.alert_id (the fingerprint)
    channel       VARCHAR NOT NULL,    -- ROUTE/KIND: oncall/slack, oncall/pagerduty, lead/email (an escalation) …
    state         VARCHAR NOT NULL,    -- pending | delivered | rejected (a 4xx: not retried until config_hash changes)
                                       -- | dropped (an undelivered firing notice of an alert that resolved meanwhile)
    attempts      INTEGER NOT NULL,    -- requests made for the current notice
    last_status   INTEGER,             -- HTTP status of the last answer; NULL: none (timeout, refused)
    last_error    VARCHAR,             -- the last failure, redacted, no secret; NULL once delivered
    external_key  VARCHAR,             -- the receiver's own key: the Jira issue key; the labels posted to Alertmanager
    config_hash   VARCHAR NOT NULL,    -- digest of the channel's settings when last tried
    notice        VARCHAR NOT NULL,    -- firing | resolved: what is (or was last) due
    episode       TIMESTAMP NOT NULL,  -- alerts.first_fired_at of the firing episode this row is about
    due_at        TIMESTAMP NOT NULL,  -- when the current notice was decided
    delivered_at  TIMESTAMP,           -- when a receiver last accepted a notice of this episode
    progress      VARCHAR              -- Jira steps done within a notice (created, commented), so none repeats
);

-- What happened to alerts over time, for the review's alerting section: fired, repeat, resolved, silenced,
-- escalated. `fired_at` is the episode's first firing, so time to resolve is `happened_at - fired_at`.
CREATE TABLE IF NOT EXISTS alert_history (
    alert_id   VARCHAR NOT NULL,
    rule       VARCHAR NOT NULL,
    event      VARCHAR NOT NULL,
    happened_at TIMESTAMP NOT NULL,
    fired_at   TIMESTAMP NOT NULL,
    detail     VARCHAR               -- the route escalated to, for `escalated`
);
