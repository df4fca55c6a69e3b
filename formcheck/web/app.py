"""The coaches' web app: upload clips per athlete, watch the analyses, browse reports.

``create_app(data_dir)`` builds the FastAPI app (SQLite library and job
runner in ``data_dir``); ``serve()`` runs it with uvicorn on localhost. With a
token every request needs it (``Authorization: Bearer <token>``, or the
``formcheck_token`` cookie that visiting ``/?token=<token>`` sets).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import errno
import hashlib
import hmac
import ipaddress
import os
import re
import secrets
import shutil
import socket
import sqlite3
import unicodedata
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile
from starlette.formparsers import MultiPartException, MultiPartParser

from formcheck.errors import FormcheckError, InputError, OutputError, SettingsError
from formcheck.fsutil import folder_problem
from formcheck.landmark_io import atomic_output
from formcheck.web import views
from formcheck.web.db import Database
from formcheck.web.jobs import RESULT_DIR, JobRunner

HERE = Path(__file__).parent
COOKIE = "formcheck_token"
CLIP_ID = re.compile(r"^[0-9a-f]{16}$")
MAX_FILES = 50  # clips in one upload
MIN_DURATION_S = 0.5  # shorter "videos" (a still image FFmpeg opens) are refused
SUFFIXES = {".mp4", ".mov", ".m4v", ".webm", ".mkv", ".avi"}
DOWNLOADS = {"analysis.json": "application/json", "reps.csv": "text/csv", "report.html": "text/html",
             "annotated.mp4": "video/mp4", "report.zip": "application/zip"}
# What the shareable report.zip holds: the report refers to the video beside it.
ZIP_MEMBERS = ("report.html", "annotated.mp4", "analysis.json", "reps.csv")
LOOPBACK_HOSTS = {"localhost", "127.0.0.1", "::1"}


class Refused(Exception):
    """An upload we do not accept; the message is shown in the page."""


class _TooLarge(Exception):
    pass


def is_loopback(host: str) -> bool:
    if host.strip("[]").lower() in LOOPBACK_HOSTS:
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def create_app(data_dir: str | os.PathLike[str], *, token: str | None = None, max_upload_mb: float = 500,
               max_duration_s: float = 600, processes: int = 1, clip_workers: int | None = None,
               settings=None) -> FastAPI:
    """The app over ``data_dir`` (created if missing): ``library.sqlite3`` and ``clips/<id>/``.

    ``max_upload_mb``: one upload (all its files); ``max_duration_s``: per clip;
    ``processes``: analyses at once; ``clip_workers``: processes per analysis.
    """
    data = Path(data_dir)
    clips_dir = data / "clips"
    incoming = data / "incoming"
    try:
        for d in (clips_dir, incoming):
            d.mkdir(parents=True, exist_ok=True)
        problem = folder_problem(data)
        if problem:
            raise OutputError(f"cannot keep the library in {data}: {problem}")
        db = Database(data / "library.sqlite3")
    except (OSError, sqlite3.Error) as exc:
        raise OutputError(f"cannot keep the library in {data}: "
                          f"{getattr(exc, 'strerror', None) or exc}") from None
    runner = JobRunner(db, clips_dir, processes=processes, clip_workers=clip_workers, settings=settings)
    limits = {"max_upload_mb": max_upload_mb, "max_duration_s": max_duration_s}
    max_bytes = int(max_upload_mb * 1024 * 1024)

    @contextlib.asynccontextmanager
    async def lifespan(_app):
        for stale in incoming.iterdir():  # half-received uploads of a previous run
            shutil.rmtree(stale, ignore_errors=True) if stale.is_dir() else stale.unlink(missing_ok=True)
        runner.start()
        yield
        runner.stop()
        db.close()

    app = FastAPI(title="formcheck", lifespan=lifespan, docs_url=None, redoc_url=None, openapi_url=None)
    app.state.db, app.state.runner = db, runner
    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")
    page = views.Pages(limits)

    @app.middleware("http")
    async def guard(request: Request, call_next):
        if token is None and not is_loopback(_host_name(request.headers.get("host", ""))):  # DNS rebinding: only localhost names
            return Response("this server only answers to localhost", status_code=403)
        if token is not None:
            given = request.query_params.get("token")
            if given is not None and hmac.compare_digest(given.encode(), token.encode()):
                target = request.url.remove_query_params("token")
                resp = RedirectResponse(str(target.path) + (f"?{target.query}" if target.query else ""), 303)
                resp.set_cookie(COOKIE, token, httponly=True, samesite="strict")
                return resp
            auth = request.headers.get("authorization", "")
            supplied = auth[7:] if auth.lower().startswith("bearer ") else request.cookies.get(COOKIE, "")
            if not hmac.compare_digest(supplied.encode(), token.encode()):
                return page.message(401, "Token needed",
                                    "This formcheck server needs its access token: open the link "
                                    "with ?token=... that the server printed, or send "
                                    "'Authorization: Bearer <token>'.")
        if request.method not in ("GET", "HEAD"):
            origin = request.headers.get("origin")
            if origin and origin != "null" and origin.split("://", 1)[-1] != request.headers.get("host"):
                return page.message(403, "Refused", "A form from another site cannot change this library.")
        return await call_next(request)

    # -- pages ------------------------------------------------------------------------
    @app.get("/", response_class=HTMLResponse)
    def index():
        return page.index(db.athletes(), db.clips(limit=20))

    @app.get("/athletes/{athlete_id}", response_class=HTMLResponse)
    def athlete(athlete_id: int):
        a = db.athlete(athlete_id)
        if a is None:
            return page.message(404, "Not found", "No such athlete.")
        return page.athlete(a, db.clips(athlete_id), db.athletes())

    @app.get("/clips/{clip_id}")
    def clip_redirect(clip_id: str):
        return RedirectResponse(f"/clips/{clip_id}/", 308) if CLIP_ID.match(clip_id) else \
            page.message(404, "Not found", "No such clip.")

    @app.get("/clips/{clip_id}/", response_class=HTMLResponse)
    def clip_page(clip_id: str):
        clip = _clip(clip_id)
        if clip is None:
            return page.message(404, "Not found", "No such clip (deleted?).")
        report = clips_dir / clip_id / RESULT_DIR / "report.html"
        if clip["status"] == "done" and report.is_file():
            return page.report(clip, report.read_text(encoding="utf-8"))
        return page.clip_status(clip)

    @app.get("/clips/{clip_id}/annotated.mp4")
    def video(clip_id: str):
        clip = _clip(clip_id)
        path = clips_dir / clip_id / RESULT_DIR / "annotated.mp4"
        if clip is None or not path.is_file():
            return Response("no annotated video", status_code=404)
        return FileResponse(path, media_type="video/mp4")  # Starlette answers Range requests (206)

    @app.get("/clips/{clip_id}/files/{name}")
    def download(clip_id: str, name: str):
        clip = _clip(clip_id)
        path = clips_dir / clip_id / RESULT_DIR / name
        if clip is not None and name == "report.zip" and clip["status"] == "done":
            path = _report_zip(path.parent)
        if clip is None or name not in DOWNLOADS or not path.is_file():
            return Response("not found", status_code=404)
        stem = re.sub(r"[^A-Za-z0-9._-]+", "_", Path(clip["display_name"]).stem)[:60] or "clip"
        return FileResponse(path, media_type=DOWNLOADS[name], filename=f"{stem}-{name}")

    @app.post("/clips/{clip_id}/delete")
    def delete(clip_id: str):
        clip = _clip(clip_id)
        if clip is None:
            return page.message(404, "Not found", "No such clip.")
        if clip["status"] == "running":
            db.mark_deleted(clip_id)  # the job runner removes it when the analysis ends
        else:
            db.remove(clip_id)
            shutil.rmtree(clips_dir / clip_id, ignore_errors=True)
        return RedirectResponse(f"/athletes/{clip['athlete_id']}", 303)

    @app.get("/api/clips/{clip_id}")
    def clip_status(clip_id: str):
        clip = _clip(clip_id)
        if clip is None:
            return JSONResponse({"error": "no such clip"}, status_code=404)
        return views.status_json(clip)

    @app.get("/api/clips")
    def clip_list(athlete_id: int | None = None):
        return [views.status_json(c) for c in db.clips(athlete_id)]

    @app.get("/healthz")
    def health():
        return {"ok": True}

    # -- uploads ----------------------------------------------------------------------
    @app.post("/upload", response_class=HTMLResponse)
    async def upload(request: Request):
        length = request.headers.get("content-length")
        if length and length.isdigit() and int(length) > max_bytes + 64 * 1024:
            return page.upload_result(413, [], [("upload", _too_large(max_upload_mb))])
        if not request.headers.get("content-type", "").startswith("multipart/form-data"):
            return page.upload_result(400, [], [("upload", "send the clips as a multipart/form-data form")])
        try:
            form = await MultiPartParser(request.headers, _limited(request.stream(), max_bytes + 64 * 1024),
                                         max_files=MAX_FILES, max_fields=20).parse()
        except _TooLarge:
            return page.upload_result(413, [], [("upload", _too_large(max_upload_mb))])
        except MultiPartException as exc:
            return page.upload_result(400, [], [("upload", str(exc))])
        try:
            files = [f for f in form.getlist("files") if isinstance(f, UploadFile) and f.filename]
            name = athlete_name(str(form.get("athlete") or ""))
            session = session_date(str(form.get("date") or ""))
            if not files:
                raise Refused("choose one or more video files")
        except Refused as exc:
            return page.upload_result(400, [], [("upload", str(exc))])
        athlete_id = db.athlete_id(name)
        accepted, refused, duplicates = [], [], set()
        for f in files:
            shown = display_name(f.filename)
            try:
                filed = await run_in_threadpool(_store, f, shown, athlete_id, session, duplicates)
                if filed not in accepted:
                    accepted.append(filed)
            except Refused as exc:
                refused.append((shown, str(exc)))
            finally:
                await f.close()
        if accepted:
            runner.wake()
        return page.upload_result(200 if accepted else 400, [db.clip(c) for c in accepted], refused,
                                  athlete_id=athlete_id, duplicates=duplicates)

    def _store(f: UploadFile, shown: str, athlete_id: int, session: str, duplicates: set[str]) -> str:
        """Copy, check and file one upload; the id of the clip holding it. Raises Refused with the reason.

        An upload the athlete's library already holds is not kept twice: the
        earlier clip's id is returned and added to ``duplicates``.
        """
        from formcheck.video import probe

        clip_id = secrets.token_hex(8)
        work = incoming / clip_id
        work.mkdir()
        suffix = Path(shown).suffix.lower()
        stored = "source" + (suffix if suffix in SUFFIXES else ".video")
        try:
            sha, size = hashlib.sha256(), 0
            with open(work / stored, "wb") as out:
                while block := f.file.read(1 << 20):
                    size += len(block)
                    if size > max_bytes:
                        raise Refused(_too_large(max_upload_mb))
                    sha.update(block)
                    out.write(block)
            try:
                info = probe(work / stored)
            except InputError as exc:
                reason = str(exc).split(": ", 1)[-1]
                raise Refused(reason) from None  # e.g. "not a video file FFmpeg can read (...)"
            if info.duration_s is not None and info.duration_s > max_duration_s:
                raise Refused(f"the clip is {_duration(info.duration_s)} long; the limit is "
                              f"{_duration(max_duration_s)} (film one set per clip)")
            if (info.duration_s or 0) < MIN_DURATION_S and (info.frame_count or 0) < 15:
                raise Refused("not a video (a still image or a clip shorter than half a second)")
            os.replace(work, clips_dir / clip_id)
        except BaseException:
            shutil.rmtree(work, ignore_errors=True)
            raise
        filed = db.add_clip(clip_id, athlete_id, shown, stored, sha.hexdigest(), size, info.duration_s, session)
        if filed != clip_id:  # the same file is already in this athlete's library
            shutil.rmtree(clips_dir / clip_id, ignore_errors=True)
            duplicates.add(filed)
        return filed

    def _clip(clip_id: str) -> dict | None:
        return db.clip(clip_id) if CLIP_ID.match(clip_id) else None

    return app


def _report_zip(result: Path) -> Path:
    """``result/report.zip`` (made once, atomically): the report with its video beside it,
    so that the shared report plays its video when unzipped anywhere."""
    import zipfile

    out = result / "report.zip"
    if not out.is_file():
        with atomic_output(out, "wb") as f, zipfile.ZipFile(f, "w") as z:
            for name in ZIP_MEMBERS:
                if (result / name).is_file():  # mp4 is compressed already: stored as is
                    z.write(result / name, name, zipfile.ZIP_STORED if name.endswith(".mp4")
                            else zipfile.ZIP_DEFLATED)
    return out


def _host_name(header: str) -> str:
    """``example.org`` of ``example.org:8000``; ``::1`` of ``[::1]:8000``."""
    if header.startswith("["):
        return header[1:].split("]", 1)[0]
    return header.rsplit(":", 1)[0]


async def _limited(stream, limit: int):
    total = 0
    async for chunk in stream:
        total += len(chunk)
        if total > limit:
            raise _TooLarge
        yield chunk


def _duration(seconds: float) -> str:
    return f"{seconds:.0f} s" if seconds < 120 else f"{seconds / 60:.1f} min".replace(".0 min", " min")


def _too_large(limit_mb: float) -> str:
    return f"too large: the limit is {limit_mb:g} MB per upload"


def athlete_name(text: str) -> str:
    name = " ".join("".join(ch for ch in text if unicodedata.category(ch)[0] != "C").split())
    if not name:
        raise Refused("type the athlete's name (or pick one)")
    if len(name) > 80:
        raise Refused("the athlete's name is too long (80 characters at most)")
    return name


def session_date(text: str) -> str:
    if not text.strip():
        return dt.date.today().isoformat()
    try:
        return dt.date.fromisoformat(text.strip()).isoformat()
    except ValueError:
        raise Refused(f"not a date: {text[:20]!r} (use YYYY-MM-DD)") from None


def display_name(filename: str) -> str:
    """The client's file name for display only: no folders, no control characters."""
    base = filename.replace("\\", "/").rsplit("/", 1)[-1]
    base = "".join(ch for ch in base if unicodedata.category(ch)[0] != "C").strip()
    return base[:200] or "clip"


def serve(host: str = "127.0.0.1", port: int = 8000, data_dir: str | os.PathLike[str] = "formcheck-data",
          token: str | None = None, **options) -> None:
    """Run the app with uvicorn. A host other than loopback needs a token."""
    import uvicorn

    if not is_loopback(host) and not token:
        raise SettingsError(f"refusing to listen on {host} without a token: anyone on the network could "
                            "see and delete clips (add --token, or keep the default 127.0.0.1)")
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:  # bound first: a busy port is one line, before anything is created or claims to serve
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise FormcheckError(f"cannot listen on {host}:{port}: {exc.strerror or exc}"
                             + (" (another server is using it? try --port)" if exc.errno == errno.EADDRINUSE
                                else "")) from None
    try:
        app = create_app(data_dir, token=token, **options)
    except BaseException:
        sock.close()
        raise
    shown = f"[{host}]" if ":" in host else host
    print(f"formcheck: serving {Path(data_dir).resolve()} at http://{shown}:{port}/"
          + (f"?token={token}" if token else ""), flush=True)
    config = uvicorn.Config(app, log_level="warning", timeout_graceful_shutdown=3)
    uvicorn.Server(config).run(sockets=[sock])
