"""Where an output came from: accelsim's version, the git revision of its code when it runs
from a checkout, the command line, and (filled in by each command) the workload, the resolved
hardware config with its overrides and the recipe. Every JSON output carries it."""
from __future__ import annotations

import functools
import subprocess
import time
from typing import Any

from .paths import REPO_ROOT


@functools.lru_cache(maxsize=1)
def git_revision() -> str | None:
    """The commit accelsim's code is at (with ``-dirty`` when tracked files changed), or None
    outside a git checkout (an installed wheel)."""
    if not (REPO_ROOT / ".git").exists() or not (REPO_ROOT / "accelsim").is_dir():
        return None
    try:
        rev = subprocess.run(["git", "-C", str(REPO_ROOT), "rev-parse", "HEAD"], capture_output=True,
                             text=True, timeout=5)
        if rev.returncode != 0:
            return None
        dirty = subprocess.run(["git", "-C", str(REPO_ROOT), "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, timeout=5)
    except (OSError, subprocess.SubprocessError):
        return None
    return rev.stdout.strip() + ("-dirty" if dirty.returncode == 0 and dirty.stdout.strip() else "")


def provenance(command: str | None = None, **fields: Any) -> dict[str, Any]:
    """The provenance block: version, git revision, command line, time, then `fields`."""
    from . import __version__

    return {"accelsim_version": __version__, "git_revision": git_revision(), "command": command,
            "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"), **fields}


def hw_provenance(hw, overrides: dict | None = None, file: str | None = None) -> dict[str, Any]:
    """A hardware config as provenance: its name, file, the overrides applied and the resolved config."""
    return {"name": hw.name, "file": file if file is not None else hw.source_file,
            "overrides": dict(overrides or {}), "config": hw.to_dict()}


def workload_provenance(name_or_path, graph=None) -> dict[str, Any]:
    """A workload as provenance: the name given, the file behind it, the graph's name."""
    from .graph.zoo import find_workload_file

    try:
        file = str(find_workload_file(name_or_path))
    except Exception:  # a saved quantized model or a file the zoo does not know: as given
        file = str(name_or_path)
    out = {"given": str(name_or_path), "file": file}
    if graph is not None:
        out["name"] = graph.name
    return out
