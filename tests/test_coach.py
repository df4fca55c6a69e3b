"""Coaches: batch over many clips, the HTML report, and the web app in a real browser."""

from __future__ import annotations

import csv
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from conftest import SAMPLES

from formcheck.video import probe, read_frames

DEV02 = SAMPLES / "dev02_slsR_front_fppa0-20-30.mp4"
DEV05 = SAMPLES / "dev05_slsR_side_lean10-40-10.mp4"
CHROMIUM = "/usr/bin/chromium"
BROWSER_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                "--disable-component-update", "--no-first-run", "--disable-quic", "--disable-sync"]


def cli(*args: str, timeout: float = 600) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "formcheck", *args], capture_output=True, text=True,
                          timeout=timeout)


@pytest.fixture(scope="module")
def batch_run(tmp_path_factory):
    src = tmp_path_factory.mktemp("clips")
    for clip in (DEV02, DEV05):
        shutil.copy(clip, src)
    (src / "notes.mp4").write_text("this is not a video\n")
    (src / "cut.mp4").write_bytes(DEV02.read_bytes()[:20_000])
    out = tmp_path_factory.mktemp("results")
    first = cli("batch", str(src), "-o", str(out), "-q")
    return src, out, first


def _summary(out: Path) -> dict[str, dict]:
    with open(out / "summary.csv", newline="") as f:
        return {row["clip"]: row for row in csv.DictReader(f)}


def test_batch_summary_has_every_clip_and_the_failures_with_their_errors(batch_run):
    _, out, first = batch_run
    assert first.returncode == 0, first.stderr  # some clips failed, the others were done
    rows = _summary(out)
    assert set(rows) == {DEV02.name, DEV05.name, "notes.mp4", "cut.mp4"}
    assert rows[DEV02.name]["status"] == "ok" and rows[DEV02.name]["reps_right"] == "3"
    assert rows[DEV02.name]["view"] == "front" and float(rows[DEV02.name]["fppa_worst_right_deg"]) > 15
    assert rows[DEV05.name]["status"] == "ok" and rows[DEV05.name]["view"] == "side"
    assert rows["notes.mp4"]["status"] == "failed" and "not a video" in rows["notes.mp4"]["error"]
    assert rows["cut.mp4"]["status"] == "failed" and rows["cut.mp4"]["error"]
    assert "2 failed" in first.stderr


def test_batch_clip_folders_are_complete_and_the_video_decodes(batch_run):
    _, out, _ = batch_run
    folder = out / _summary(out)[DEV02.name]["folder"]
    for name in ("annotated.mp4", "analysis.json", "reps.csv", "report.html"):
        assert (folder / name).is_file() and (folder / name).stat().st_size > 0
    info = probe(folder / "annotated.mp4")
    assert info.codec == "h264" and (info.width, info.height) == (480, 854)
    assert sum(1 for _ in read_frames(folder / "annotated.mp4")) == sum(1 for _ in read_frames(DEV02))
    assert not list(out.glob(".*"))  # no partial folders left


def test_batch_rerun_skips_the_clips_already_done(batch_run):
    src, out, _ = batch_run
    folder = out / _summary(out)[DEV02.name]["folder"]
    before = (folder / "annotated.mp4").stat().st_mtime_ns
    t0 = time.monotonic()
    again = cli("batch", str(src), "-o", str(out), "-q")
    assert again.returncode == 0
    assert time.monotonic() - t0 < 20  # nothing re-analysed (an analysis alone takes ~10 s)
    assert (folder / "annotated.mp4").stat().st_mtime_ns == before
    assert _summary(out)[DEV02.name]["reused"] == "yes"


def test_html_report_is_one_self_contained_file(batch_run):
    _, out, _ = batch_run
    html = (out / _summary(out)[DEV02.name]["folder"] / "report.html").read_text(encoding="utf-8")
    assert 'src="http' not in html and 'href="http' not in html and "<link " not in html
    assert html.count("<svg") >= 3  # knee flexion, FPPA, trunk plots (+ left/right chart)
    assert "physiotherapist" in html or "professional" in html
    assert "front view" in html.lower()
    assert "<video" in html


def _browser():
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")
    if not Path(CHROMIUM).exists():
        pytest.skip("Debian chromium is not installed (.ci/run installs it)")
    return sync_api


def test_html_report_renders_and_prints_in_a_real_browser(batch_run, tmp_path):
    sync_api = _browser()
    _, out, _ = batch_run
    report = out / _summary(out)[DEV02.name]["folder"] / "report.html"
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=BROWSER_ARGS)
        page = browser.new_page()
        page.goto(report.as_uri())
        rows = page.locator("table.reps tbody tr, #reps tbody tr").count()
        text = page.inner_text("body")
        page.pdf(path=str(tmp_path / "report.pdf"))
        browser.close()
    assert rows == 3 or text.count("fault") >= 2
    assert (tmp_path / "report.pdf").read_bytes()[:4] == b"%PDF"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    def __init__(self, data: Path, token: str | None = None) -> None:
        self.data, self.token, self.port = data, token, _free_port()
        self.url = f"http://127.0.0.1:{self.port}"

    def start(self) -> "Server":
        args = [sys.executable, "-m", "formcheck", "serve", "--port", str(self.port), "--data", str(self.data)]
        if self.token:
            args += ["--token", self.token]
        self.proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                     start_new_session=True)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                headers = {"Authorization": f"Bearer {self.token}"} if self.token else {}
                urllib.request.urlopen(urllib.request.Request(self.url + "/healthz", headers=headers),
                                       timeout=1)
                return self
            except OSError:
                time.sleep(0.3)
        raise RuntimeError("server did not start")

    def stop(self) -> None:
        os.killpg(self.proc.pid, signal.SIGKILL)  # as a crash or a power cut would
        self.proc.wait(timeout=10)


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    s = Server(tmp_path_factory.mktemp("web")).start()
    yield s
    s.stop()


def test_web_upload_analyse_watch_and_survive_a_restart(server, tmp_path):
    sync_api = _browser()
    evil = tmp_path / "evil.mp4"
    evil.write_bytes(DEV02.read_bytes())
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=BROWSER_ARGS)
        page = browser.new_page()
        page.goto(server.url + "/")
        page.fill("input[name=athlete]", "Sam <script>")
        page.set_input_files("input[type=file]", [{"name": "../../evil.mp4", "mimeType": "video/mp4",
                                                    "buffer": DEV02.read_bytes()}])
        with page.expect_navigation(timeout=120_000):
            page.click("form button[type=submit], form input[type=submit]")
        page.wait_for_load_state()
        link = page.locator("a[href^='/clips/']").first
        link.wait_for(timeout=30_000)
        clip_url = server.url + link.get_attribute("href")
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            page.goto(clip_url)
            if page.locator("video").count():
                break
            time.sleep(2)
        assert page.locator("video").count() == 1
        text = page.inner_text("body")
        assert "3 reps" in text
        page.wait_for_function("document.querySelector('video').readyState >= 1", timeout=20_000)
        state = page.evaluate("""async () => {
            const v = document.querySelector('video'); v.muted = true; await v.play();
            await new Promise(r => setTimeout(r, 800));
            return {duration: v.duration, error: v.error, t: v.currentTime}; }""")
        assert state["duration"] > 5 and state["error"] is None and state["t"] > 0
        assert "Sam &lt;script&gt;" in page.content() or "Sam <script>" in text
        browser.close()
    stored = [p.name for p in server.data.rglob("*") if p.is_file()]
    assert "evil.mp4" not in stored or not (server.data.parent / "evil.mp4").exists()
    assert all(".." not in name for name in stored)

    server.stop()
    server.start()
    with urllib.request.urlopen(server.url + "/api/clips", timeout=5) as r:
        body = r.read().decode()
    assert "evil.mp4" in body and '"status":"done"' in body.replace(" ", "")


def test_web_refuses_a_renamed_text_file_with_a_clear_message(server):
    sync_api = _browser()
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=BROWSER_ARGS)
        page = browser.new_page()
        page.goto(server.url + "/")
        page.fill("input[name=athlete]", "Alex")
        page.set_input_files("input[type=file]", [{"name": "clip.mp4", "mimeType": "video/mp4",
                                                    "buffer": b"just some text, not a video\n" * 10}])
        with page.expect_navigation(timeout=120_000):
            page.click("form button[type=submit], form input[type=submit]")
        page.wait_for_load_state()
        text = page.inner_text("body").lower()
        browser.close()
    assert "clip.mp4" in text and ("not a video" in text or "refused" in text)


def test_web_token_guards_every_request(tmp_path):
    s = Server(tmp_path / "data", token="s3cret").start()
    try:
        with pytest.raises(urllib.error.HTTPError) as e:
            urllib.request.urlopen(s.url + "/api/clips", timeout=5)
        assert e.value.code == 401
        req = urllib.request.Request(s.url + "/api/clips", headers={"Authorization": "Bearer s3cret"})
        with urllib.request.urlopen(req, timeout=5) as r:
            assert r.status == 200
    finally:
        s.stop()


def test_serve_refuses_a_public_address_without_a_token():
    r = cli("serve", "--host", "0.0.0.0", timeout=60)
    assert r.returncode != 0 and len(r.stderr.strip().splitlines()) == 1 and "token" in r.stderr


def test_ctrl_c_in_the_middle_of_a_batch_keeps_finished_clips_and_resumes(tmp_path):
    src = tmp_path / "clips"
    src.mkdir()
    for clip in (DEV05, DEV02, SAMPLES / "dev06_dls_front_fppa0-15-25.mp4"):
        shutil.copy(clip, src)
    out = tmp_path / "results"
    proc = subprocess.Popen([sys.executable, "-m", "formcheck", "batch", str(src), "-o", str(out), "-q",
                             "--workers", "1"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline and not list(out.glob("*/done.json")):
        time.sleep(0.2)
    assert list(out.glob("*/done.json")), "no clip finished in time"
    proc.send_signal(signal.SIGINT)
    _, stderr = proc.communicate(timeout=60)
    assert proc.returncode != 0 and "Traceback" not in stderr
    finished = [p.parent for p in out.glob("*/done.json")]
    assert 1 <= len(finished) < 3
    assert not [p for p in out.iterdir() if p.name.startswith(".")]  # the unfinished clip is gone
    for folder in finished:
        assert (folder / "annotated.mp4").is_file() and (folder / "report.html").is_file()
    again = cli("batch", str(src), "-o", str(out), "-q", "--workers", "1")
    assert again.returncode == 0
    rows = _summary(out)
    assert all(r["status"] == "ok" for r in rows.values()) and len(rows) == 3
    assert sum(r["reused"] == "yes" for r in rows.values()) == len(finished)
