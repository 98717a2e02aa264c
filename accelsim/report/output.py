"""Writing tables: to the terminal as text, CSV or JSON, and to files atomically."""
from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import AccelsimError
# writing files all or nothing lives at the bottom of the package (quantized models are saved
# from quant/); re-exported here, where the reports and tables use it
from ..files import TABLE_SUFFIXES, check_writable, write_atomic, write_together  # noqa: F401

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
