"""Live mode with a video file standing in for the camera (issue: on-screen cues, live)."""

from __future__ import annotations

import time

import av
import numpy as np
import pytest
from conftest import SAMPLES, shared_clip

from formcheck.camera import FileCamera
from formcheck.errors import FormcheckError
from formcheck.live import DisplayError, LiveAnalyzer, run_live
from formcheck.pose import PoseSequence, Side
from formcheck.video import read_frames

DEV02 = SAMPLES / "dev02_slsR_front_fppa0-20-30.mp4"
DEV05 = SAMPLES / "dev05_slsR_side_lean10-40-10.mp4"


def verdicts(result) -> dict[str, str]:
    return {name: c.verdict.value for name, c in result.checks.items()}


@pytest.fixture(scope="module")
def session(tmp_path_factory):
    """dev02 through the whole live loop (model included), every frame, headless, recorded."""
    out = tmp_path_factory.mktemp("live") / "session.mp4"
    lines = []
    with FileCamera(DEV02, realtime=False) as cam:
        summary = run_live(cam, headless=True, record=out, on_rep=lambda rep: lines.append(rep.line))
    return summary, lines, out


def test_live_counts_and_judges_reps_as_the_file_analysis_does(session, analysis_of):
    summary, lines, _ = session
    offline = analysis_of(DEV02)
    assert summary.frames == 294 and summary.dropped == 0
    assert summary.rep_count == len(offline.full_reps) == 3
    assert [r.result is not None for r in summary.reps] == [True] * 3
    for live, off in zip(summary.results, offline.reps):
        assert (live.index, live.side, live.worst) == (off.index, off.side, off.worst)
        assert verdicts(live) == verdicts(off)
        assert abs(live.rep.bottom_s - off.rep.bottom_s) < 0.05
    # on_rep got one line per rep, as headless mode prints them
    assert len(lines) == 3 and lines[1].startswith("Rep 2, right leg - FAULT: knee ")
    assert "big toe" in lines[1] and "°" not in lines[1]


def test_recorded_session_is_h264_with_every_processed_frame(session):
    summary, _, out = session
    with av.open(str(out)) as c:
        ctx = c.streams.video[0].codec_context
        assert (ctx.name, ctx.pix_fmt, ctx.width, ctx.height) == ("h264", "yuv420p", 480, 854)
    times = [f.t_ms for f in read_frames(out)]
    src = [f.t_ms for f in read_frames(DEV02)]
    assert len(times) == summary.frames
    assert np.max(np.abs(np.array(times) - np.array(src))) <= 1.0


@pytest.mark.parametrize("clip", [DEV02, DEV05], ids=["front", "side"])
def test_live_analyzer_matches_the_file_analysis_on_the_same_landmarks(clip, pose_of, analysis_of):
    """Without the model: the cached raw landmarks fed one frame at a time."""
    raw, offline = pose_of(clip), analysis_of(clip)
    live = LiveAnalyzer(raw.width, raw.height)
    reps = []
    for i in range(len(raw)):
        state, done = live.update(i, raw.timestamps_ms[i], raw.xyz[i], raw.world[i], raw.visibility[i])
        reps += done
    reps += live.finish()
    assert [verdicts(r.result) for r in reps] == [verdicts(r) for r in offline.reps]
    assert live.counter.count == len(offline.full_reps) == 3
    assert state.view is offline.view and state.rep_count == 3 and state.last.index == 3
    assert (len(state.legs), state.trunk is not None) == ((1, False) if clip is DEV02 else (0, True))


def test_a_weaker_leg_after_the_other_counts_live_as_in_the_file_analysis(pose_of, analysis_of):
    """Right-leg dips, then left-leg dips only 60% as deep (every landmark moved 0.6 of
    the way from standing): each set is judged "shallow" against itself, live as offline."""
    from formcheck.analysis import analyze_pose

    right, left = pose_of(DEV02), pose_of(shared_clip("dev04_slsL_front_fppa0-20-30.mp4"))
    weak = left.with_arrays(xyz=left.xyz[0] + 0.6 * (left.xyz - left.xyz[0]),
                            world=left.world[0] + 0.6 * (left.world - left.world[0]),
                            timestamps_ms=left.timestamps_ms + right.timestamps_ms[-1] + 33.3)
    both = PoseSequence.concatenate([right, weak])
    offline = analyze_pose(both, source="two legs")
    assert [r.side for r in offline.full_reps] == [Side.RIGHT] * 3 + [Side.LEFT] * 3
    deep = np.median([r.rep.depth for r in offline.full_reps[:3]])
    assert any(r.rep.depth < 0.5 * deep for r in offline.full_reps[3:])  # shallow next to the right
    live = LiveAnalyzer(both.width, both.height)
    reps = []
    for i in range(len(both)):
        reps += live.update(i, both.timestamps_ms[i], both.xyz[i], both.world[i], both.visibility[i])[1]
    reps += live.finish()
    assert [(r.result.side, r.counted.partial) for r in reps] == [(r.side, False) for r in offline.reps]
    assert live.counter.count == 6


def test_realtime_camera_with_a_slow_consumer_drops_frames_and_shows_fresh_ones():
    shown = []  # (read_at, ready_at, t_ms)
    opened = time.monotonic()  # FileCamera releases frame t_ms at its start + t_ms (start >= this)
    with FileCamera(DEV02, realtime=True) as cam:
        def slow(out):
            shown.append((out.read_at, out.ready_at, out.frame.t_ms))
            time.sleep(0.08)  # a consumer slower than the 30 fps source
            if out.ready_at - shown[0][0] > 2.5:
                cam.close()  # read() then returns None: the loop ends

        summary = run_live(cam, headless=True, on_frame=slow)
    assert summary.dropped > 0 and summary.frames == len(shown) >= 10
    read, ready, t_ms = (np.array(x) for x in zip(*shown))
    waited = read - (opened + t_ms / 1000.0)  # an upper bound on how long each frame waited
    step = np.diff(read)  # one processing step (pose + drawing + the slow consumer)
    assert np.all(step > 0.08)
    slack = 0.05  # opening the file and decoding a frame
    # The first frame shown is the newest one, not the file's first (loading the model takes
    # ~1 s here: a queue would show a frame that old).
    assert waited[0] <= 0.1
    assert np.all(waited[1:] <= step + slack), (waited, step)  # never older than one step
    assert np.all(ready - read < step.max())


def test_window_keys_mirror_pause_reset_and_quit(monkeypatch):
    """The window loop with OpenCV's window calls replaced (no screen here)."""
    from formcheck import live

    keys = {3: "m", 6: " ", 9: " ", 12: "r", 20: "q"}  # at the n-th waitKey call
    shown, calls, resets = [], [0], []
    monkeypatch.setattr(live, "_open_window", lambda w, h: None)
    monkeypatch.setattr(live.cv2, "imshow", lambda name, bgr: shown.append(bgr))
    monkeypatch.setattr(live.cv2, "getWindowProperty", lambda *a: 1.0)
    monkeypatch.setattr(live.cv2, "destroyWindow", lambda name: None)

    def wait_key(ms):
        calls[0] += 1
        return ord(keys.get(calls[0], "\xff"))

    monkeypatch.setattr(live.cv2, "waitKey", wait_key)
    reset = live.LiveSession.reset
    monkeypatch.setattr(live.LiveSession, "reset", lambda self: (resets.append(1), reset(self)))
    frames = []
    with FileCamera(DEV02, realtime=False) as cam:
        summary = run_live(cam, on_frame=frames.append)
    assert calls[0] == 20 and len(shown) == 20 and resets == [1]
    assert summary.frames == len(frames) == 17  # frames 7-9 came while paused
    assert [f.frame.index for f in frames][5:7] == [5, 9]
    corner = np.s_[-40:, :40]  # nothing is drawn there
    for f in frames:
        mirrored = f.frame.index >= 3
        raw = f.frame.image[:, ::-1] if mirrored else f.frame.image
        assert np.array_equal(f.image[corner], raw[corner])


def test_no_display_is_one_clear_error_suggesting_headless(monkeypatch):
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    with FileCamera(DEV02, realtime=False) as cam, pytest.raises(DisplayError, match="--headless") as info:
        run_live(cam)
    assert isinstance(info.value, FormcheckError) and "\n" not in str(info.value)


def test_ctrl_c_ends_a_headless_session_and_keeps_the_recording_and_the_reps(tmp_path):
    """Ctrl-C is how a headless webcam session ends: nothing it made may be lost."""
    out = tmp_path / "stopped.mp4"
    lines = []

    def stop_after_rep_one(f):
        if f.frame.index == 140:  # rep 1 ended (frame ~101) and was judged
            raise KeyboardInterrupt

    with FileCamera(DEV02, realtime=False) as cam:
        summary = run_live(cam, headless=True, record=out, on_rep=lambda rep: lines.append(rep.line),
                           on_frame=stop_after_rep_one)
    assert summary.interrupted and summary.frames == 141
    assert summary.rep_count >= 1 and lines[0].startswith("Rep 1, right leg")
    assert len(list(read_frames(out))) == summary.frames


def test_reset_starts_the_count_again_but_the_summary_keeps_every_rep(monkeypatch):
    from formcheck import live

    calls, judged_before = [0], []
    monkeypatch.setattr(live, "_open_window", lambda w, h: None)
    monkeypatch.setattr(live.cv2, "imshow", lambda name, bgr: None)
    monkeypatch.setattr(live.cv2, "getWindowProperty", lambda *a: 1.0)
    monkeypatch.setattr(live.cv2, "destroyWindow", lambda name: None)

    def wait_key(ms):
        calls[0] += 1
        return ord("r") if calls[0] == 140 else 0xFF

    monkeypatch.setattr(live.cv2, "waitKey", wait_key)
    seen = []
    with FileCamera(DEV02, realtime=False) as cam:
        summary = run_live(cam, on_rep=seen.append, on_frame=lambda f: judged_before.append(len(seen))
                           if f.frame.index == 139 else None)
    assert judged_before and judged_before[0] >= 1  # rep 1 was judged before the reset
    assert len(summary.reps) == len(seen) > judged_before[0]  # reps from after the reset too
    assert summary.reps[0] is seen[0]
