"""The web app's library: athletes and their clips, in SQLite (stdlib sqlite3, WAL).

A clip row is also its analysis job: ``status`` goes queued -> running ->
done or failed. The files of clip ``id`` live in ``data_dir/clips/<id>/``
(the upload under a name we choose, the results in ``result/``); the
client's file name is kept only as ``display_name``.
"""

from __future__ import annotations

import datetime as dt
import json
import sqlite3
import threading
from pathlib import Path

SCHEMA = """
CREATE TABLE IF NOT EXISTS athletes (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE COLLATE NOCASE,
    created_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS clips (
    id TEXT PRIMARY KEY,                  -- random hex: the folder name under clips/
    athlete_id INTEGER NOT NULL REFERENCES athletes(id) ON DELETE CASCADE,
    display_name TEXT NOT NULL,           -- the uploaded file's name, shown (escaped), never a path
    stored_name TEXT NOT NULL,            -- the upload's name on disk, chosen by us
    sha256 TEXT NOT NULL,
    size_bytes INTEGER NOT NULL,
    duration_s REAL,
    session_date TEXT NOT NULL,           -- YYYY-MM-DD, the date the clip was filmed
    uploaded_at TEXT NOT NULL,
    status TEXT NOT NULL DEFAULT 'queued',   -- queued, running, done, failed
    stage TEXT,
    progress REAL NOT NULL DEFAULT 0,     -- 0..1 while running
    error TEXT,
    summary TEXT,                         -- JSON: formcheck.batch.clip_summary()
    started_at TEXT,
    finished_at TEXT,
    deleted INTEGER NOT NULL DEFAULT 0    -- deleted while running: removed when the job ends
);
CREATE INDEX IF NOT EXISTS clips_athlete ON clips(athlete_id, session_date);
CREATE INDEX IF NOT EXISTS clips_status ON clips(status, uploaded_at);
"""


def now() -> str:
    return dt.datetime.now().isoformat(timespec="seconds")


class Database:
    """One connection shared by the server's threads, serialised by a lock."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None,
                                   timeout=10.0)
        self._db.row_factory = sqlite3.Row
        with self._lock:
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA foreign_keys=ON")
            self._db.executescript(SCHEMA)

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def _all(self, sql: str, *args) -> list[dict]:
        with self._lock:
            return [_row(r) for r in self._db.execute(sql, args).fetchall()]

    def _one(self, sql: str, *args) -> dict | None:
        rows = self._all(sql, *args)
        return rows[0] if rows else None

    def _run(self, sql: str, *args) -> int:
        with self._lock:
            return self._db.execute(sql, args).rowcount

    # -- athletes ------------------------------------------------------------
    def athlete_id(self, name: str) -> int:
        """The id of the athlete called ``name`` (case-insensitive), created if new."""
        with self._lock:
            self._db.execute("INSERT OR IGNORE INTO athletes(name, created_at) VALUES (?, ?)", (name, now()))
            return self._db.execute("SELECT id FROM athletes WHERE name = ?", (name,)).fetchone()[0]

    def athlete(self, athlete_id: int) -> dict | None:
        return self._one("SELECT * FROM athletes WHERE id = ?", athlete_id)

    def athletes(self) -> list[dict]:
        return self._all("""
            SELECT a.id, a.name, COUNT(c.id) AS clips, MAX(c.session_date) AS last_session,
                   SUM(c.status IN ('queued', 'running')) AS pending
            FROM athletes a LEFT JOIN clips c ON c.athlete_id = a.id AND c.deleted = 0
            GROUP BY a.id ORDER BY a.name COLLATE NOCASE""")

    # -- clips ---------------------------------------------------------------
    def add_clip(self, clip_id: str, athlete_id: int, display_name: str, stored_name: str,
                 sha256: str, size_bytes: int, duration_s: float | None, session_date: str) -> str:
        """File a new clip; the id of the clip now holding this upload.

        The same file (by SHA-256) uploaded again for the same athlete while an
        earlier copy is queued, running or done is not filed twice: the earlier
        clip's id comes back (a double click, two tabs, a coach re-sending a
        folder). A copy whose analysis failed does not count: uploading it again
        is how a coach retries.
        """
        with self._lock:
            row = self._db.execute("""SELECT id FROM clips WHERE athlete_id = ? AND sha256 = ? AND deleted = 0
                                      AND status != 'failed' ORDER BY uploaded_at LIMIT 1""",
                                   (athlete_id, sha256)).fetchone()
            if row is not None:
                return row["id"]
            self._db.execute("""INSERT INTO clips(id, athlete_id, display_name, stored_name, sha256, size_bytes,
                                duration_s, session_date, uploaded_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)""",
                             (clip_id, athlete_id, display_name, stored_name, sha256, size_bytes, duration_s,
                              session_date, now()))
            return clip_id

    def clip(self, clip_id: str) -> dict | None:
        return self._one("""SELECT c.*, a.name AS athlete FROM clips c JOIN athletes a ON a.id = c.athlete_id
                            WHERE c.id = ? AND c.deleted = 0""", clip_id)

    def clips(self, athlete_id: int | None = None, limit: int = 1000) -> list[dict]:
        where = "c.deleted = 0" + (" AND c.athlete_id = ?" if athlete_id is not None else "")
        args = (athlete_id,) if athlete_id is not None else ()
        return self._all(f"""SELECT c.*, a.name AS athlete FROM clips c JOIN athletes a ON a.id = c.athlete_id
                             WHERE {where} ORDER BY c.session_date DESC, c.uploaded_at DESC LIMIT {int(limit)}""",
                         *args)

    def requeue_unfinished(self) -> int:
        """At start-up: jobs that were queued or running when the server stopped run again."""
        return self._run("""UPDATE clips SET status = 'queued', stage = NULL, progress = 0
                            WHERE status IN ('queued', 'running') AND deleted = 0""")

    def next_queued(self, exclude: set[str]) -> dict | None:
        for row in self._all("""SELECT * FROM clips WHERE status = 'queued' AND deleted = 0
                                ORDER BY uploaded_at, rowid LIMIT 50"""):
            if row["id"] not in exclude:
                return row
        return None

    def start(self, clip_id: str) -> None:
        self._run("UPDATE clips SET status = 'running', stage = 'starting', progress = 0, started_at = ?, "
                  "error = NULL WHERE id = ?", now(), clip_id)

    def progress(self, clip_id: str, stage: str, fraction: float) -> None:
        self._run("UPDATE clips SET stage = ?, progress = ? WHERE id = ? AND status = 'running'",
                  stage, max(0.0, min(fraction, 1.0)), clip_id)

    def finish(self, clip_id: str, summary: dict) -> None:
        self._run("""UPDATE clips SET status = 'done', stage = NULL, progress = 1, summary = ?,
                     finished_at = ? WHERE id = ?""", json.dumps(summary), now(), clip_id)

    def fail(self, clip_id: str, error: str) -> None:
        self._run("""UPDATE clips SET status = 'failed', stage = NULL, error = ?, finished_at = ?
                     WHERE id = ?""", error, now(), clip_id)

    def is_deleted(self, clip_id: str) -> bool:
        row = self._one("SELECT deleted FROM clips WHERE id = ?", clip_id)
        return row is None or bool(row["deleted"])

    def mark_deleted(self, clip_id: str) -> None:
        self._run("UPDATE clips SET deleted = 1 WHERE id = ?", clip_id)

    def deleted_ids(self) -> list[str]:
        """Clips deleted while their analysis ran (their files go when it ends, or at start-up)."""
        return [r["id"] for r in self._all("SELECT id FROM clips WHERE deleted = 1")]

    def remove(self, clip_id: str) -> None:
        self._run("DELETE FROM clips WHERE id = ?", clip_id)


def _row(r: sqlite3.Row) -> dict:
    d = dict(r)
    if "summary" in d:
        d["summary"] = json.loads(d["summary"]) if d["summary"] else {}
    return d
