"""One error tree. Every message names the thing and the fix; the CLI prints it once as `Error: …`."""

from __future__ import annotations


class LensError(Exception):
    """Root of every error a user can cause and fix. Exit code 1."""

    exit_code = 1


class ConfigError(LensError):
    """The config file, an option or an environment variable is wrong."""


class SourceError(LensError):
    """A log source cannot be found, listed or read."""


class WarehouseError(LensError):
    """The DuckDB warehouse cannot be opened, is busy, or refused a statement."""


class QueryError(LensError):
    """A named or ad-hoc query failed."""


class ServerError(LensError):
    """The PostgreSQL server `verify` needs cannot be found, started, reached or used."""


class DeliveryError(LensError):
    """A notification could not be delivered after retries; it stays pending for the next run."""


class UsageError(LensError):
    """Bad command-line usage. Exit code 2."""

    exit_code = 2
