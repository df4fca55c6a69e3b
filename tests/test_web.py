"""The coaches' web app, served for real (uvicorn in a subprocess) and driven by Chromium."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path

import numpy as np
import pytest
from conftest import REPO, SAMPLES

DEV02 = SAMPLES / "dev02_slsR_front_fppa0-20-30.mp4"
CHROMIUM = Path("/usr/bin/chromium")
BROWSER_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                "--disable-component-update", "--no-first-run", "--disable-quic", "--disable-sync"]
ATHLETE = "Kim <b>Coach</b> & co"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """``python -m formcheck.web`` on a free localhost port, in its own session."""

    def __init__(self, data: Path, token: str | None = None, *options: str) -> None:
        self.data, self.token, self.port, self.options = data, token, _free_port(), list(options)
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen | None = None

    def start(self) -> Server:
        args = [sys.executable, "-m", "formcheck.web", "--port", str(self.port), "--data-dir", str(self.data)]
        if self.token:
            args += ["--token", self.token]
        args += self.options
        env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
        self.log = open(self.data.parent / f"server-{self.port}.log", "ab")  # noqa: SIM115 (closed in stop)
        self.proc = subprocess.Popen(args, cwd=REPO, env=env, stdout=self.log, stderr=subprocess.STDOUT,
                                     start_new_session=True)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                self.get("/healthz", timeout=1)
                return self
            except (OSError, urllib.error.HTTPError):
                assert self.proc.poll() is None, "the server exited"
                time.sleep(0.2)
        raise RuntimeError("the server did not start")

    def stop(self, *, crash: bool = False) -> None:
        if self.proc is None:
            return
        os.killpg(self.proc.pid, signal.SIGKILL if crash else signal.SIGTERM)
        self.proc.wait(timeout=30)
        self.proc = None
        self.log.close()

    def get(self, path: str, *, headers: dict | None = None, timeout: float = 10):
        headers = dict(headers or {})
        if self.token and "Authorization" not in headers:
            headers["Authorization"] = f"Bearer {self.token}"
        return urllib.request.urlopen(urllib.request.Request(self.url + path, headers=headers),
                                      timeout=timeout)

    def api(self, path: str):
        with self.get(path) as r:
            return json.loads(r.read())


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    data = tmp_path_factory.mktemp("web") / "data"
    data.mkdir()
    s = Server(data).start()
    yield s
    s.stop()


def _children(pid: int) -> list[int]:
    """Processes whose parent is ``pid`` (Linux /proc)."""
    out = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            out.append(int(stat.parent.name))
    return out


def _browser():
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed "
                                   "(pip install playwright; CI installs it with the test extra)")
    if not CHROMIUM.exists():
        pytest.skip("/usr/bin/chromium is missing (apt-get install chromium; .ci/run installs it)")
    return sync_api


def _launch(p):
    return p.chromium.launch(executable_path=str(CHROMIUM), args=BROWSER_ARGS)


def test_upload_watch_play_and_survive_restarts(server):
    sync_api = _browser()
    with sync_api.sync_playwright() as p:
        browser = _launch(p)
        page = browser.new_page()
        problems = []  # failed requests (a missing favicon, a broken link) and script errors
        page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: problems.append(str(e)))
        page.goto(server.url + "/")
        page.fill("input[name=athlete]", ATHLETE)
        page.set_input_files("#files", str(DEV02))
        assert "dev02" in page.inner_text("#chosen")
        with page.expect_request("**/upload") as request:
            page.click("#upload button[type=submit]")
        assert request.value.resource_type == "xhr"  # sent by the script, with upload progress
        page.wait_for_selector("h2:has-text('Analysing')")

        deadline = time.monotonic() + 30
        while server.api("/api/clips")[0]["status"] != "running":
            assert time.monotonic() < deadline, "the analysis did not start"
            time.sleep(0.2)
        workers = _children(server.proc.pid)  # the job runner's pool (and multiprocessing's helper)
        server.stop(crash=True)  # mid-analysis: the job must resume after the restart
        server.start()
        assert [c["status"] for c in server.api("/api/clips")] in (["queued"], ["running"])  # resumed
        page.wait_for_selector("[data-poll][data-status=done]", timeout=150_000)  # the page polls
        page.click("a.open")
        page.wait_for_selector("video")
        assert "3 reps (right leg)" in page.inner_text("main")
        assert page.locator("table.reps tbody tr").count() == 3
        assert "Kim &lt;b&gt;Coach&lt;/b&gt; &amp; co" in page.content()
        page.wait_for_function("document.querySelector('video').readyState >= 1", timeout=20_000)
        state = page.evaluate("""async () => {
            const v = document.querySelector('video');
            const before = {ready: v.readyState, duration: v.duration, error: v.error};
            v.muted = true; await v.play();
            await new Promise(r => setTimeout(r, 1200));
            return {...before, error: v.error === null ? null : v.error.code, t: v.currentTime}; }""")
        assert state["ready"] >= 1 and state["duration"] > 5 and state["error"] is None
        assert state["t"] > 0.2  # it plays
        assert workers and not [pid for pid in workers if Path(f"/proc/{pid}").exists()]  # no orphans
        clip_url = page.url

        server.stop()  # a clean stop this time
        server.start()
        problems.clear()  # the page's polling failed while the server was down: fine
        page.goto(server.url + "/")
        assert "dev02_slsR_front_fppa0-20-30.mp4" in page.inner_text("main")
        page.click(f"text={ATHLETE}")
        assert "done: 3 reps" in page.inner_text("main")
        assert page.locator("svg.plot").count() >= 2  # left vs right, FPPA per session
        page.goto(clip_url)
        assert page.locator("video").count() == 1
        page.wait_for_load_state("networkidle")
        browser.close()
    assert not problems, problems
    clip_id = clip_url.rstrip("/").rsplit("/", 1)[-1]
    with server.get(f"/clips/{clip_id}/annotated.mp4", headers={"Range": "bytes=100-199"}) as r:
        assert r.status == 206 and r.headers["Content-Range"].startswith("bytes 100-199/")
        assert len(r.read()) == 100
    # the shareable download: the report with its video beside it, as the report refers to it
    import io
    import zipfile

    with server.get(f"/clips/{clip_id}/files/report.zip") as r:
        assert r.headers["Content-Type"] == "application/zip"
        z = zipfile.ZipFile(io.BytesIO(r.read()))
    assert {"report.html", "annotated.mp4", "analysis.json", "reps.csv"} <= set(z.namelist())
    assert 'src="annotated.mp4"' in z.read("report.html").decode()
    assert "must stay in the same folder" in z.read("report.html").decode()  # the zip's own note
    with server.get(f"/clips/{clip_id}/") as r:  # ... not on the page the server plays the video on
        page = r.read().decode()
    assert "<video" in page and "must stay in the same folder" not in page
    shared = json.loads(z.read("analysis.json"))  # names the clip, never the server's storage path
    assert "/" not in shared["source"] and "clips" not in shared["source"]
    assert str(server.data) not in z.read("analysis.json").decode()
    with server.get(f"/clips/{clip_id}/annotated.mp4") as r:
        assert z.read("annotated.mp4") == r.read()


def test_a_renamed_text_file_is_refused_with_a_clear_message(server):
    sync_api = _browser()
    with sync_api.sync_playwright() as p:
        browser = _launch(p)
        page = browser.new_page()
        page.goto(server.url + "/")
        page.fill("input[name=athlete]", "Alex")
        page.set_input_files("#files", [{"name": "holiday.mp4", "mimeType": "video/mp4",
                                         "buffer": b"just some text, not a video\n" * 20}])
        with page.expect_response("**/upload") as response:
            page.click("#upload button[type=submit]")
        assert response.value.status == 400
        refused = page.inner_text("li.refused")
        browser.close()
    assert "holiday.mp4" in refused and "not a video file" in refused
    assert not any(c["display_name"] == "holiday.mp4" for c in server.api("/api/clips"))


def _tiny_video(path: Path, seconds: float = 1.0) -> bytes:
    """A few seconds of grey: a real video in which the analysis finds nobody."""
    from formcheck.video import VideoWriter

    with VideoWriter(path, 128, 128, fps_hint=30) as w:
        for k in range(round(30 * seconds)):
            w.write(np.full((128, 128, 3), 128, np.uint8), k * 1000 / 30)
    return path.read_bytes()


def _post_files(server: Server, athlete: str, files: list[tuple[str, bytes]]) -> tuple[int, str]:
    boundary = uuid.uuid4().hex
    body = b""
    for name, value in [("athlete", athlete.encode())]:
        body += (f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n').encode() + value + b"\r\n"
    for filename, data in files:
        body += (f'--{boundary}\r\nContent-Disposition: form-data; name="files"; filename="{filename}"\r\n'
                 "Content-Type: video/mp4\r\n\r\n").encode() + data + b"\r\n"
    body += f"--{boundary}--\r\n".encode()
    headers = {"Content-Type": f"multipart/form-data; boundary={boundary}"}
    if server.token:
        headers["Authorization"] = f"Bearer {server.token}"
    req = urllib.request.Request(server.url + "/upload", data=body, method="POST", headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def test_a_path_in_the_file_name_is_only_a_display_name(server, tmp_path):
    status, page = _post_files(server, "Pat", [("../../evil.mp4", _tiny_video(tmp_path / "grey.mp4"))])
    assert status == 200 and "evil.mp4" in page and "../" not in page
    clip = next(c for c in server.api("/api/clips") if c["display_name"] == "evil.mp4")
    stored = {p.name for p in (server.data / "clips" / clip["id"]).iterdir()}
    assert "source.mp4" in stored and all(n in ("source.mp4", "result") or n.startswith(".partial-result-")
                                          for n in stored)
    assert not list(server.data.parent.rglob("*evil*"))  # written nowhere under that name
    assert not (REPO / "evil.mp4").exists() and not (REPO.parent / "evil.mp4").exists()
    deadline = time.monotonic() + 150
    while server.api(f"/api/clips/{clip['id']}")["status"] not in ("done", "failed"):
        assert time.monotonic() < deadline, "the analysis did not finish"
        time.sleep(1)
    failed = server.api(f"/api/clips/{clip['id']}")
    assert failed["status"] == "failed" and "no person" in failed["error"]
    assert str(server.data) not in failed["error"]  # no server paths in messages
    req = urllib.request.Request(server.url + f"/clips/{clip['id']}/delete", method="POST")
    with urllib.request.urlopen(req, timeout=10) as r:  # follows the redirect to the athlete page
        assert r.status == 200 and "Pat" in r.read().decode()
    assert not (server.data / "clips" / clip["id"]).exists()
    with pytest.raises(urllib.error.HTTPError) as e:
        server.get(f"/api/clips/{clip['id']}")
    assert e.value.code == 404


def test_the_same_file_uploaded_twice_at_once_is_filed_once(server, tmp_path):
    from concurrent.futures import ThreadPoolExecutor

    data = _tiny_video(tmp_path / "twice.mp4", 0.8)
    with ThreadPoolExecutor(2) as pool:  # a double click, or two tabs
        answers = list(pool.map(lambda name: _post_files(server, "Dana", [(name, data)]),
                                ["twice.mp4", "twice (1).mp4"]))
    assert [status for status, _ in answers] == [200, 200]
    assert sum("already in the library" in page for _, page in answers) == 1
    mine = [c for c in server.api("/api/clips") if c["athlete"] == "Dana"]
    assert len(mine) == 1
    folders = [p for p in (server.data / "clips").iterdir() if p.is_dir()]
    assert sum((p / "source.mp4").is_file() and (p / "source.mp4").read_bytes() == data for p in folders) == 1
    status, page = _post_files(server, "Dana", [("twice.mp4", data), ("again.mp4", data)])  # in one form
    assert status == 200 and page.count("already in the library") == 1
    assert len([c for c in server.api("/api/clips") if c["athlete"] == "Dana"]) == 1


def test_requests_from_other_hosts_and_sites_are_refused(server):
    with pytest.raises(urllib.error.HTTPError) as e:  # DNS rebinding: another host name
        server.get("/api/clips", headers={"Host": "evil.example"})
    assert e.value.code == 403
    req = urllib.request.Request(server.url + "/clips/0123456789abcdef/delete", method="POST",
                                 headers={"Origin": "http://evil.example"})
    with pytest.raises(urllib.error.HTTPError) as e:
        urllib.request.urlopen(req, timeout=10)
    assert e.value.code == 403


def test_with_a_token_every_request_needs_it_and_limits_apply(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    s = Server(data, "s3cret-token", "--max-upload-mb", "0.1", "--max-duration-s", "2").start()
    try:
        status, page = _post_files(s, "Lee", [("big.mp4", DEV02.read_bytes())])  # 265 kB
        assert status == 413 and "too large: the limit is 0.1 MB per upload" in page
        status, page = _post_files(s, "Lee", [("long.mp4", _tiny_video(tmp_path / "long.mp4", 3))])
        assert status == 400 and "long.mp4" in page and "the limit is 2 s" in page
        status, _ = _post_files(s, "Lee", [("short.mp4", _tiny_video(tmp_path / "short.mp4", 1))])
        assert status == 200
        (clip,) = s.api("/api/clips")
        real = clip["id"]  # a real clip id, as if guessed: without the token it shows nothing
        for path in ("/", "/api/clips", "/static/app.css", f"/clips/{real}/", f"/api/clips/{real}",
                     f"/clips/{real}/annotated.mp4", "/clips/0123456789abcdef/annotated.mp4"):
            with pytest.raises(urllib.error.HTTPError) as e:
                urllib.request.urlopen(s.url + path, timeout=10)
            assert e.value.code == 401 and real not in e.value.read().decode()
        with pytest.raises(urllib.error.HTTPError) as e:
            s.get(f"/api/clips/{real}", headers={"Authorization": "Bearer wrong"})
        assert e.value.code == 401
        req = urllib.request.Request(s.url + f"/clips/{real}/delete", method="POST")
        with pytest.raises(urllib.error.HTTPError) as e:
            urllib.request.urlopen(req, timeout=10)
        assert e.value.code == 401 and [c["id"] for c in s.api("/api/clips")] == [real]
        opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor())
        with opener.open(s.url + "/?token=s3cret-token", timeout=10) as r:  # sets the cookie
            assert r.status == 200 and r.url == s.url + "/" and "Library" in r.read().decode()
        with opener.open(s.url + "/api/clips", timeout=10) as r:
            assert r.status == 200
    finally:
        s.stop()


def test_serve_refuses_a_public_address_without_a_token(tmp_path):
    from formcheck.errors import SettingsError
    from formcheck.web import serve

    with pytest.raises(SettingsError, match="without a token"):
        serve("0.0.0.0", 8000, tmp_path / "data")
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    r = subprocess.run([sys.executable, "-m", "formcheck.web", "--host", "0.0.0.0", "--data-dir",
                        str(tmp_path / "data")], capture_output=True, text=True, cwd=REPO, env=env,
                       timeout=60, check=False)
    assert r.returncode == 7 and len(r.stderr.strip().splitlines()) == 1 and "token" in r.stderr


def _serve_cli(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.run([sys.executable, "-m", "formcheck", "serve", *args], capture_output=True,
                          text=True, cwd=REPO, env=env, timeout=60, check=False)


def test_serve_with_an_unusable_data_folder_or_a_busy_port_is_one_line(tmp_path):
    r = _serve_cli("--data", "/sys/formcheck-data", "--port", str(_free_port()))
    assert r.returncode == 6 and "Traceback" not in r.stderr
    assert r.stderr.strip().splitlines() == [r.stderr.strip()] and "/sys/formcheck-data" in r.stderr
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        r = _serve_cli("--data", str(tmp_path / "data"), "--port", str(port))
    assert r.returncode != 0 and "Traceback" not in r.stderr and "serving" not in r.stdout
    assert len(r.stderr.strip().splitlines()) == 1 and f"127.0.0.1:{port}" in r.stderr
    assert not (tmp_path / "data").exists()  # nothing created for a server that never ran
    r = _serve_cli("--data", str(tmp_path / "data"), "--port", "99999")
    assert r.returncode == 2 and r.stderr.strip().splitlines() == [r.stderr.strip()]
    assert "--port" in r.stderr and "65535" in r.stderr and not (tmp_path / "data").exists()


def test_a_clip_deleted_mid_analysis_is_removed_when_the_server_restarts(tmp_path):
    """Deleted while running, then the server was killed: the next start removes its files."""
    from formcheck.web.db import Database
    from formcheck.web.jobs import JobRunner

    db = Database(tmp_path / "library.sqlite3")
    athlete = db.athlete_id("Sam")
    for clip_id in ("a" * 16, "b" * 16):
        db.add_clip(clip_id, athlete, "clip.mp4", "source.mp4", clip_id, 10, 5.0, "2026-12-01")
        (tmp_path / "clips" / clip_id).mkdir(parents=True)
        (tmp_path / "clips" / clip_id / "source.mp4").write_bytes(b"x" * 10)
        db.start(clip_id)
    db.mark_deleted("a" * 16)  # the coach deleted it while it ran; then the server died
    runner = JobRunner(db, tmp_path / "clips")
    runner.start()
    runner.stop()
    assert db.clip("a" * 16) is None and not (tmp_path / "clips" / ("a" * 16)).exists()
    assert db.clip("b" * 16) is not None and (tmp_path / "clips" / ("b" * 16) / "source.mp4").exists()
    db.close()


def test_library_and_athlete_charts_keep_trunk_estimates_apart():
    from formcheck.rules import Thresholds
    from formcheck.web.views import _trunk_cell, _weighted, athlete_charts

    front = {"view": "front", "reps_right": 3, "trunk_mean_right_deg": 24.0, "trunk_estimate_right": True,
             "fppa_mean_right_deg": 14.0}
    side = {"view": "side", "reps_right": 3, "trunk_mean_right_deg": 20.0, "trunk_estimate_right": False,
            "fppa_mean_right_deg": None}
    old_front = {"view": "front", "reps_right": 3, "trunk_mean_right_deg": 30.0}  # saved before the flag
    assert _trunk_cell(front) == "24°~ (estimate)" and _trunk_cell(side) == "20°"
    assert _trunk_cell(old_front).endswith("(estimate)")
    clips = [{"summary": s} for s in (front, side, old_front)]
    assert _weighted(clips, "trunk_mean", "right") == pytest.approx(20.0)  # measured only
    assert _weighted(clips, "fppa_mean", "right") == pytest.approx(14.0)
    done = [{"status": "done", "summary": s, "session_date": f"2026-11-0{i + 1}", "uploaded_at": str(i)}
            for i, s in enumerate((front, side))]
    html = athlete_charts(done, Thresholds())
    assert "trunk mean (measured)" in html
