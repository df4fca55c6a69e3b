"""Annotators, frame states, the annotated video and the rep snapshots (issue: on-screen cues)."""

from __future__ import annotations

import math

import av
import cv2
import numpy as np
import pytest
from conftest import SAMPLES

from formcheck.context import Exercise, View
from formcheck.correction import DEFAULT_CORRECTION, LandmarkCorrection
from formcheck.errors import OutputError
from formcheck.overlay import (
    VERDICT_COLOURS,
    FileStates,
    FormOverlay,
    FrameState,
    Metrics,
    RepCounterAnnotator,
    RepMark,
    VerdictAnnotator,
    measure_frame,
)
from formcheck.pose import LEG, NUM_LANDMARKS, Side
from formcheck.pose import Landmark as L
from formcheck.render import render_annotated, save_snapshots
from formcheck.rules import Verdict
from formcheck.video import probe, read_frames

DEV02 = SAMPLES / "dev02_slsR_front_fppa0-20-30.mp4"
FAULT = np.array(VERDICT_COLOURS[Verdict.FAULT])
OK = np.array(VERDICT_COLOURS[Verdict.OK])


@pytest.fixture(scope="module")
def dev02(analysis_of):
    a = analysis_of(DEV02)
    # The clip's ground truth: FPPA 0, 20, 30 deg -> ok, fault, fault (right leg).
    assert [r.worst for r in a.full_reps] == [Verdict.OK, Verdict.FAULT, Verdict.FAULT]
    return a


@pytest.fixture(scope="module")
def rendered(dev02, tmp_path_factory):
    out = tmp_path_factory.mktemp("render") / "dev02_annotated.mp4"
    done = []
    render_annotated(dev02, DEV02, out, progress=done.append)
    assert sum(done) == len(dev02.pose)
    return out


@pytest.fixture(scope="module")
def bottoms(dev02, rendered):
    """The annotated images at each rep's bottom frame."""
    want = {r.rep.bottom_index for r in dev02.reps}
    return {f.index: f.image for f in read_frames(rendered) if f.index in want}


def near(image: np.ndarray, colour: np.ndarray, centre, half: int, tol: float = 60.0) -> int:
    """Pixels within ``tol`` (RGB distance) of ``colour`` in a square around ``centre``."""
    x, y = (round(float(v)) for v in centre)
    win = image[max(0, y - half):y + half + 1, max(0, x - half):x + half + 1].astype(float)
    return int((np.linalg.norm(win - colour, axis=-1) < tol).sum())


# -- the annotated video ---------------------------------------------------------------------
def test_annotated_video_is_h264_with_the_inputs_frames_size_and_times(rendered):
    with av.open(str(rendered)) as c:
        s = c.streams.video[0]
        assert s.codec_context.name == "h264"
        assert s.codec_context.pix_fmt == "yuv420p"
        assert (s.codec_context.width, s.codec_context.height) == (480, 854)
    src = [f.t_ms for f in read_frames(DEV02)]
    out = [f.t_ms for f in read_frames(rendered)]
    assert len(out) == len(src) == 294
    assert np.max(np.abs(np.array(out) - np.array(src))) <= 1.0


def test_knee_carries_the_fault_colour_in_fault_reps_only(dev02, bottoms):
    knee = dev02.pose.px(L.RIGHT_KNEE)  # the stance knee
    half = max(4, round(0.02 * 480))
    for r in dev02.reps:
        img, k = bottoms[r.rep.bottom_index], knee[r.rep.bottom_index]
        red, green = near(img, FAULT, k, half), near(img, OK, k, half)
        if r.worst is Verdict.FAULT:
            assert red >= 20 and green == 0, (r.index, red, green)
        else:
            assert red == 0 and green >= 20, (r.index, red, green)


def test_snapshots_one_png_per_rep_at_its_bottom(dev02, tmp_path):
    paths = save_snapshots(dev02, DEV02, tmp_path / "snaps")
    assert [p.name for p in paths] == ["rep01_right_ok.png", "rep02_right_fault.png",
                                       "rep03_right_fault.png"]
    assert sorted(p.name for p in (tmp_path / "snaps").iterdir()) == [p.name for p in paths]
    knee = dev02.pose.px(L.RIGHT_KNEE)
    for r, p in zip(dev02.reps, paths):
        bgr = cv2.imread(str(p))
        assert bgr is not None and bgr.shape == (854, 480, 3)
        rgb = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)  # PNGs keep the colours exactly
        colour = FAULT if r.worst is Verdict.FAULT else OK
        assert near(rgb, colour, knee[r.rep.bottom_index], 10, tol=5) > 20


def test_each_snapshot_shows_its_own_rep_in_the_panel(dev02, tmp_path):
    """At a rep's bottom the video's panel still shows the rep before; its snapshot must not."""

    class Recording(FormOverlay):
        def __init__(self):
            super().__init__()
            self.states = []

        def annotate(self, frame, state):
            self.states.append(state)
            return super().annotate(frame, state)

    overlay = Recording()
    save_snapshots(dev02, DEV02, tmp_path / "snaps", overlay=overlay)
    assert [(s.last.index, s.last.verdict, s.rep_count) for s in overlay.states] == \
        [(r.index, r.worst, r.index) for r in dev02.reps]
    video = FileStates(dev02)[dev02.reps[1].rep.bottom_index]  # the video frame there
    assert video.last.index == 1 and video.rep_count == 1


@pytest.mark.skipif(not hasattr(av.video.stream.VideoStream, "set_display_rotation"),
                    reason="this PyAV cannot write a display rotation")
def test_a_phone_clip_stored_sideways_is_rendered_upright(dev02, bottoms, tmp_path):
    """The clip's start stored landscape with a 90 deg display rotation (as phones write it)."""
    from fractions import Fraction

    sideways = tmp_path / "sideways.mp4"
    with av.open(str(sideways), "w") as c:
        st = c.add_stream("libx264", rate=30, options={"crf": "18", "preset": "ultrafast"})
        st.width, st.height, st.pix_fmt = 854, 480, "yuv420p"
        st.codec_context.time_base = st.time_base = Fraction(1, 1000)
        st.set_display_rotation(90)
        i = dev02.reps[0].rep.bottom_index
        for f in read_frames(DEV02):
            if f.index > i:
                break
            frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(np.rot90(f.image, k=-1)),
                                               format="rgb24")
            frame.pts = round(f.t_ms)
            c.mux(st.encode(frame))
        c.mux(st.encode())
    out = render_annotated(dev02, sideways, tmp_path / "upright.mp4")
    info = probe(out)  # no display rotation: the pixels themselves are upright
    assert (info.width, info.height, info.rotation_deg) == (480, 854, 0)
    image = next(f.image for f in read_frames(out) if f.index == i)
    assert np.abs(image.astype(int) - bottoms[i]).mean() < 4  # the same picture as the original's


def test_render_refuses_to_overwrite_its_input(dev02, tmp_path):
    clip = tmp_path / "clip.mp4"
    clip.write_bytes(DEV02.read_bytes())
    with pytest.raises(OutputError, match="overwrite the input"):
        render_annotated(dev02, clip, clip)


# -- what is drawn at which frame ----------------------------------------------------------------
def test_states_colour_a_rep_from_its_start_to_its_end_and_keep_the_last_rep(dev02):
    states = FileStates(dev02)
    r1, r2, _ = dev02.reps
    s = states[r1.rep.start_index - 1]
    assert s.current is None and s.last is None and s.rep_count == 0
    for i in (r1.rep.start_index, r1.rep.bottom_index, r1.rep.end_index):
        assert states[i].current.index == 1 and states[i].current.knee is Verdict.OK
    between = states[r1.rep.end_index + 1]
    assert between.current is None and between.last.index == 1 and between.rep_count == 1
    during = states[r2.rep.bottom_index]
    assert during.current.knee is Verdict.FAULT and during.last.index == 1  # until rep 2 ends
    after = states[r2.rep.end_index]
    assert after.last.index == 2 and after.last.verdict is Verdict.FAULT and after.rep_count == 2
    assert "big toe" in after.last.cue
    assert after.last.detail.startswith(f"knee {round(r2.fppa_deg)}° inward")
    assert s.view is View.FRONT and s.stance is Side.RIGHT and s.exercise is Exercise.SINGLE_LEG_SQUAT


def test_drawn_fppa_is_the_measured_fppa(dev02):
    """The number at the knee is the series value the rules read (same hip joint centre)."""
    states = FileStates(dev02)
    for r in dev02.reps:
        i = r.rep.bottom_index
        (leg,) = states[i].legs
        assert leg.side is Side.RIGHT
        assert leg.fppa_deg == pytest.approx(dev02.series.legs[Side.RIGHT].fppa_deg[i], abs=1e-9)


def _pose_px(hip, knee, ankle, other_hip, shoulders=((150, 100), (250, 100))) -> np.ndarray:
    px = np.full((NUM_LANDMARKS, 2), np.nan)
    hip_l, knee_l, ankle_l = LEG[Side.RIGHT][:3]
    px[hip_l], px[knee_l], px[ankle_l], px[LEG[Side.LEFT][0]] = hip, knee, ankle, other_hip
    px[L.RIGHT_SHOULDER], px[L.LEFT_SHOULDER] = shoulders
    return px


@pytest.mark.parametrize("fppa", [0.0, 10.0, 25.0, -8.0])
def test_leg_lines_measure_a_known_fppa(fppa):
    # Right leg in a front view: the subject's right is image left; valgus moves the knee medially (+x).
    hip, knee = np.array([160.0, 200.0]), np.array([160.0, 300.0])
    a = math.radians(fppa)
    ankle = knee + 100 * np.array([-math.sin(a), math.cos(a)])  # shank turned, knee medial of the line
    px = _pose_px(hip, knee, ankle, other_hip=(240.0, 200.0))
    (leg,), trunk = measure_frame(px, View.FRONT, (Side.RIGHT,), 1, LandmarkCorrection.identity())
    assert trunk is None and leg.fppa_deg == pytest.approx(fppa, abs=1e-6)
    assert leg.hip == pytest.approx(tuple(hip))
    # Default correction: the thigh starts at the joint centre, lateral of MediaPipe's hip.
    (leg,), _ = measure_frame(px, View.FRONT, (Side.RIGHT,), 1, DEFAULT_CORRECTION)
    assert leg.hip[0] != pytest.approx(hip[0]) and math.isfinite(leg.fppa_deg)
    # A thigh pointing at the camera: lines without a number.
    (leg,), _ = measure_frame(px, View.FRONT, (Side.RIGHT,), 1, DEFAULT_CORRECTION,
                              thigh_ratio={Side.RIGHT: 0.3})
    assert math.isnan(leg.fppa_deg)


@pytest.mark.parametrize("lean,facing", [(0.0, 1), (20.0, 1), (40.0, -1), (-5.0, 1)])
def test_trunk_line_is_drawn_at_the_angle_it_is_labelled_with(lean, facing):
    hip = np.array([300.0, 500.0])
    a = math.radians(lean)
    sh = hip + 250 * np.array([facing * math.sin(a), -math.cos(a)])
    px = np.full((NUM_LANDMARKS, 2), np.nan)
    px[L.LEFT_HIP] = px[L.RIGHT_HIP] = hip
    px[L.LEFT_SHOULDER] = px[L.RIGHT_SHOULDER] = sh
    corr = DEFAULT_CORRECTION
    legs, trunk = measure_frame(px, View.SIDE, (Side.RIGHT,), facing, corr)
    assert legs == () and trunk.flexion_deg == pytest.approx(lean + corr.trunk_offset_deg, abs=1e-6)
    dx, dy = trunk.shoulder[0] - trunk.hip[0], trunk.hip[1] - trunk.shoulder[1]
    assert math.degrees(math.atan2(facing * dx, dy)) == pytest.approx(trunk.flexion_deg, abs=1e-6)


def test_mirrored_state_flips_x():
    px = _pose_px((160.0, 200.0), (170.0, 300.0), (160.0, 400.0), (240.0, 200.0))
    legs, _ = measure_frame(px, View.FRONT, (Side.RIGHT,), 1)
    s = FrameState(0, 0.0, 400, 600, px, np.ones(NUM_LANDMARKS), View.FRONT, Exercise.SQUAT, legs=legs)
    m = s.mirrored()
    assert m.legs[0].knee == pytest.approx((400 - 170.0, 300.0))
    assert np.allclose(m.keypoints[L.RIGHT_KNEE], [230.0, 300.0])
    assert m.legs[0].fppa_deg == s.legs[0].fppa_deg


# -- legibility ---------------------------------------------------------------------------------
def _blank_state(w: int, h: int) -> FrameState:
    cue = "Keep the bending knee in line with your big toe; don't let it drop inwards."
    last = RepMark(2, Side.RIGHT, Verdict.FAULT, Verdict.FAULT, None, "Rep 2, right leg: FAULT",
                   "knee 18° inward (fault above 15°)", cue)
    return FrameState(0, 0.0, w, h, None, None, View.FRONT, Exercise.SINGLE_LEG_SQUAT, Side.RIGHT,
                      rep_count=2, last=last)


def _drawn_box(annotator, w: int, h: int) -> tuple[int, int, int, int]:
    grey = np.full((h, w, 3), 128, np.uint8)
    img = annotator.annotate(grey.copy(), _blank_state(w, h))
    ys, xs = np.nonzero((img != grey).any(axis=-1))
    return xs.min(), ys.min(), xs.max() + 1, ys.max() + 1


@pytest.mark.parametrize("annotator", [RepCounterAnnotator(), VerdictAnnotator()],
                         ids=["counter", "panel"])
def test_text_boxes_scale_with_the_frame(annotator):
    _, y0, x1, y1 = _drawn_box(annotator, 480, 854)
    _, Y0, X1, Y1 = _drawn_box(annotator, 3840, 2160)
    ratio = 2160 / 480
    assert (Y1 - Y0) / (y1 - y0) == pytest.approx(ratio, rel=0.12)
    assert x1 <= 480 and X1 <= 3840  # the cue is wrapped, never cut off at the edge
    assert Metrics.of(480, 854).text_h >= 14  # legible on a phone clip
    assert Metrics.of(3840, 2160).line == pytest.approx(Metrics.of(480, 854).line * ratio, rel=0.2)


def test_overlay_draws_on_read_only_frames_without_touching_them():
    frame = np.zeros((854, 480, 3), np.uint8)
    frame.flags.writeable = False
    out = FormOverlay().annotate(frame, _blank_state(480, 854))
    assert out is not frame and out.any() and not frame.any()
