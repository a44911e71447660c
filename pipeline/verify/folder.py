"""A golang-migrate folder as `verify` runs it: versions in order, each with its up and (maybe) down file, and
the optional seed files. Reading a file's text is left to the check that needs it, so a file that is not
UTF-8 fails that version's check instead of the whole run."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from pipeline.core.errors import SourceError

# golang-migrate's source.DefaultParse; migrate ignores a file that does not match it.
FILENAME = re.compile(r"^([0-9]+)_(.*)\.(down|up)\.(.*)$")
SEED = re.compile(r"^([0-9]+)\.sql$")


@dataclass(frozen=True)
class Migration:
    version: int
    name: str  # the title between `N_` and `.up.sql`, as migrate prints it
    up: Path
    down: Path | None


@dataclass(frozen=True)
class Folder:
    path: Path
    migrations: tuple[Migration, ...]
    skipped: tuple[str, ...]  # file names that do not match the naming, as migrate skips them
    seeds: dict[int, Path]


def read_folder(folder: Path, seed_dir: Path | None = None) -> Folder:
    """The migrations of `folder`; SourceError (exit 1) for no migrations, duplicates or a missing folder."""
    names = _names(folder, "migrations folder")
    ups: dict[int, list[str]] = {}
    downs: dict[int, list[str]] = {}
    skipped = []
    for name in names:
        m = FILENAME.match(name)
        if not m:
            skipped.append(name)
            continue
        (ups if m[3] == "up" else downs).setdefault(int(m[1]), []).append(name)
    duplicates = [f"{', '.join(files)} (version {v}, {d})" for d, group in (("up", ups), ("down", downs))
                  for v, files in sorted(group.items()) if len(files) > 1]
    if duplicates:
        raise SourceError(f"{folder}: duplicate migration versions: {'; '.join(duplicates)}; migrate refuses the "
                          "folder: give one file of each pair a new version")
    orphans = sorted(set(downs) - set(ups))
    if orphans:
        raise SourceError(f"{folder}: down files without an up: {', '.join(downs[v][0] for v in orphans)}; "
                          "add the up file, or remove the down")
    if not ups:
        raise SourceError(f"{folder}: no migration files (N_name.up.sql / N_name.down.sql); point verify at the "
                          "folder migrate's -path uses")
    migrations = tuple(
        Migration(v, FILENAME.match(ups[v][0])[2], folder / ups[v][0],  # type: ignore[index]
                  folder / downs[v][0] if v in downs else None)
        for v in sorted(ups))
    return Folder(folder, migrations, tuple(skipped), _seeds(seed_dir, {m.version for m in migrations}))


def _names(folder: Path, what: str) -> list[str]:
    if not folder.is_dir():
        raise SourceError(f"{folder}: no such {what}; pass a directory")
    try:
        return sorted(p.name for p in folder.iterdir() if p.is_file())
    except OSError as e:
        raise SourceError(f"{folder}: cannot list the folder ({e.strerror}); check its permissions") from e


def _seeds(seed_dir: Path | None, versions: set[int]) -> dict[int, Path]:
    if seed_dir is None:
        return {}
    seeds: dict[int, Path] = {}
    for name in _names(seed_dir, "seed folder"):
        m = SEED.match(name)
        if not m:
            continue
        if int(m[1]) not in versions:
            raise SourceError(f"{seed_dir / name}: no migration has version {int(m[1])}; a seed file is named "
                              "after the version it follows ({version}.sql)")
        if int(m[1]) in seeds:
            raise SourceError(f"{seed_dir}: two seed files for version {int(m[1])}: {seeds[int(m[1])].name}, {name}")
        seeds[int(m[1])] = seed_dir / name
    return seeds


def read_sql(path: Path) -> str:
    """The file's text as migrate sends it: the bytes, which PostgreSQL (UTF8) must be able to read.
    UnicodeDecodeError and OSError are the caller's to report as the check's failure."""
    return path.read_bytes().decode("utf-8")
