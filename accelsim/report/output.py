"""Writing tables: to the terminal as text, CSV or JSON, and to files atomically."""
from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Iterable

from ..errors import AccelsimError

if TYPE_CHECKING:  # pandas is imported where a table is made: the CLI starts without it
    import pandas as pd

FORMATS = ("table", "csv", "json")


def format_table(df: pd.DataFrame, fmt: str, totals: dict | None = None, title: str = "",
                 provenance: dict | None = None) -> str:
    """Render a per-layer table (and its totals) as `table`, `csv` or `json` text.

    JSON has one shape for every command and file: ``{"provenance": {...}, "layers": [...],
    "totals": {...}}`` (see `json_document`)."""
    if fmt == "csv":
        return df.to_csv(index=False)
    if fmt == "json":
        return json_document(df, totals, provenance)
    import pandas as pd

    text = (title + "\n") if title else ""
    with pd.option_context("display.max_rows", None, "display.max_columns", None, "display.width", 250):
        text += df.to_string(index=False)
    if totals:
        width = max(len(k) for k in totals)
        text += "\n\ntotals\n" + "\n".join(f"  {k:<{width}}  {_fmt(v)}" for k, v in totals.items())
    return text + "\n"


def json_document(df: pd.DataFrame, totals: dict | None = None, provenance: dict | None = None) -> str:
    """The one JSON shape of accelsim's outputs: where it came from, the rows, the totals."""
    doc = {"provenance": provenance or {}, "layers": json.loads(df.to_json(orient="records")),
           "totals": totals or {}}
    return json.dumps(doc, indent=2, default=_json_default) + "\n"


def markdown_table(df: pd.DataFrame, digits: int = 4) -> str:
    """A DataFrame as a GitHub Markdown table (floats to `digits` significant digits), no extra dependency."""
    def cell(v) -> str:
        if isinstance(v, float):
            return f"{v:.{digits}g}"
        return str(v)

    lines = ["| " + " | ".join(map(str, df.columns)) + " |", "|" + "|".join("---" for _ in df.columns) + "|"]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in df.itertuples(index=False)]
    return "\n".join(lines)


def _fmt(value) -> str:
    if isinstance(value, float):
        return f"{value:,.4g}" if abs(value) < 1e4 else f"{value:,.0f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def _json_default(value):
    if hasattr(value, "item"):
        return value.item()
    return str(value)


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


def write_dataframe(df: pd.DataFrame, path: str | Path) -> None:
    """Write a table as .csv or .parquet (by suffix), atomically."""
    suffix = Path(path).suffix.lower()
    if suffix == ".csv":
        write_atomic(path, lambda tmp: df.to_csv(tmp, index=False))
    elif suffix == ".parquet":
        try:
            import pyarrow  # noqa: F401
        except ImportError:
            raise AccelsimError("writing .parquet needs pyarrow: pip install pyarrow (or write .csv)") from None
        write_atomic(path, lambda tmp: df.to_parquet(tmp, index=False))
    elif suffix == ".json":
        write_atomic(path, lambda tmp: df.to_json(tmp, orient="records", indent=2))
    else:
        raise AccelsimError(f"{path}: expected .csv, .parquet or .json; found unknown output format '{suffix}'")
