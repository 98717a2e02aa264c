"""Where bundled files live: the hwconfigs/ and workloads/ folders.

The repo keeps them at its top level; a build copies them into the package as
``accelsim/_bundled/<folder>`` (setup.py), read through importlib.resources, so a
non-editable install finds them from any directory. Searched in order: $ACCELSIM_HOME/<folder>,
./<folder>, the package's bundled copy, then the folder beside the package (the repo root of
an editable install or a checkout).
"""
from __future__ import annotations

import os
from importlib import resources
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
BUNDLED_FOLDERS = ("hwconfigs", "workloads")


def package_dir(folder: str) -> Path | None:
    """The package-data copy of a bundled folder (in a built install), or None."""
    try:
        root = resources.files("accelsim") / "_bundled" / folder
    except (ModuleNotFoundError, TypeError):
        return None
    return root if isinstance(root, Path) and root.is_dir() else None


def search_dirs(folder: str) -> list[Path]:
    dirs = []
    if os.environ.get("ACCELSIM_HOME"):
        dirs.append(Path(os.environ["ACCELSIM_HOME"]) / folder)
    dirs.append(Path.cwd() / folder)
    packaged = package_dir(folder)
    if packaged is not None:
        dirs.append(packaged)
    dirs.append(REPO_ROOT / folder)
    seen, out = set(), []
    for d in dirs:
        if not d.is_dir():
            continue
        key = d.resolve()
        if key not in seen:
            seen.add(key)
            out.append(d)
    return out


def find_bundled(folder: str, name: str, suffixes: tuple[str, ...]) -> Path | None:
    for d in search_dirs(folder):
        for suffix in suffixes:
            candidate = d / f"{name}{suffix}"
            if candidate.is_file():
                return candidate
    return None


def find_relative(path: str | os.PathLike) -> Path | None:
    """A relative path into a bundled folder (``hwconfigs/edge-npu-16x16.yaml``, as the README
    writes it) found in that folder's search directories, from any working directory."""
    given = Path(path)
    if given.is_absolute() or len(given.parts) < 2 or given.parts[0] not in BUNDLED_FOLDERS:
        return None
    rest = Path(*given.parts[1:])
    for d in search_dirs(given.parts[0]):
        if (d / rest).is_file():
            return d / rest
    return None


def list_bundled(folder: str, suffixes: tuple[str, ...]) -> list[str]:
    names = set()
    for d in search_dirs(folder):
        for suffix in suffixes:
            names.update(p.name[: -len(suffix)] for p in d.glob(f"*{suffix}"))
    return sorted(names)
