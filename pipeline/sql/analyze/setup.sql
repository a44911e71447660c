-- The scratch objects of one analysis: temporary (this connection only), dropped when it ends.

-- analyze_pool: each environment whose baselines are pooled (analyze.pooled_envs: preview-1234 -> preview),
-- from the environment names bound as $envs / $pools (mapped in Python with the config's globs).
CREATE OR REPLACE TEMP TABLE analyze_pool AS
SELECT unnest($envs::VARCHAR[]) AS env, unnest($pools::VARCHAR[]) AS pool;

-- analyze_quantile(sorted, q): the linear quantile of an ascending list as polars and numpy compute it:
-- lo + (hi - lo) * frac at position (n - 1) * q. DuckDB's quantile_cont and median interpolate otherwise and
-- differ in the last bits, so every median and quantile analyze stores or reports is this one.
-- The list is bound once, as the lambda's `v`: a macro argument is substituted wherever the body names it, so
-- an expensive argument (a sort) named eight times would be computed eight times.
CREATE OR REPLACE TEMP MACRO analyze_quantile(s, q) AS
    list_transform([s], lambda v:
        CASE WHEN floor((len(v) - 1)::DOUBLE * q) = ceil((len(v) - 1)::DOUBLE * q)
             THEN v[floor((len(v) - 1)::DOUBLE * q)::BIGINT + 1]
             ELSE v[floor((len(v) - 1)::DOUBLE * q)::BIGINT + 1]
                  + (v[ceil((len(v) - 1)::DOUBLE * q)::BIGINT + 1] - v[floor((len(v) - 1)::DOUBLE * q)::BIGINT + 1])
                    * ((len(v) - 1)::DOUBLE * q - floor((len(v) - 1)::DOUBLE * q))
        END)[1];
