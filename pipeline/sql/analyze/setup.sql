-- The scratch objects of one analysis: temporary (this connection only), dropped when it ends.

-- analyze_pool: each environment whose baselines are pooled (analyze.pooled_envs: preview-1234 -> preview),
-- from the environment names bound as $envs / $pools (mapped in Python with the config's globs).
CREATE OR REPLACE TEMP TABLE analyze_pool AS
SELECT unnest($envs::VARCHAR[]) AS env, unnest($pools::VARCHAR[]) AS pool;

-- analyze_quantile(sorted, q): the linear quantile of an ascending list as polars and numpy compute it:
-- lo + (hi - lo) * frac at position (n - 1) * q. DuckDB's quantile_cont and median interpolate otherwise and
-- differ in the last bits, so every median and quantile analyze stores or reports is this one.
CREATE OR REPLACE TEMP MACRO analyze_quantile(s, q) AS
    CASE WHEN floor((len(s) - 1)::DOUBLE * q) = ceil((len(s) - 1)::DOUBLE * q)
         THEN s[floor((len(s) - 1)::DOUBLE * q)::BIGINT + 1]
         ELSE s[floor((len(s) - 1)::DOUBLE * q)::BIGINT + 1]
              + (s[ceil((len(s) - 1)::DOUBLE * q)::BIGINT + 1] - s[floor((len(s) - 1)::DOUBLE * q)::BIGINT + 1])
                * ((len(s) - 1)::DOUBLE * q - floor((len(s) - 1)::DOUBLE * q))
    END;
