"""The job runner: a background thread feeding a small process pool.

Each queued clip is analysed by :func:`formcheck.batch.process_clip` in a
worker process (the server stays responsive), into ``clips/<id>/result``.
Progress events from the worker update the clip's row; at start-up clips
that were queued or running when the server stopped are queued again.
"""

from __future__ import annotations

import concurrent.futures as cf
import logging
import shutil
import threading
import time
from pathlib import Path

from formcheck.batch import ClipPool
from formcheck.errors import FormcheckError
from formcheck.web.db import Database

log = logging.getLogger(__name__)

RESULT_DIR = "result"
_PROGRESS_EVERY_S = 0.5  # progress is written to the database at most this often per clip


class JobRunner:
    def __init__(self, db: Database, clips_dir: Path, *, processes: int = 1,
                 clip_workers: int | None = None, settings=None) -> None:
        from formcheck.extract import default_workers

        self.db, self.clips_dir = db, Path(clips_dir)
        self.processes = max(1, processes)
        self.clip_workers = clip_workers or max(1, default_workers() // self.processes)
        self.settings = settings
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        for clip_id in self.db.deleted_ids():  # deleted mid-analysis, then the server was killed
            shutil.rmtree(self.clips_dir / clip_id, ignore_errors=True)
            self.db.remove(clip_id)
        requeued = self.db.requeue_unfinished()
        if requeued:
            log.info("resuming %d unfinished analyses", requeued)
        self._thread = threading.Thread(target=self._loop, name="formcheck-jobs", daemon=True)
        self._thread.start()

    def wake(self) -> None:
        self._wake.set()

    def stop(self) -> None:
        """Stop now: running analyses are killed and stay 'running' (queued again at start-up)."""
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=30)

    def _loop(self) -> None:
        pool: ClipPool | None = None
        running: dict[cf.Future, str] = {}
        state: dict[str, list] = {}  # clip id -> [frames done, total, stage, last write]
        try:
            while not self._stop.is_set():
                while len(running) < self.processes:
                    clip = self.db.next_queued(set(running.values()))
                    if clip is None:
                        break
                    pool = pool or ClipPool(self.processes)
                    running[self._submit(pool, clip)] = clip["id"]
                    state[clip["id"]] = [0, None, "starting", 0.0]
                if not running:
                    self._wake.wait(timeout=1.0)
                    self._wake.clear()
                    continue
                finished, _ = cf.wait(running, timeout=0.25, return_when=cf.FIRST_COMPLETED)
                self._progress(pool, state)
                broken = False
                for fut in finished:
                    broken |= self._finish(fut, running.pop(fut))
                if broken and pool is not None:
                    pool.close(kill=True)
                    pool = None
        except Exception:  # never let the thread die silently
            log.exception("the job runner stopped")
        finally:
            if pool is not None:
                pool.close(kill=True)

    def _submit(self, pool: ClipPool, clip: dict) -> cf.Future:
        self.db.start(clip["id"])
        folder = self.clips_dir / clip["id"]
        return pool.submit(clip["id"], folder / clip["stored_name"], folder / RESULT_DIR,
                           sha256=clip["sha256"], settings=self.settings, workers=self.clip_workers,
                           title=clip["display_name"], embed_video=False)

    def _progress(self, pool: ClipPool | None, state: dict[str, list]) -> None:
        if pool is None:
            return
        touched = set()
        for clip_id, kind, value in pool.events():
            s = state.setdefault(clip_id, [0, None, "analysing", 0.0])
            if kind == "total":
                s[1] = value
            elif kind == "stage":
                s[2] = value
            else:
                s[0] += int(value)
            touched.add(clip_id)
        for clip_id in touched:
            s = state[clip_id]
            if time.monotonic() - s[3] >= _PROGRESS_EVERY_S:
                s[3] = time.monotonic()
                self.db.progress(clip_id, s[2], s[0] / s[1] if s[1] else 0.0)

    def _finish(self, fut: cf.Future, clip_id: str) -> bool:
        """Record a finished job; True if the pool broke (a worker died)."""
        broken = False
        try:
            done = fut.result()
            self.db.finish(clip_id, done["summary"])
        except cf.process.BrokenProcessPool:
            broken = True
            if not self._stop.is_set():
                self.db.fail(clip_id, "the analysis process stopped unexpectedly (out of memory?)")
        except cf.CancelledError:
            return False
        except FormcheckError as exc:
            self.db.fail(clip_id, _without_paths(str(exc), self.clips_dir / clip_id))
        except Exception as exc:  # a bug: keep serving, say what happened
            log.exception("analysis of clip %s failed", clip_id)
            self.db.fail(clip_id, f"internal error ({type(exc).__name__}); see the server log")
        if self.db.is_deleted(clip_id):
            shutil.rmtree(self.clips_dir / clip_id, ignore_errors=True)
            self.db.remove(clip_id)
        return broken


def _without_paths(message: str, folder: Path) -> str:
    """An error message without the server's paths (``/data/clips/<id>/source.mp4: ...``)."""
    for prefix in sorted({str(p) for p in [folder, *folder.glob("*")]}, key=len, reverse=True):
        message = message.replace(prefix, "the clip")
    return message
