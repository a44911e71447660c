-- The (env, service) pairs with any run up to $as_of, in the envs of the promotion order ($env_order).
SELECT DISTINCT env, service FROM runs WHERE started_at <= $as_of AND list_contains($env_order, env);
