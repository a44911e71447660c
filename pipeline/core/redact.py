"""Secret redaction, applied before anything is stored, rendered or sent.

The same patterns exist twice: as a DuckDB macro (`redact(s)`, used on whole batches while loading) and
as a Python function (for the few strings that never pass through DuckDB: paths, CLI arguments, errors).
`tests/test_redact.py` holds both to the same corpus.
"""

from __future__ import annotations

import re

MASK = "***"

# (pattern, replacement) pairs in RE2/Python-compatible syntax. Order matters: DSNs first, so that the
# password inside `postgres://user:pw@host` is masked before the generic `key=value` rules look at it.
PATTERNS: tuple[tuple[str, str], ...] = (
    # scheme://user:password@host (postgres, mysql, clickhouse, mongodb+srv, redis, amqp, …)
    (r"([a-zA-Z][a-zA-Z0-9+.\-]*://[^:/@\s\"']*:)[^@\s\"'/]+@", r"\1" + MASK + "@"),
    # go-sql-driver/mysql DSNs have no scheme: user:password@tcp(host:3306)/db
    (r"([A-Za-z0-9_.\-]+:)[^@\s\"'/:]+@(tcp|unix|udp)\(", r"\1" + MASK + r"@\2("),
    # AWS secret access keys are base64 and may hold `/`
    (r"(?i)((?:aws_)?secret[_-]?access[_-]?key[\"']?\s*[=:]\s*[\"']?)[A-Za-z0-9/+=]+", r"\1" + MASK),
    # key=value and key: value pairs whose key says secret (libpq conninfo, query strings, env dumps);
    # the value stops at `/` so that a path segment like `…/token=abc/x.log` keeps its tail
    (
        (r"(?i)((?:password|passwd|pwd|sslpassword|secret|token|api[_-]?key|access[_-]?key|"
         r"auth[_-]?token|client[_-]?secret)"
         r"[\"']?\s*[=:]\s*[\"']?)[^\s\"'&;,}/]+"),
        r"\1" + MASK,
    ),
    # Authorization headers
    (r"(?i)(bearer\s+)[A-Za-z0-9\-._~+/]+=*", r"\1" + MASK),
    (r"(?i)(basic\s+)[A-Za-z0-9+/]{8,}=*", r"\1" + MASK),
    # AWS access key ids, GitHub/GitLab/Slack tokens, JWTs
    (r"\b(?:AKIA|ASIA)[0-9A-Z]{16}\b", MASK),
    (r"\b(?:ghp|gho|ghu|ghs|ghr|github_pat|glpat|xox[abprs])[-_][A-Za-z0-9_\-]{10,}", MASK),
    (r"\beyJ[A-Za-z0-9_\-]{8,}\.[A-Za-z0-9_\-]{8,}\.[A-Za-z0-9_\-]{8,}", MASK),
)

_COMPILED = tuple((re.compile(p), r) for p, r in PATTERNS)


def redact(text: str) -> str:
    """Mask every secret shape in `text`."""
    for pattern, replacement in _COMPILED:
        text = pattern.sub(replacement, text)
    return text


def _sql_literal(s: str) -> str:
    return "'" + s.replace("'", "''") + "'"


def _sql_replacement(r: str) -> str:
    # Python's \1 is RE2's \1 as well; nothing to translate but quoting.
    return _sql_literal(r)


def macro_sql() -> str:
    """`CREATE MACRO redact(s)` nesting every pattern, for set-based redaction inside DuckDB.

    One pass of all patterns as a single alternation decides whether a line needs the rewrite at all:
    almost no migrate line does, and eight nested `regexp_replace` calls per line are what cost.
    """
    expr = "s"
    for pattern, replacement in PATTERNS:
        expr = f"regexp_replace({expr}, {_sql_literal(pattern)}, {_sql_replacement(replacement)}, 'g')"
    anything = "|".join(f"(?:{p})" for p, _ in PATTERNS)
    return (f"CREATE OR REPLACE MACRO redact(s) AS "
            f"CASE WHEN regexp_matches(s, {_sql_literal(anything)}) THEN {expr} ELSE s END;")


# A record cut short by a damaged stream can end inside a DSN, before the `@` the DSN rule needs.
_CUT_DSN = re.compile(r"([a-zA-Z][a-zA-Z0-9+.\-]*://[^:/@\s\"']*:)[^@\s\"'/]*$")


def redact_fragment(text: str) -> str:
    """Redact a fragment that may have been cut inside a secret."""
    return _CUT_DSN.sub(r"\1" + MASK, redact(text))
