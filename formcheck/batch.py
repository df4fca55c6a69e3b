"""Many clips at once: analyse them in parallel processes, one folder per clip.

``run_batch(inputs, out_dir)`` finds the clips (folders, files, globs), and
for each writes ``out_dir/<stem>-<hash>/`` with ``annotated.mp4``,
``analysis.json``, ``reps.csv``, ``report.html``, ``snapshots/`` and
``done.json`` (the clip's sha256 and its summary), plus ``out_dir/summary.csv``
across clips. A clip is written into a hidden ``.partial-*`` folder and renamed
into place when complete, so an interruption (Ctrl-C) leaves finished clips
and nothing half-written; a rerun skips clips whose ``done.json`` matches the
file's content and the settings. A failing clip is recorded and the others
go on.

Clips run in a "spawn" process pool (MediaPipe's threads do not survive
fork), each worker in its own process group: Ctrl-C reaches only the parent,
which then stops the workers and their children. :class:`ClipPool` and
:func:`process_clip` are what the web app's job runner uses too.
"""

from __future__ import annotations

import concurrent.futures as cf
import csv
import glob
import hashlib
import json
import multiprocessing as mp
import os
import queue
import re
import shutil
import signal
import tempfile
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from formcheck.errors import FormcheckError, InputError, OutputError
from formcheck.fsutil import folder_problem, usual_mode
from formcheck.landmark_io import atomic_output

VIDEO_SUFFIXES = (".mp4", ".mov", ".m4v", ".webm", ".mkv", ".avi")
OUTPUTS = ("annotated.mp4", "analysis.json", "reps.csv", "report.html")
DONE_FILE = "done.json"
PARTIAL_PREFIX = ".partial-"
SUMMARY_COLUMNS = ["clip", "status", "error", "exercise", "view", "reps_left", "reps_right",
                   "reps_both", "fppa_worst_left_deg", "fppa_worst_right_deg", "fppa_worst_both_deg",
                   "trunk_worst_left_deg", "trunk_worst_right_deg", "trunk_worst_both_deg",
                   "trunk_estimate_left", "trunk_estimate_right", "trunk_estimate_both",
                   "faults", "folder", "reused", "source"]
_EVENT_EVERY_S = 0.25  # frame progress is sent from the workers at most this often
_ORPHAN_GRACE_S = 5.0  # a worker whose parent died exits this long after noticing

Event = Callable[[str, object], None]  # (kind, value): ("total", n), ("stage", name), ("frames", n)


@dataclass(frozen=True)
class ClipResult:
    path: Path
    status: str  # "ok", "failed" or "interrupted"
    folder: Path | None
    error: str | None = None
    reused: bool = False  # done by an earlier run (same content and settings): skipped
    summary: dict = field(default_factory=dict)  # see clip_summary()

    def row(self) -> dict:
        row = {k: self.summary.get(k, "") for k in SUMMARY_COLUMNS}
        row.update(clip=self.path.name, status=self.status, error=self.error or "",
                   folder=self.folder.name if self.folder and self.status == "ok" else "",
                   reused="yes" if self.reused else "no", source=str(self.path))
        return {k: "" if v is None else v for k, v in row.items()}


@dataclass
class BatchResult:
    out_dir: Path
    clips: list[ClipResult]
    summary_csv: Path

    @property
    def ok(self) -> list[ClipResult]:
        return [c for c in self.clips if c.status == "ok"]

    @property
    def failed(self) -> list[ClipResult]:
        return [c for c in self.clips if c.status != "ok"]


@dataclass(frozen=True)
class BatchProgress:
    """One update for the progress display: a clip's state and the batch's count."""

    clip: str  # the input's file name
    state: str  # reused, queued, analysing, rendering, writing, ok, failed, interrupted
    done: int = 0  # frames processed for this clip (analysis, then rendering)
    total: int | None = None  # frames to process (2 x the frame count), None if unknown
    error: str | None = None
    clips_done: int = 0
    clips_total: int = 0


def _no_progress(_: BatchProgress) -> None:
    return None


# -- one clip ------------------------------------------------------------------------
def file_sha256(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def settings_key(settings) -> str:
    """A short fingerprint of the settings (results differ when they do)."""
    from formcheck.settings import Settings

    text = json.dumps((settings or Settings()).to_dict(), sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def clip_folder_name(path: Path, sha256: str) -> str:
    """``<stem>-<first 10 hex of sha256>``, the stem reduced to safe characters."""
    stem = re.sub(r"[^A-Za-z0-9._-]+", "_", Path(path).stem).strip("._") or "clip"
    return f"{stem[:60]}-{sha256[:10]}"


def clip_summary(a) -> dict:
    """The per-clip numbers of summary.csv (and of the web app's library)."""
    out = {"exercise": a.exercise.value, "view": a.view.value, "rep_count": len(a.full_reps),
           "faults": sum(s.faults for s in a.sides.values()),
           "duration_s": None if a.info is None else a.info.duration_s}
    for side in ("left", "right", "both"):
        s = next((v for k, v in a.sides.items() if k.value == side), None)
        out[f"reps_{side}"] = s.reps if s else 0
        for key in ("fppa_worst", "fppa_mean", "trunk_mean", "trunk_worst"):
            value = getattr(s, f"{key}_deg") if s else None
            out[f"{key}_{side}_deg"] = None if value is None else round(float(value), 1)
        out[f"trunk_estimate_{side}"] = bool(s and s.trunk_estimate)
    return out


def read_done(folder: Path, sha256: str, settings=None) -> dict | None:
    """The clip's ``done.json`` if the folder is complete for this content and settings."""
    try:
        done = json.loads((Path(folder) / DONE_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if done.get("sha256") != sha256 or done.get("settings") != settings_key(settings):
        return None
    if not all((Path(folder) / name).is_file() for name in OUTPUTS):
        return None
    return done


def remove_partials(folder: Path) -> None:
    """Delete the temporary folders an interrupted run left for ``folder``."""
    for stale in Path(folder).parent.glob(f"{PARTIAL_PREFIX}{folder.name}-*"):
        shutil.rmtree(stale, ignore_errors=True)


def process_clip(src: str | Path, folder: str | Path, *, settings=None, workers: int = 1,
                 sha256: str | None = None, title: str | None = None, embed_video: bool = True,
                 event: Event = lambda kind, value: None) -> dict:
    """Analyse ``src`` and write its complete ``folder`` (replacing an old one). Returns done.json.

    Written into ``.partial-<name>-*`` beside ``folder`` and renamed at the
    end: on any error or interruption nothing is left behind. Raises the
    analysis' :class:`FormcheckError` (not a video, no person, ...).
    """
    from formcheck.analysis import analyze
    from formcheck.htmlreport import write_report
    from formcheck.render import render_annotated, save_snapshots
    from formcheck.report import write_csv, write_json
    from formcheck.video import probe

    src, folder = Path(src), Path(folder)
    sha256 = sha256 or file_sha256(src)
    remove_partials(folder)
    tmp = Path(tempfile.mkdtemp(prefix=f"{PARTIAL_PREFIX}{folder.name}-", dir=folder.parent))
    try:
        info = probe(src)
        event("total", 2 * info.frame_count if info.frame_count else None)
        event("stage", "analysing")
        analysis = analyze(src, settings=settings, workers=workers, progress=lambda n: event("frames", n))
        # the shared files name the clip, not where it was read from (a server's storage path)
        analysis.source = title or src.name
        event("stage", "rendering")
        write_json(analysis, tmp / "analysis.json")
        write_csv(analysis, tmp / "reps.csv")
        render_annotated(analysis, src, tmp / "annotated.mp4", progress=lambda n: event("frames", n),
                         workers=workers)
        event("stage", "writing")
        snapshots = save_snapshots(analysis, src, tmp / "snapshots")
        write_report(analysis, tmp / "report.html", video_rel_path="annotated.mp4", snapshots=snapshots,
                     title=title or src.name, embed_video=embed_video)
        done = {"sha256": sha256, "settings": settings_key(settings), "source": str(src),
                "finished_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "summary": clip_summary(analysis)}
        with atomic_output(tmp / DONE_FILE) as f:
            json.dump(done, f, indent=2)
        for path in [tmp, *tmp.rglob("*")]:
            os.chmod(path, usual_mode(folder=path.is_dir()))  # mkdtemp makes them private
        if folder.exists():
            shutil.rmtree(folder)
        os.replace(tmp, folder)
        return done
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


# -- worker processes ------------------------------------------------------------------
_EVENTS = None  # the event queue, inherited by each worker process
_PARENT_PID = None


def _init_worker(events) -> None:
    global _EVENTS, _PARENT_PID
    _EVENTS, _PARENT_PID = events, os.getppid()
    if hasattr(os, "setpgid"):
        os.setpgid(0, 0)  # own process group: the parent alone gets Ctrl-C and stops us with killpg
    threading.Thread(target=_watch_parent, name="formcheck-parent-watch", daemon=True).start()


def _watch_parent() -> None:
    """Exit when the parent dies (killed, crashed): an idle pool worker would wait forever.

    A clip under way notices first (its next progress event raises SystemExit and
    removes its partial folder); after a grace period the worker's whole process
    group (its own helpers included) is stopped.
    """
    while os.getppid() == _PARENT_PID:
        time.sleep(1.0)
    time.sleep(_ORPHAN_GRACE_S)
    if hasattr(os, "killpg") and os.getpgid(0) == os.getpid():
        os.killpg(0, signal.SIGKILL)
    os._exit(1)


def _work(key: str, src: str, folder: str, kwargs: dict) -> dict:
    """Process entry point: process_clip with events sent to the parent (frames batched)."""
    pending, last = [0], [time.monotonic()]

    def event(kind: str, value: object) -> None:
        if os.getppid() != _PARENT_PID:
            raise SystemExit("the parent process is gone")  # cleans up the partial folder
        if kind == "frames":
            pending[0] += int(value)
            if time.monotonic() - last[0] < _EVENT_EVERY_S:
                return
            kind, value, pending[0], last[0] = "frames", pending[0], 0, time.monotonic()
        _EVENTS.put((key, kind, value))

    try:
        return process_clip(src, folder, event=event, **kwargs)
    finally:
        if pending[0]:
            _EVENTS.put((key, "frames", pending[0]))


class ClipPool:
    """A small spawn-context process pool running :func:`process_clip`.

    ``submit(key, src, folder, **kwargs)`` returns a Future of done.json;
    :meth:`events` drains ``(key, kind, value)`` progress events;
    :meth:`close` with ``kill=True`` stops the workers and their children.
    """

    def __init__(self, processes: int) -> None:
        ctx = mp.get_context("spawn")
        self._events = ctx.Queue()
        self._pool = cf.ProcessPoolExecutor(max(1, processes), mp_context=ctx,
                                            initializer=_init_worker, initargs=(self._events,))

    def submit(self, key: str, src: str | Path, folder: str | Path, **kwargs) -> cf.Future:
        return self._pool.submit(_work, key, str(src), str(folder), kwargs)

    def events(self) -> list[tuple[str, str, object]]:
        out = []
        while True:
            try:
                out.append(self._events.get_nowait())
            except (queue.Empty, OSError, EOFError, ValueError):
                return out

    def close(self, *, kill: bool = False) -> None:
        if kill:
            for pid in list(getattr(self._pool, "_processes", None) or {}):  # no public API for this
                try:
                    os.killpg(pid, signal.SIGTERM) if hasattr(os, "killpg") else os.kill(pid, signal.SIGTERM)
                except (ProcessLookupError, PermissionError):
                    pass
        self._pool.shutdown(wait=True, cancel_futures=True)


# -- many clips ----------------------------------------------------------------------------
def find_clips(inputs: Iterable[str | Path]) -> list[Path]:
    """Files given, video files directly inside folders given, and glob matches, in order.

    Raises :class:`InputError` for a path that does not exist, a glob matching
    nothing, or no clips at all.
    """
    found: list[Path] = []
    for item in inputs:
        p = Path(item)
        if p.is_dir():
            found += sorted(f for f in p.iterdir() if f.is_file() and not f.name.startswith(".")
                            and f.suffix.lower() in VIDEO_SUFFIXES)
        elif p.is_file():
            found.append(p)
        elif glob.has_magic(str(item)):
            matches = sorted(Path(m) for m in glob.glob(str(item), recursive=True) if Path(m).is_file())
            if not matches:
                raise InputError(f"{item}: no files match")
            found += matches
        else:
            raise InputError(f"{item}: no such file or folder")
    seen, unique = set(), []
    for f in found:
        if f.resolve() not in seen:
            seen.add(f.resolve())
            unique.append(f)
    if not unique:
        raise InputError("no video files found in " + ", ".join(str(i) for i in inputs))
    return unique


def run_batch(inputs: Iterable[str | Path], out_dir: str | Path, *, workers: int | None = None,
              settings=None, progress: Callable[[BatchProgress], None] = _no_progress,
              embed_video: bool = True) -> BatchResult:
    """Analyse every clip of ``inputs`` into ``out_dir`` (see the module docstring).

    ``workers``: cores to use (default: all). Clips run in parallel, one process
    each; with fewer clips than cores each clip gets several. Ctrl-C stops the
    workers, removes the unfinished clips' folders, writes summary.csv of what
    is done, and re-raises KeyboardInterrupt.
    """
    from formcheck.extract import default_workers

    clips = find_clips(inputs)
    out_dir = Path(out_dir)
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputError(f"cannot create folder {out_dir}: {exc.strerror or exc}") from None
    problem = folder_problem(out_dir)
    if problem:  # before any clip is started
        raise OutputError(f"cannot write results to {out_dir}: {problem}")
    for stale in out_dir.glob(f"{PARTIAL_PREFIX}*"):  # left by a run that was killed
        shutil.rmtree(stale, ignore_errors=True)
    results: dict[int, ClipResult] = {}
    todo: list[tuple[int, Path, Path, str]] = []
    folders: dict[Path, int] = {}  # folder -> index of the input analysed into it
    dupes: dict[int, int] = {}  # the same file given twice -> the first one
    total = len(clips)

    def tell(i: int, state: str, **kw) -> None:
        progress(BatchProgress(clips[i].name, state, clips_done=len(results), clips_total=total, **kw))

    for i, path in enumerate(clips):
        sha = file_sha256(path)
        folder = out_dir / clip_folder_name(path, sha)
        done = read_done(folder, sha, settings)
        if done is not None:
            results[i] = ClipResult(path, "ok", folder, reused=True, summary=done.get("summary", {}))
            tell(i, "reused")
        elif folder in folders:  # the same file twice: one analysis
            dupes[i] = folders[folder]
        else:
            folders[folder] = i
            todo.append((i, path, folder, sha))
            tell(i, "queued")
    cores = workers or default_workers()
    processes = max(1, min(cores, len(todo)))
    per_clip = max(1, cores // processes)
    kwargs = {"settings": settings, "workers": per_clip, "embed_video": embed_video}
    pool = ClipPool(processes) if todo else None
    running: dict[cf.Future, tuple[int, Path, Path, str]] = {}
    frames: dict[int, list] = {}
    try:
        while todo or running:
            while todo and len(running) < processes:
                job = todo.pop(0)
                running[pool.submit(str(job[0]), job[1], job[2], sha256=job[3], **kwargs)] = job
                frames[job[0]] = [0, None, "starting"]
            finished, _ = cf.wait(running, timeout=0.2, return_when=cf.FIRST_COMPLETED)
            for key, kind, value in pool.events():
                i = int(key)
                state = frames.setdefault(i, [0, None, "analysing"])
                if kind == "total":
                    state[1] = value
                elif kind == "stage":
                    state[2] = value
                else:
                    state[0] += int(value)
                tell(i, state[2], done=state[0], total=state[1])
            broken = False
            for fut in finished:
                i, path, folder, _ = running.pop(fut)
                try:
                    done = fut.result()
                    results[i] = ClipResult(path, "ok", folder, summary=done["summary"])
                    tell(i, "ok", done=frames[i][1] or frames[i][0], total=frames[i][1])
                except cf.process.BrokenProcessPool:
                    broken = True
                    results[i] = ClipResult(path, "failed", None, error="the analysis process stopped "
                                            "unexpectedly (out of memory?); run again to retry")
                    tell(i, "failed", error=results[i].error)
                except FormcheckError as exc:
                    results[i] = ClipResult(path, "failed", None, error=str(exc))
                    tell(i, "failed", error=str(exc))
                except Exception as exc:  # a bug: record it, go on with the other clips
                    results[i] = ClipResult(path, "failed", None, error=f"{type(exc).__name__}: {exc}")
                    tell(i, "failed", error=results[i].error)
            if broken:  # every clip in flight failed with it; go on in a fresh pool
                pool.close(kill=True)
                pool = ClipPool(processes)
    except KeyboardInterrupt:
        if pool is not None:
            pool.close(kill=True)
            pool = None
        for i, path, folder, _ in list(running.values()) + todo:
            remove_partials(folder)
            results[i] = ClipResult(path, "interrupted", None, error="interrupted; run again to resume")
        _write_summary(out_dir, clips, results, dupes)
        raise
    finally:
        if pool is not None:
            pool.close()
    return BatchResult(out_dir, *_write_summary(out_dir, clips, results, dupes))


def _write_summary(out_dir: Path, clips: list[Path], results: dict[int, ClipResult],
                   dupes: dict[int, int]) -> tuple[list[ClipResult], Path]:
    ordered = []
    for i, path in enumerate(clips):
        r = results.get(i) or results.get(dupes.get(i, -1))
        if r is None:
            r = ClipResult(path, "interrupted", None, error="not run")
        elif r.path is not path:  # the same file given twice: shares the first one's result
            r = ClipResult(path, r.status, r.folder, r.error, r.reused, r.summary)
        ordered.append(r)
    target = out_dir / "summary.csv"
    with atomic_output(target) as f:
        writer = csv.DictWriter(f, fieldnames=SUMMARY_COLUMNS)
        writer.writeheader()
        writer.writerows(r.row() for r in ordered)
    return ordered, target


class LineBatchProgress:
    """Progress for a log or a pipe: one line per clip that ends (``[3/10] ok clip.mp4``)."""

    def __init__(self, stream) -> None:
        self.stream = stream

    def __call__(self, ev: BatchProgress) -> None:
        if ev.state in ("ok", "failed", "reused", "interrupted"):
            extra = f": {ev.error}" if ev.error else ""
            print(f"[{ev.clips_done}/{ev.clips_total}] {ev.state} {ev.clip}{extra}", file=self.stream,
                  flush=True)


class RichBatchProgress:
    """A rich display for :func:`run_batch`: one bar for the clips, one per clip under way.

    ``with RichBatchProgress(console) as progress: run_batch(..., progress=progress)``
    """

    def __init__(self, console) -> None:
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        self.console = console
        self._progress = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                                  TimeElapsedColumn(), console=console, transient=True)
        self._clips = self._progress.add_task("clips", total=None)
        self._tasks: dict[str, int] = {}

    def __enter__(self) -> RichBatchProgress:
        self._progress.__enter__()
        return self

    def __exit__(self, *exc) -> None:
        self._progress.__exit__(*exc)

    def __call__(self, ev: BatchProgress) -> None:
        p = self._progress
        p.update(self._clips, total=ev.clips_total, completed=ev.clips_done)
        if ev.state in ("ok", "failed", "reused", "interrupted"):
            task = self._tasks.pop(ev.clip, None)
            if task is not None:
                p.remove_task(task)
            colour = {"ok": "green", "reused": "bright_black"}.get(ev.state, "red")
            extra = f": {ev.error}" if ev.error else ""
            p.console.print(f"[{colour}]{ev.state}[/] {ev.clip}{extra}", highlight=False, soft_wrap=True)
            return
        if ev.state == "queued":
            return
        task = self._tasks.get(ev.clip)
        if task is None:
            task = self._tasks[ev.clip] = p.add_task("", total=None)
        p.update(task, description=f"  {ev.clip} ({ev.state})", completed=ev.done, total=ev.total)
