"""The sweep result store: one embedded SQLite file, one row per point.

A point's row is keyed by a content hash of what determines its numbers (the resolved
hardware, the workload and its file's hash, the recipe, the dataset, the accelsim version)
and written in a transaction with INSERT OR IGNORE: a sweep killed at any moment leaves only
whole rows, a rerun computes only the missing keys, and two sweeps writing one store at once
(WAL journal, a busy timeout) neither corrupt it nor duplicate a point. Accuracy measurements
are kept in their own table, keyed by the numeric configuration they depend on, so a rerun
does not repeat them either.
"""
from __future__ import annotations

import json
import sqlite3
import time
from pathlib import Path
from typing import Any, Iterable

from ..errors import AccelsimError

SCHEMA_VERSION = "1"
STATUSES = ("ok", "skipped", "error", "timeout")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (k TEXT PRIMARY KEY, v TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS sweeps (name TEXT PRIMARY KEY, spec TEXT NOT NULL, created TEXT NOT NULL,
                                   updated TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS points (
    key TEXT PRIMARY KEY, sweep TEXT NOT NULL, idx INTEGER NOT NULL, status TEXT NOT NULL,
    workload TEXT NOT NULL, recipe TEXT NOT NULL, axes TEXT NOT NULL, summary TEXT, layers TEXT,
    error TEXT, version TEXT NOT NULL, wall_s REAL, created TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS members (sweep TEXT NOT NULL, key TEXT NOT NULL, idx INTEGER NOT NULL,
                                    PRIMARY KEY (sweep, key));
CREATE TABLE IF NOT EXISTS accuracy (key TEXT PRIMARY KEY, summary TEXT NOT NULL, created TEXT NOT NULL);
"""


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S%z")


class Store:
    """A result store at `path` (created if missing)."""

    def __init__(self, path: str | Path, create: bool = True):
        self.path = Path(path)
        if not create and not self.path.is_file():
            raise AccelsimError(f"{path}: no result store here (run `accelsim sweep SPEC --store {path}` first)")
        if self.path.exists() and self.path.is_dir():
            raise AccelsimError(f"{path}: is a directory; expected a result store file")
        try:
            self.conn = sqlite3.connect(str(self.path), timeout=120.0, isolation_level=None)
            self.conn.execute("PRAGMA busy_timeout = 120000")
            if create:
                self.conn.execute("PRAGMA journal_mode = WAL")
                self.conn.execute("PRAGMA synchronous = NORMAL")
                for stmt in filter(str.strip, _SCHEMA.split(";")):
                    self.conn.execute(stmt)
                self.conn.execute("INSERT OR IGNORE INTO meta VALUES ('schema_version', ?)", (SCHEMA_VERSION,))
            version = self.conn.execute("SELECT v FROM meta WHERE k = 'schema_version'").fetchone()
        except sqlite3.DatabaseError as e:
            raise AccelsimError(f"{path}: not an accelsim result store ({e})") from None
        if version is None or version[0] != SCHEMA_VERSION:
            raise AccelsimError(f"{path}: result store schema {version[0] if version else 'unknown'}; this accelsim "
                                f"reads schema {SCHEMA_VERSION}")

    def transaction(self):
        conn = self.conn

        class _Tx:
            def __enter__(self_inner):
                conn.execute("BEGIN IMMEDIATE")
                return conn

            def __exit__(self_inner, kind, value, tb):
                conn.execute("COMMIT" if kind is None else "ROLLBACK")
                return False

        return _Tx()

    def close(self) -> None:
        self.conn.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # ------------------------------------------------------------------ writing

    def register_sweep(self, name: str, spec: dict, members: Iterable[tuple[str, int]]) -> None:
        now = _now()
        with self.transaction() as c:
            c.execute("INSERT INTO sweeps VALUES (?, ?, ?, ?) ON CONFLICT(name) DO UPDATE SET spec = excluded.spec, "
                      "updated = excluded.updated", (name, json.dumps(spec, sort_keys=True, default=str), now, now))
            c.executemany("INSERT OR IGNORE INTO members VALUES (?, ?, ?)", [(name, k, i) for k, i in members])

    def add_points(self, rows: list[dict[str, Any]]) -> int:
        """Insert finished points in one transaction; a key already present is left as it is.
        Returns the number of rows written."""
        if not rows:
            return 0
        now = _now()
        values = [(r["key"], r["sweep"], r["idx"], r["status"], r["workload"], r["recipe"],
                   json.dumps(r["axes"], sort_keys=True, default=str),
                   json.dumps(r.get("summary"), default=_plain) if r.get("summary") is not None else None,
                   json.dumps(r.get("layers"), default=_plain) if r.get("layers") is not None else None,
                   r.get("error"), r["version"], r.get("wall_s"), now) for r in rows]
        with self.transaction() as c:
            before = c.total_changes
            c.executemany("INSERT OR IGNORE INTO points VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)", values)
            return c.total_changes - before

    def delete(self, keys: Iterable[str]) -> None:
        with self.transaction() as c:
            c.executemany("DELETE FROM points WHERE key = ?", [(k,) for k in keys])

    def add_accuracy(self, key: str, summary: dict) -> None:
        with self.transaction() as c:
            c.execute("INSERT OR IGNORE INTO accuracy VALUES (?, ?, ?)", (key, json.dumps(summary, default=_plain),
                                                                           _now()))

    # ------------------------------------------------------------------ reading

    def statuses(self, keys: Iterable[str] | None = None) -> dict[str, str]:
        rows = self.conn.execute("SELECT key, status FROM points").fetchall()
        if keys is None:
            return dict(rows)
        want = set(keys)
        return {k: s for k, s in rows if k in want}

    def accuracy(self, key: str) -> dict | None:
        row = self.conn.execute("SELECT summary FROM accuracy WHERE key = ?", (key,)).fetchone()
        return json.loads(row[0]) if row else None

    def sweeps(self) -> dict[str, dict]:
        return {n: json.loads(s) for n, s in self.conn.execute("SELECT name, spec FROM sweeps ORDER BY created")}

    def raw_points(self, sweep: str | None = None) -> list[tuple]:
        cols = "p.key, m.sweep, m.idx, p.status, p.workload, p.recipe, p.axes, p.summary, p.layers, p.error, " \
               "p.version, p.wall_s"
        if sweep is None:
            q = f"SELECT {cols} FROM points p JOIN members m ON m.key = p.key ORDER BY m.sweep, m.idx"
            rows = self.conn.execute(q).fetchall()
            # a point in several sweeps appears once: its first sweep
            seen, out = set(), []
            for r in rows:
                if r[0] not in seen:
                    seen.add(r[0])
                    out.append(r)
            return out
        if sweep not in self.sweeps():
            known = ", ".join(self.sweeps()) or "none"
            raise AccelsimError(f"{self.path}: no sweep named {sweep!r} (sweeps in the store: {known})")
        q = f"SELECT {cols} FROM points p JOIN members m ON m.key = p.key WHERE m.sweep = ? ORDER BY m.idx"
        return self.conn.execute(q, (sweep,)).fetchall()


def _plain(value):
    if hasattr(value, "item"):
        return value.item()
    return str(value)


def results_frame(store: Store, sweep: str | None = None):
    """One row per point: sweep, key, status, error, workload, recipe, every axis as a column,
    then every summary figure."""
    import pandas as pd

    records = []
    for key, sw, idx, status, workload, recipe, axes, summary, _layers, error, version, wall_s in \
            store.raw_points(sweep):
        rec = {"sweep": sw, "point": idx, "key": key, "status": status, "error": error, "workload": workload,
               "recipe": recipe, "method": str(recipe).split(" ")[0]}
        rec.update(json.loads(axes))
        for k, v in (json.loads(summary) if summary else {}).items():
            rec.setdefault(k, v)
        rec["accelsim_version"] = version
        rec["wall_s"] = wall_s
        records.append(rec)
    return pd.DataFrame.from_records(records)


def layers_frame(store: Store, sweep: str | None = None):
    """Per-layer costs of every finished point: key, layer, then the stored layer columns."""
    import pandas as pd

    rows = []
    for r in store.raw_points(sweep):
        if r[8]:
            for layer in json.loads(r[8]):
                rows.append({"key": r[0], **layer})
    return pd.DataFrame.from_records(rows)
