"""formcheck.batch: clips in parallel, one folder each, summary.csv, resume, failures recorded."""

from __future__ import annotations

import csv
import fcntl
import json
import os
import pickle
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import av
import pytest
from conftest import SAMPLES

from formcheck.batch import (BatchProgress, clip_folder_name, file_sha256, find_clips, process_clip,
                             read_done, run_batch)
from formcheck.errors import InputError

DEV02 = SAMPLES / "dev02_slsR_front_fppa0-20-30.mp4"
DEV05 = SAMPLES / "dev05_slsR_side_lean10-40-10.mp4"
OK_CLIPS = (DEV02, DEV05)


def _frames(path: Path) -> tuple[str, int]:
    with av.open(str(path)) as c:
        stream = c.streams.video[0]
        return stream.codec_context.name, sum(1 for _ in c.decode(stream))


def _first_batch(root: Path) -> tuple:
    src, out = root / "clips", root / "results"
    src.mkdir()
    for clip in OK_CLIPS:
        (src / clip.name).write_bytes(clip.read_bytes())
    (src / "notes.mp4").write_text("not a video, just notes\n")
    (src / "cut.mp4").write_bytes(DEV02.read_bytes()[:30_000])  # no moov atom: unreadable
    (src / "readme.txt").write_text("not picked up: not a video suffix\n")
    events: list[BatchProgress] = []
    t0 = time.monotonic()
    result = run_batch([src], out, workers=2, progress=events.append)
    return src, out, result, events, time.monotonic() - t0


@pytest.fixture(scope="module")
def batch(tmp_path_factory):
    """One batch over 2 sample clips, a text file named .mp4 and a truncated mp4 (reused by the tests).

    Under pytest-xdist each worker would run a module fixture again: the first
    worker runs the batch, the others wait for it and reuse it.
    """
    if not os.environ.get("PYTEST_XDIST_WORKER"):
        return _first_batch(tmp_path_factory.mktemp("batch"))
    root = tmp_path_factory.getbasetemp().parent  # shared by this session's workers
    with open(root / "test_batch.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        saved = root / "test_batch.pickle"
        if saved.exists():
            return pickle.loads(saved.read_bytes())
        (root / "test_batch").mkdir()
        run = _first_batch(root / "test_batch")
        saved.write_bytes(pickle.dumps(run))
        return run


def _rows(out: Path) -> dict[str, dict]:
    with open(out / "summary.csv", newline="", encoding="utf-8") as f:
        return {row["clip"]: row for row in csv.DictReader(f)}


def test_summary_lists_every_clip_with_rep_counts_and_errors(batch):
    _, out, result, _, _ = batch
    rows = _rows(out)
    assert list(rows) == ["cut.mp4", DEV02.name, DEV05.name, "notes.mp4"]  # sorted folder listing
    for clip in OK_CLIPS:
        row = rows[clip.name]
        assert row["status"] == "ok" and row["error"] == ""
        assert (row["reps_left"], row["reps_right"], row["reps_both"]) == ("0", "3", "0")
        assert row["exercise"] == "single_leg_squat" and row["folder"]
    assert rows[DEV02.name]["view"] == "front" and float(rows[DEV02.name]["fppa_worst_right_deg"]) > 15
    assert rows[DEV02.name]["faults"] == "2"
    assert rows[DEV05.name]["view"] == "side" and rows[DEV05.name]["fppa_worst_right_deg"] == ""
    for bad in ("notes.mp4", "cut.mp4"):
        assert rows[bad]["status"] == "failed" and rows[bad]["folder"] == ""
        assert "not a video file" in rows[bad]["error"] and bad in rows[bad]["error"]
    assert len(result.ok) == 2 and len(result.failed) == 2 and result.summary_csv == out / "summary.csv"
    assert not any(c.reused for c in result.clips) and {r["reused"] for r in rows.values()} == {"no"}


def test_clip_folders_are_complete(batch):
    src, out, result, _, _ = batch
    folders = sorted(p.name for p in out.iterdir() if p.is_dir())
    assert folders == sorted(clip_folder_name(c, file_sha256(c)) for c in OK_CLIPS)  # failed: none
    assert not [p for p in out.iterdir() if p.name.startswith(".")]  # no partial folders
    for clip in OK_CLIPS:
        folder = next(c.folder for c in result.ok if c.path.name == clip.name)
        assert _frames(folder / "annotated.mp4") == ("h264", _frames(clip)[1])
        analysis = json.loads((folder / "analysis.json").read_text())
        assert analysis["rep_count"] == 3 and analysis["safety"] and analysis["source"] == clip.name
        with open(folder / "reps.csv", newline="") as f:
            assert len(list(csv.DictReader(f))) == 3
        html = (folder / "report.html").read_text(encoding="utf-8")
        assert 'src="data:video/mp4;base64,' in html and html.count("<svg") >= 3
        assert len(list((folder / "snapshots").glob("rep*.png"))) == 3
        done = json.loads((folder / "done.json").read_text())
        assert done["sha256"] == file_sha256(src / clip.name) and done["summary"]["rep_count"] == 3


def test_progress_reports_every_clip_to_the_end(batch):
    _, _, _, events, _ = batch
    states = {}
    for ev in events:
        states.setdefault(ev.clip, []).append(ev.state)
    for clip in OK_CLIPS:
        assert {"queued", "analysing", "rendering", "ok"} <= set(states[clip.name])
        ok = next(ev for ev in events if ev.clip == clip.name and ev.state == "ok")
        assert ok.total and ok.done == ok.total
    assert states["notes.mp4"][-1] == "failed" and states["cut.mp4"][-1] == "failed"
    assert events[-1].clips_done == events[-1].clips_total == 4


def test_rerun_skips_the_clips_already_done(batch, tmp_path):
    src, first_out, _, _, first_s = batch
    out = tmp_path / "results"  # a copy: the other tests (maybe in another worker) read the first
    shutil.copytree(first_out, out)
    video = {c: next(out.glob(f"{c.stem}-*")) / "annotated.mp4" for c in OK_CLIPS}
    before = {c: p.stat().st_mtime_ns for c, p in video.items()}
    events: list[BatchProgress] = []
    t0 = time.monotonic()
    again = run_batch([str(src / "*.mp4")], out, workers=2, progress=events.append)  # a glob this time
    elapsed = time.monotonic() - t0
    assert elapsed < 15 and elapsed < first_s / 2  # the failing clips are retried (fast), nothing else
    assert {c: p.stat().st_mtime_ns for c, p in video.items()} == before
    assert {c.path.name for c in again.ok if c.reused} == {c.name for c in OK_CLIPS}
    assert {ev.clip for ev in events if ev.state == "reused"} == {c.name for c in OK_CLIPS}
    assert not {ev.state for ev in events if ev.clip in {c.name for c in OK_CLIPS}} & {"analysing"}
    rows = _rows(out)
    assert rows[DEV02.name]["reused"] == "yes" and rows["notes.mp4"]["status"] == "failed"


def test_other_settings_mean_the_clip_is_not_done(batch):
    from formcheck.settings import Settings

    result = batch[2]
    clip = result.ok[0]
    sha = file_sha256(clip.path)
    assert read_done(clip.folder, sha) is not None
    assert read_done(clip.folder, sha, Settings().replace("thresholds", valgus_fault_deg=12.0)) is None
    assert read_done(clip.folder, "0" * 64) is None


def test_an_interrupted_clip_leaves_nothing_behind(tmp_path, monkeypatch):
    import formcheck.analysis

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(formcheck.analysis, "analyze", interrupted)
    folder = tmp_path / "clip-0123456789"
    with pytest.raises(KeyboardInterrupt):
        process_clip(DEV02, folder)
    assert list(tmp_path.iterdir()) == []


def test_find_clips_takes_folders_files_and_globs(tmp_path):
    for name in ("b.mp4", "a.MOV", ".hidden.mp4", "notes.txt"):
        (tmp_path / name).write_bytes(b"x")
    assert [p.name for p in find_clips([tmp_path])] == ["a.MOV", "b.mp4"]
    assert [p.name for p in find_clips([tmp_path / "notes.txt", str(tmp_path / "*.mp4")])] == \
        ["notes.txt", "b.mp4"]
    assert len(find_clips([tmp_path, tmp_path / "b.mp4"])) == 2  # each file once
    with pytest.raises(InputError, match="no such file"):
        find_clips([tmp_path / "missing.mp4"])
    with pytest.raises(InputError, match="no files match"):
        find_clips([str(tmp_path / "*.mkv")])
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="no video files"):
        find_clips([tmp_path / "empty"])


@pytest.mark.parametrize("name, folder", [
    ("clip one.mp4", "clip_one-abcdef0123"),
    ("../../evil.mp4", "evil-abcdef0123"),
    ("...mp4", "clip-abcdef0123"),
    ("Übung 3 (links).mov", "bung_3_links-abcdef0123"),
])
def test_clip_folder_names_are_safe(name, folder):
    assert clip_folder_name(Path(name), "abcdef0123" + "0" * 54) == folder


def _cli(*args: str, timeout: float = 600) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "formcheck", *args], capture_output=True, text=True,
                          timeout=timeout, check=False)


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
    again = _cli("batch", str(src), "-o", str(out), "-q", "--workers", "1")
    assert again.returncode == 0
    rows = _rows(out)
    assert all(r["status"] == "ok" for r in rows.values()) and len(rows) == 3
    assert sum(r["reused"] == "yes" for r in rows.values()) == len(finished)


def test_batch_command_logs_each_clip_and_exits_non_zero_when_a_clip_failed(batch, tmp_path):
    src, first_out, _, _, _ = batch
    out = tmp_path / "results"
    shutil.copytree(first_out, out)  # the finished clips are reused; the shared batch stays as it is
    r = _cli("batch", str(src), "-o", str(out))  # stderr is a pipe: plain lines, no bar
    assert r.returncode == 1 and "Traceback" not in r.stderr
    lines = r.stderr.strip().splitlines()
    assert [line.split("]")[0] for line in lines[:4]] == ["[1/4", "[2/4", "[3/4", "[4/4"]
    assert any(line.endswith(f"reused {DEV02.name}") for line in lines)
    assert any(" failed notes.mp4: " in line for line in lines)
    assert "0 clips analysed, 2 already done before, 2 failed" in lines[-1]
