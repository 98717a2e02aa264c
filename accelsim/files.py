"""Writing files all or nothing: fail early when a path cannot be written (before long work),
write through a temporary file renamed into place, and write files that belong together (an
.npz and its .json, a report's .md and .json) as one. A leaf module (errors only), so every
layer may save its outputs; `accelsim.report.output` re-exports it."""
from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from typing import Callable, Iterable

from .errors import AccelsimError

TABLE_SUFFIXES = (".csv", ".parquet", ".json")


def check_writable(path: str | Path, suffixes: tuple[str, ...] = TABLE_SUFFIXES) -> None:
    """Fail early, before long work, if `path` cannot be written: bad suffix, missing directory,
    a directory in the way."""
    path = Path(path)
    if suffixes and path.suffix.lower() not in suffixes:
        raise AccelsimError(f"{path}: expected a file name ending in {', '.join(suffixes)}; "
                            f"found unknown output format '{path.suffix}'")
    parent = path.parent if str(path.parent) else Path(".")
    if not parent.is_dir():
        raise AccelsimError(f"{path}: expected a file in an existing directory; found directory {parent} does not exist")
    if path.is_dir():
        raise AccelsimError(f"{path}: expected a file name; found a directory (is a directory)")
    if not os.access(parent, os.W_OK):
        raise AccelsimError(f"{path}: expected a writable directory; found directory {parent} is not writable")
    if path.exists() and not path.is_file():
        raise AccelsimError(f"{path}: expected a regular file to replace; found a special file")


def write_together(paths: Iterable[str | Path], write: Callable[[Path], None]) -> list[Path]:
    """All-or-nothing for outputs that belong together (an .npz and its .json, a report's .md
    and .json): ``write(tmp_dir)`` writes every file under its own name into a temporary
    folder beside the targets; only when all are written are they given the usual mode
    (0666 & ~umask) and renamed onto the targets. A failure leaves none of them."""
    paths = [Path(p) for p in paths]
    for p in paths:
        check_writable(p, suffixes=())
    parents = {p.parent.resolve() for p in paths}
    if len(parents) != 1:
        raise AccelsimError(f"{paths[0]}: files written together must share one directory")
    try:
        tmp = Path(tempfile.mkdtemp(prefix=".accelsim-", dir=paths[0].parent or "."))
    except OSError as exc:
        raise AccelsimError(f"{paths[0]}: cannot write: {exc.strerror}") from None
    done: list[Path] = []
    try:
        write(tmp)
        mode = 0o666 & ~_umask()
        staged = [tmp / p.name for p in paths]
        for src in staged:
            if not src.is_file():
                raise AccelsimError(f"{src.name}: expected the writer to produce it; found nothing")
            os.chmod(src, mode)
        for src, dst in zip(staged, paths):
            os.replace(src, dst)
            done.append(dst)
    except OSError as exc:
        for d in done:
            d.unlink(missing_ok=True)
        raise AccelsimError(f"{paths[0]}: cannot write: {exc.strerror or exc}") from None
    except BaseException:
        for d in done:
            d.unlink(missing_ok=True)
        raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return paths


def write_atomic(path: str | Path, write) -> None:
    """Call write(tmp_path), then rename onto `path`: a failed or killed write leaves no half file."""
    path = Path(path)
    check_writable(path, suffixes=())
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent or ".")
    except OSError as exc:
        raise AccelsimError(f"{path}: cannot write: {exc.strerror}") from None
    os.close(fd)
    try:
        write(tmp)
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; a result file gets the usual mode
        os.replace(tmp, path)
    except OSError as exc:
        Path(tmp).unlink(missing_ok=True)
        raise AccelsimError(f"{path}: cannot write: {exc.strerror or exc}") from None
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask
