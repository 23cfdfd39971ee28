"""A few plain tables beside the session store's, in the same kind of database: SQLite (a file, or
``":memory:"``) or PostgreSQL (a ``postgresql://`` URL). For logs a service keeps next to its sessions
(the CDS Hooks feedback log); the sessions themselves are :class:`pathway.runtime.store.SessionStore`'s.

The SQL given is the common part of both dialects with ``?`` placeholders; :meth:`Tables.insert_new`
adds the dialect's "insert unless the key exists". One connection per object, shared by its threads
under a lock; a lost PostgreSQL connection is opened again on the next call. Every failure to reach
the database is :class:`StoreUnavailable`.
"""

from __future__ import annotations

import os
import sqlite3
import threading
from collections.abc import Iterable, Sequence
from typing import Any

from pathway.runtime.storebase import StoreUnavailable

__all__ = ["Tables"]

_POSTGRES = ("postgresql://", "postgres://")


class Tables:
    """Tables created with ``schema`` (``CREATE TABLE IF NOT EXISTS`` statements) at ``location``."""

    def __init__(self, location: str | os.PathLike[str], schema: Sequence[str], *, purpose: str):
        name = os.fspath(location)
        self._purpose = purpose
        self._lock = threading.Lock()
        self.postgres = name.startswith(_POSTGRES)
        self.label = "PostgreSQL" if self.postgres else (os.path.basename(name) or name)
        self._location = name
        self._conn: Any = None
        with self._lock:
            self._open()
            for statement in schema:
                self._execute(statement, ())

    # -- connection -------------------------------------------------------------------------------------

    def _open(self) -> Any:
        if self._conn is not None and not (self.postgres and (self._conn.closed or self._conn.broken)):
            return self._conn
        try:
            if self.postgres:
                try:
                    import psycopg
                except ImportError:
                    raise StoreUnavailable(f"the {self._purpose} on PostgreSQL needs psycopg 3: "
                                           "pip install 'asuc-pathway[postgres]'") from None
                self._conn = psycopg.connect(self._location, autocommit=True, connect_timeout=10,
                                             application_name=f"pathway-{self._purpose.replace(' ', '-')}")
            else:
                self._conn = sqlite3.connect(self._location, check_same_thread=False, isolation_level=None)
                if self._location != ":memory:":
                    self._conn.execute("PRAGMA journal_mode=WAL")
        except StoreUnavailable:
            raise
        except Exception as exc:  # sqlite3.Error, psycopg.Error: the database cannot be reached
            self._conn = None
            raise StoreUnavailable(f"the {self._purpose} ({self.label}) cannot be opened: "
                                   f"{' '.join(str(exc).split())[:200]}") from None
        return self._conn

    def _sql(self, sql: str) -> str:
        return sql.replace("?", "%s") if self.postgres else sql

    def _failed(self, exc: Exception) -> StoreUnavailable | None:
        """The database's own failure as StoreUnavailable (None: not the database's, to raise as it is)."""
        if isinstance(exc, sqlite3.DatabaseError) or (self.postgres and type(exc).__module__.startswith("psycopg")):
            return StoreUnavailable(f"the {self._purpose} ({self.label}) failed: {' '.join(str(exc).split())[:200]}")
        return None

    def _execute(self, sql: str, params: Sequence[Any]) -> list[tuple[Any, ...]]:
        conn = self._open()
        try:
            cur = conn.execute(self._sql(sql), tuple(params))
            return list(cur.fetchall()) if cur.description is not None else []
        except Exception as exc:
            failed = self._failed(exc)
            if failed is not None:
                raise failed from None
            raise

    # -- the calls --------------------------------------------------------------------------------------

    def query(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        """The rows of one statement (none for a statement that returns none)."""
        with self._lock:
            return self._execute(sql, params)

    def insert_new(self, table: str, columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> int:
        """Insert ``rows`` in one transaction, each unless a row with its primary key exists; how many were new."""
        rows = [tuple(r) for r in rows]
        if not rows:
            return 0
        cols = ", ".join(columns)
        marks = ", ".join("?" for _ in columns)
        sql = (f"INSERT INTO {table} ({cols}) VALUES ({marks}) ON CONFLICT DO NOTHING" if self.postgres
               else f"INSERT OR IGNORE INTO {table} ({cols}) VALUES ({marks})")
        with self._lock:
            conn = self._open()
            try:
                if self.postgres:
                    with conn.transaction(), conn.cursor() as cur:
                        new = 0
                        for row in rows:
                            cur.execute(self._sql(sql), row)
                            new += max(cur.rowcount, 0)
                        return new
                before = conn.total_changes
                conn.execute("BEGIN IMMEDIATE")
                try:
                    conn.executemany(sql, rows)
                    conn.execute("COMMIT")
                except BaseException:
                    conn.execute("ROLLBACK")
                    raise
                return int(conn.total_changes - before)
            except Exception as exc:
                failed = self._failed(exc)
                if failed is not None:
                    raise failed from None
                raise

    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None
