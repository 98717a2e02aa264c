"""Where bundled files live: the repo's hwconfigs/ and workloads/ folders.

Searched in order: $ACCELSIM_HOME/<folder>, ./<folder>, then the folder beside the installed
package (the repo root for an editable install).
"""
from __future__ import annotations

import os
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]


def search_dirs(folder: str) -> list[Path]:
    dirs = []
    if os.environ.get("ACCELSIM_HOME"):
        dirs.append(Path(os.environ["ACCELSIM_HOME"]) / folder)
    dirs += [Path.cwd() / folder, REPO_ROOT / folder]
    seen, out = set(), []
    for d in dirs:
        key = d.resolve()
        if key not in seen and d.is_dir():
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


def list_bundled(folder: str, suffixes: tuple[str, ...]) -> list[str]:
    names = set()
    for d in search_dirs(folder):
        for suffix in suffixes:
            names.update(p.name[: -len(suffix)] for p in d.glob(f"*{suffix}"))
    return sorted(names)
