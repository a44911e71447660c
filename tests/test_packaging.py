"""What a user installs: the wheel carries every asset the package reads, and the layering holds."""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from .conftest import ROOT

BIN = Path(sys.executable).parent


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> zipfile.ZipFile:
    out = tmp_path_factory.mktemp("wheel")
    shutil.rmtree(ROOT / "build", ignore_errors=True)  # setuptools reuses build/: a stale file would ship
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", "-w", str(out),
                    str(ROOT)], check=True, capture_output=True)
    (built,) = out.glob("migrate_lens-*.whl")
    return zipfile.ZipFile(built)


def _tracked(folder: str) -> list[str]:
    out = subprocess.run(["git", "ls-files", folder], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    return [line for line in out.splitlines() if line]


@pytest.mark.parametrize("folder, inside", [("pipeline", "pipeline"), ("queries", "pipeline/queries"),
                                            ("reports", "pipeline/templates"),
                                            ("dashboards", "pipeline/dashboards")])
def test_the_wheel_carries_every_tracked_file_of_the_package_and_its_asset_folders(wheel, folder, inside):
    names = set(wheel.namelist())
    tracked = _tracked(folder)
    assert tracked, folder
    missing = [f for f in tracked if inside + f.removeprefix(folder) not in names]
    assert missing == []


def test_the_wheel_ships_nothing_the_checkout_does_not_track(wheel):
    tracked = {f.replace("queries/", "pipeline/queries/", 1).replace("reports/", "pipeline/templates/", 1)
               .replace("dashboards/", "pipeline/dashboards/", 1)
               for folder in ("pipeline", "queries", "reports", "dashboards") for f in _tracked(folder)}
    shipped = {n for n in wheel.namelist() if not n.startswith("migrate_lens-") and "__pycache__" not in n}
    assert shipped - tracked == set()


def test_the_installed_assets_are_found_through_the_package_not_the_checkout(wheel, tmp_path):
    wheel.extractall(tmp_path / "site")
    code = ("import sys; sys.path.insert(0, sys.argv[1]); "
            "from pipeline.core.assets import queries_folder, templates_folder, default_rules, sql_text; "
            "from pipeline.warehouse.named import named_queries; from pipeline.core.render import environment; "
            "print(len(named_queries()), sorted(environment().list_templates())[0], default_rules().is_file(), "
            "queries_folder().joinpath('failed_runs.sql').is_file(), str(templates_folder()).startswith(sys.argv[1]))")
    out = subprocess.run([sys.executable, "-I", "-c", code, str(tmp_path / "site")], cwd=tmp_path, capture_output=True,
                         text=True, check=True).stdout.split()
    assert int(out[0]) >= 10 and out[1:] == ["_finding.html.j2", "True", "True", "True"]


def test_imports_go_one_way_as_import_linter_checks_them():
    result = subprocess.run([str(BIN / "lint-imports")], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout[-2000:]
    assert "broken" not in result.stdout.lower().replace("0 broken", "")


def test_no_module_of_the_package_is_over_420_lines():
    long = {str(p.relative_to(ROOT)): n for p in (ROOT / "pipeline").rglob("*.py")
            if (n := len(p.read_text(encoding="utf-8").splitlines())) > 420}
    assert long == {}
