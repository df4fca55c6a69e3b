"""What phones and people produce: a bad-input corpus generated here, never downloaded.

Every case gets a correct result (with a note where quality is doubtful) or one
line naming the problem and a non-zero exit: no traceback, no hang, and no
output file that looks complete but is not.
"""

from __future__ import annotations

import errno
import json
import subprocess
import sys
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np
import pytest
from conftest import SAMPLES, load_gt

from formcheck.errors import OutputError
from formcheck.rules import Verdict
from formcheck.video import read_frames

DEV02 = SAMPLES / "dev02_slsR_front_fppa0-20-30.mp4"
DEV05 = SAMPLES / "dev05_slsR_side_lean10-40-10.mp4"


def cli(*args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "formcheck", *args], capture_output=True, text=True,
                          timeout=timeout)


def one_line_error(r: subprocess.CompletedProcess, *words: str) -> None:
    assert r.returncode != 0, r.stdout
    assert "Traceback" not in r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1, r.stderr
    for w in words:
        assert w.lower() in lines[0].lower(), lines[0]


def write_clip(path: Path, frames, *, fps: int = 30, pts=None, rotation: int = 0,
               container: str | None = None, first: int = 0) -> Path:
    """H.264 of ``frames`` (RGB); ``container`` e.g. "mpegts", ``first``: the first frame's pts."""
    with av.open(str(path), "w", format=container) as out:
        h, w = frames[0].shape[:2]
        st = out.add_stream("libx264", rate=fps)
        st.width, st.height, st.pix_fmt = w, h, "yuv420p"
        if pts is not None:
            st.codec_context.time_base = Fraction(1, 1000)
            st.time_base = Fraction(1, 1000)
        if rotation:
            st.set_display_rotation(rotation)
        for i, img in enumerate(frames):
            fr = av.VideoFrame.from_ndarray(np.ascontiguousarray(img), format="rgb24")
            if pts is None:
                fr.pts, fr.time_base = first + i, Fraction(1, fps)
            else:
                fr.pts, fr.time_base = int(pts[i]), Fraction(1, 1000)
            out.mux(st.encode(fr))
        out.mux(st.encode())
    return path


@pytest.fixture(scope="module")
def dev02_frames():
    return [f.image for f in read_frames(DEV02)]


@pytest.mark.parametrize("args, words", [
    (["analyze"], "missing argument 'video'"),
    (["analyze", "-j", "0", str(DEV02)], "--workers"),
    (["frobnicate"], "no such command 'frobnicate'"),
    (["live", "--camera"], "'--camera' requires an argument"),
])
def test_a_command_line_mistake_is_one_line_with_where_to_look(args, words):
    r = cli(*args)
    assert r.returncode == 2
    one_line_error(r, words, "--help")


def test_a_clip_with_no_person(tmp_path):
    rng = np.random.default_rng(0)
    frames = [np.full((360, 240, 3), 90, np.uint8) + rng.integers(0, 20, (360, 240, 3), dtype=np.uint8)
              for _ in range(40)]
    clip = write_clip(tmp_path / "empty room.mp4", frames)
    out = tmp_path / "a.json"
    r = cli("analyze", str(clip), "--json", str(out))
    one_line_error(r, "no person", "empty room.mp4")
    assert not out.exists()


def test_a_64x64_clip(tmp_path, dev02_frames):
    frames = [cv2.resize(f, (64, 64)) for f in dev02_frames[:20]]
    r = cli("analyze", str(write_clip(tmp_path / "tiny.mp4", frames)))
    one_line_error(r, "too small", "64x64")


def test_an_audio_only_file(tmp_path):
    path = tmp_path / "voice.m4a"
    with av.open(str(path), "w") as out:
        st = out.add_stream("aac", rate=16000)
        for i in range(10):
            frame = av.AudioFrame.from_ndarray(np.zeros((1, 1024), np.float32), format="fltp", layout="mono")
            frame.sample_rate, frame.pts = 16000, i * 1024
            out.mux(st.encode(frame))
        out.mux(st.encode())
    one_line_error(cli("analyze", str(path)), "no video stream", "voice.m4a")


def test_a_still_image_given_as_video(tmp_path, dev02_frames):
    path = tmp_path / "photo.jpg"
    cv2.imwrite(str(path), dev02_frames[0][:, :, ::-1])
    one_line_error(cli("analyze", str(path)), "still image", "photo.jpg")


def test_a_person_who_walks_out_of_frame_mid_rep_and_back(tmp_path, dev02_frames, analysis_of):
    """Frames 140-170 (the descent of rep 2) show an empty background."""
    gt = load_gt(DEV02)
    background = np.full_like(dev02_frames[0], 200)
    frames = [background if 140 <= i < 170 else f for i, f in enumerate(dev02_frames)]
    a = analysis_of(write_clip(tmp_path / "walks out.mp4", frames))
    assert len(a.full_reps) == 2  # rep 2 is not counted, and the note says why
    assert all(not (4.4 < r.rep.bottom_s < 5.9) or r.rep.partial for r in a.reps)
    assert any("lost" in n and "4.6 s" in n for n in a.notes), a.notes
    assert abs(a.full_reps[0].rep.bottom_s - gt["reps"][0]["bottom_frame"] / 30) < 0.15


def test_two_people_swapping_places_never_merge_into_one_track(tmp_path, dev02_frames):
    from formcheck.extract import extract_pose

    side = [f.image for f in read_frames(DEV05)]
    frames = []
    for i in range(120):
        a, b = dev02_frames[i], side[i]
        frames.append(np.concatenate([a, b] if i < 60 else [b, a], axis=1))  # swap at frame 60
    seq = extract_pose(write_clip(tmp_path / "swap.mp4", frames))
    hips = np.nanmean(seq.pixels()[:, [23, 24]], axis=1)
    torso = np.nanmedian(np.linalg.norm(seq.pixels()[:, 11] - seq.pixels()[:, 23], axis=1))
    steps = np.linalg.norm(np.diff(hips, axis=0), axis=1)
    assert np.nanmax(steps) < 0.6 * torso  # a jump to the other person is refused, never followed


def test_a_4k_clip(tmp_path, dev02_frames):
    frames = [cv2.resize(f, (2160, 3840)) for f in dev02_frames[:30]]
    r = cli("pose", str(write_clip(tmp_path / "4k.mp4", frames)), "-o", str(tmp_path / "4k.json"), "-q")
    assert r.returncode == 0, r.stderr
    d = json.loads((tmp_path / "4k.json").read_text())
    assert (d["width"], d["height"]) == (2160, 3840) and len(d["frames"]) == 30
    assert sum(f["landmarks"] is not None for f in d["frames"]) >= 28


def test_variable_frame_rate_keeps_real_time(tmp_path, dev02_frames, analysis_of):
    rng = np.random.default_rng(1)
    steps = rng.uniform(25, 42, len(dev02_frames))
    pts = np.concatenate([[0], np.cumsum(steps)[:-1]]).round()
    a = analysis_of(write_clip(tmp_path / "vfr.mp4", dev02_frames, pts=pts))
    gt = load_gt(DEV02)
    assert len(a.full_reps) == 3
    for ours, true in zip(a.full_reps, gt["reps"]):
        assert abs(ours.rep.bottom_s - pts[true["bottom_frame"]] / 1000) < 0.2


@pytest.mark.parametrize("where", ["mid-shin", "just above the ankle"])
def test_feet_out_of_frame_says_valgus_needs_the_ankles(tmp_path, dev02_frames, analysis_of, where):
    # just above the ankle: MediaPipe keeps the ankle inside the edge, visibility ~0.98, and
    # read a true 0 deg knee as 4 deg; only the toes, placed outside the frame, tell
    gt = load_gt(DEV02)
    knee_y = max(f["j2d"]["kneeR"][1] for f in gt["frames"])
    ankle_y = min(f["j2d"]["ankleR"][1] for f in gt["frames"])
    cut = int(knee_y + 0.35 * (ankle_y - knee_y)) if where == "mid-shin" else int(ankle_y) - 30
    cut -= cut % 2  # yuv420p wants an even height
    frames = [np.ascontiguousarray(f[:cut]) for f in dev02_frames]
    a = analysis_of(write_clip(tmp_path / "no feet.mp4", frames))
    checks = [r.checks["knee_valgus"] for r in a.reps]
    assert checks and all(c.verdict is Verdict.NOT_MEASURABLE for c in checks)
    assert all("ankles" in c.reason for c in checks)


def test_a_side_view_clip_asked_for_valgus_says_it_cannot(analysis_of):
    a = analysis_of(DEV05)
    for r in a.reps:
        c = r.checks["knee_valgus"]
        assert c.verdict is Verdict.NOT_MEASURABLE and "side view" in c.reason and r.fppa_deg is None
    assert any("valgus cannot be judged from the side" in n for n in a.notes)


def test_paths_with_spaces_and_non_ascii(tmp_path):
    folder = tmp_path / "séance d'été"
    folder.mkdir()
    clip = folder / "Übung 1 – kniebeuge.mp4"
    clip.write_bytes(DEV05.read_bytes())
    out = folder / "résultat.json"
    r = cli("analyze", str(clip), "--json", str(out), "-q")
    assert r.returncode == 0, r.stderr
    assert json.loads(out.read_text(encoding="utf-8"))["rep_count"] == 3


@pytest.mark.parametrize("target", ["/nonexistent-folder/out.json", "/sys/formcheck-out.json"])
def test_an_unwritable_output_folder_fails_before_the_work(target):
    r = cli("analyze", str(DEV05), "--json", target)
    one_line_error(r, "cannot write")


def test_a_full_disk_on_write_leaves_no_partial_file(tmp_path, monkeypatch, analysis_of):
    from formcheck import landmark_io
    from formcheck.report import write_json

    a = analysis_of(DEV05)
    real_fdopen = landmark_io.os.fdopen

    class FullDisk:
        def __init__(self, f):
            self.f = f

        def write(self, data):
            raise OSError(errno.ENOSPC, "No space left on device")

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self.f.close()

    monkeypatch.setattr(landmark_io.os, "fdopen", lambda fd, *a, **k: FullDisk(real_fdopen(fd, *a, **k)))
    out = tmp_path / "a.json"
    with pytest.raises(OutputError, match="No space left"):
        write_json(a, out)
    assert list(tmp_path.iterdir()) == []  # neither the file nor a temporary one


def _file_size_limit(limit_bytes: int):
    """For subprocess preexec_fn: writes past ``limit_bytes`` fail as on a full disk (EFBIG)."""
    def apply() -> None:
        import resource
        import signal

        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # fail the write() instead of killing us
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit_bytes, limit_bytes))
    return apply


def test_a_full_disk_while_encoding_video_leaves_no_partial_file(tmp_path):
    """A real failing write() (the kernel's file size limit) in the middle of the annotated video."""
    out = tmp_path / "annotated.mp4"
    r = subprocess.run([sys.executable, "-m", "formcheck", "analyze", str(DEV02), "--annotate", str(out),
                        "-q"], capture_output=True, text=True, timeout=300,
                       preexec_fn=_file_size_limit(60_000))  # the video is ~300 kB
    assert r.returncode == 6 and "Traceback" not in r.stderr
    line = r.stderr.strip()
    assert len(line.splitlines()) == 1 and f"{out}: " in line and "part" not in line  # the file asked for
    assert "File too large" in line
    assert list(tmp_path.iterdir()) == []  # no video, no partial or segment files


def test_output_piped_into_a_closed_pipe_is_no_traceback():
    # e.g. formcheck settings | head -0: the reader goes away before formcheck writes
    for args in (["settings"], ["--help"]):
        proc = subprocess.Popen([sys.executable, "-m", "formcheck", *args], stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)
        proc.stdout.close()
        err = proc.stderr.read()
        proc.wait(timeout=60)
        proc.stderr.close()
        assert "Traceback" not in err and "Error" not in err, (args, err)


def test_an_mpeg_ts_file_is_read_in_one_pass_and_loses_no_rep(tmp_path, dev02_frames, analysis_of):
    """MPEG-TS has no seek index: split across processes, two of three reps were lost."""
    from formcheck.analysis import analyze
    from formcheck.video import probe

    ts = write_clip(tmp_path / "camcorder.ts", dev02_frames, container="mpegts")
    assert not probe(ts).seekable and probe(DEV02).seekable
    a = analyze(ts, workers=2)
    assert len(a.full_reps) == 3
    for ours, ref in zip(a.full_reps, analysis_of(DEV02).full_reps):
        assert abs(ours.rep.bottom_s - ref.rep.bottom_s) < 0.2


def test_a_matroska_file_starting_late_is_not_called_truncated(tmp_path, dev02_frames):
    """An MKV whose first frame is at 5 s: its header's duration runs from 0."""
    from formcheck.analysis import analyze
    from formcheck.video import probe

    mkv = write_clip(tmp_path / "late start.mkv", dev02_frames, container="matroska", first=150)  # 5 s
    assert probe(mkv).duration_s == pytest.approx(9.8, abs=0.1)
    a = analyze(mkv, workers=1)
    assert len(a.full_reps) == 3 and not any("ends early" in n for n in a.notes)
    assert a.full_reps[0].rep.bottom_s < 3.0  # times from the first frame, not from the header's 0
