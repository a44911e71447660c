"""Files the package ships (SQL, templates, named queries, default rules), read through the package.

`pip install` puts them inside `pipeline/`: the top-level `queries/` and `reports/` folders of the source tree
are mapped to `pipeline.queries` and `pipeline.templates` at build time (pyproject.toml), so nothing is found
through a path relative to a checkout.
"""

from __future__ import annotations

from importlib import resources
from importlib.abc import Traversable


def sql_text(name: str) -> str:
    """The text of `pipeline/sql/<name>.sql` (`name` may hold a sub-folder: `report/headline`)."""
    return resources.files("pipeline").joinpath("sql", *f"{name}.sql".split("/")).read_text(encoding="utf-8")


def sql_folder(name: str) -> Traversable:
    """A folder under `pipeline/sql/`."""
    return resources.files("pipeline").joinpath("sql", name)


def queries_folder() -> Traversable:
    """The named queries (`queries/` in the source tree)."""
    return resources.files("pipeline.queries")


def templates_folder() -> Traversable:
    """The jinja2 templates (`reports/` in the source tree)."""
    return resources.files("pipeline.templates")


def dashboards_folder() -> Traversable:
    """The Grafana dashboards and their provisioning file (`dashboards/` in the source tree)."""
    return resources.files("pipeline.dashboards")


def default_rules() -> Traversable:
    """The alert rules used when no `--rules` file is given."""
    return resources.files("pipeline.alerts").joinpath("default_rules.toml")
