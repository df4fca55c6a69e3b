"""On-screen cues: what to draw at each frame (:class:`FrameState`) and the annotators.

Drawing is separate from analysis. :func:`frame_states` turns a finished
:class:`~formcheck.analysis.Analysis` (the smoothed pose, the context and the
judged reps) into one :class:`FrameState` per frame; live mode builds the same
states one frame at a time with :func:`measure_frame`. Annotators take their
style in ``__init__`` and draw one state with ``annotate(frame, state) ->
frame`` (supervision's pattern), in place on an RGB ``uint8`` image.

What is drawn:

* the followed person's skeleton (:class:`SkeletonAnnotator`);
* the measured angles where they are measured (:class:`AngleAnnotator`): in a
  front/back view the thigh line from the corrected hip joint centre (the one
  FPPA is measured from, :func:`formcheck.correction.corrected_hip_px`) and the
  shank line, with the FPPA at the knee; in a side view the trunk line from
  the corrected hip centre and its angle from vertical. During a rep these are
  coloured by that rep's verdict (files: known from the whole analysis);
* a rep counter, the last rep's verdict with its cue, and a view/exercise tag.

Sizes scale with ``min(width, height)``; colours are RGB (frames are RGB).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from functools import lru_cache

import cv2
import numpy as np

from formcheck.analysis import MIN_THIGH_RATIO
from formcheck.context import Exercise, View
from formcheck.correction import DEFAULT_CORRECTION, LandmarkCorrection, corrected_hip_px
from formcheck.geometry import fppa_deg, trunk_flexion_deg
from formcheck.pose import LEG, SKELETON_EDGES, Landmark as L, Side
from formcheck.rules import Thresholds, Verdict

# RGB colours. Verdicts: ok green, watch amber, fault red, not measurable grey.
VERDICT_COLOURS: dict[Verdict, tuple[int, int, int]] = {
    Verdict.OK: (40, 200, 80),
    Verdict.WATCH: (255, 176, 0),
    Verdict.FAULT: (235, 40, 40),
    Verdict.NOT_MEASURABLE: (160, 160, 160),
}
NEUTRAL = (90, 190, 255)  # measured lines outside a rep (no verdict yet)
SKELETON = (235, 235, 235)
DARK = (20, 20, 20)
WHITE = (255, 255, 255)
CUE = (255, 236, 160)  # the cue's text: a warm white
VERDICT_WORDS = {Verdict.OK: "OK", Verdict.WATCH: "WATCH", Verdict.FAULT: "FAULT",
                 Verdict.NOT_MEASURABLE: "NOT MEASURABLE"}
EXERCISE_WORDS = {Exercise.SINGLE_LEG_SQUAT: "single-leg squat", Exercise.SQUAT: "squat",
                  Exercise.UNKNOWN: "exercise not recognised"}
_FONT = cv2.FONT_HERSHEY_SIMPLEX
_FRONTAL = (View.FRONT, View.BACK)

Point = tuple[float, float]


# -- what to draw -----------------------------------------------------------------
@dataclass(frozen=True)
class LegMark:
    """One leg's measured lines (front/back view), pixels; fppa_deg NaN if undefined."""

    side: Side
    hip: Point  # corrected hip joint centre
    knee: Point
    ankle: Point
    other_hip: Point
    fppa_deg: float


@dataclass(frozen=True)
class TrunkMark:
    """The trunk line (side view): corrected hip centre -> shoulder centre, pixels."""

    hip: Point
    shoulder: Point
    flexion_deg: float  # forward positive, from vertical


@dataclass(frozen=True)
class RepMark:
    """What the overlay says about one judged rep."""

    index: int
    side: Side
    verdict: Verdict  # the rep's worst (knee valgus / hip hinge)
    knee: Verdict | None  # verdict colouring the knee lines
    trunk: Verdict | None  # verdict colouring the trunk line
    title: str  # "Rep 2, right leg: FAULT"
    detail: str  # "knee 18° inward (fault above 15°)"
    cue: str | None
    partial: bool = False


@dataclass(frozen=True)
class FrameState:
    """Everything drawn on one frame; coordinates in pixels of that frame."""

    index: int
    t_ms: float
    width: int
    height: int
    keypoints: np.ndarray | None  # (33, 2) px, NaN where missing; None: nobody found
    visibility: np.ndarray | None  # (33,)
    view: View
    exercise: Exercise
    stance: Side | None = None
    legs: tuple[LegMark, ...] = ()
    trunk: TrunkMark | None = None
    rep_count: int = 0
    current: RepMark | None = None  # the rep under way (its verdict colours the lines)
    last: RepMark | None = None  # the last finished rep (the panel)
    note: str = ""  # e.g. "PAUSED", "no person in view"

    def mirrored(self) -> FrameState:
        """The same state for a horizontally flipped image (live mirror mode)."""
        w = float(self.width)

        def f(p: Point) -> Point:
            return (w - p[0], p[1])

        kp = None
        if self.keypoints is not None:
            kp = self.keypoints.copy()
            kp[:, 0] = w - kp[:, 0]
        legs = tuple(replace(g, hip=f(g.hip), knee=f(g.knee), ankle=f(g.ankle),
                             other_hip=f(g.other_hip)) for g in self.legs)
        trunk = None if self.trunk is None else replace(self.trunk, hip=f(self.trunk.hip),
                                                        shoulder=f(self.trunk.shoulder))
        return replace(self, keypoints=kp, legs=legs, trunk=trunk)


def measure_frame(px: np.ndarray, view: View, legs: tuple[Side, ...], facing: int,
                  correction: LandmarkCorrection = DEFAULT_CORRECTION,
                  thigh_ratio: dict[Side, float] | None = None,
                  ) -> tuple[tuple[LegMark, ...], TrunkMark | None]:
    """The measured lines of one frame from its (33, 2) pixel landmarks.

    The same functions and arguments as :func:`formcheck.series.compute_series`,
    so the numbers drawn are the numbers the rules read. Front/back view: a
    :class:`LegMark` per leg in ``legs``; side view: the trunk. Other views: none.
    ``thigh_ratio`` (image thigh / upright thigh, per leg): below the analysis'
    ``MIN_THIGH_RATIO`` (or NaN) the thigh points at the camera and FPPA means
    nothing, so the lines are drawn without a number (``fppa_deg`` NaN).
    """
    if view in _FRONTAL:
        marks = []
        sh, osh = px[L.LEFT_SHOULDER], px[L.RIGHT_SHOULDER]
        for side in legs:
            hip_l, knee_l, ankle_l = LEG[side][:3]
            hip, knee, ankle, other = px[hip_l], px[knee_l], px[ankle_l], px[LEG[side.other][0]]
            hjc = corrected_hip_px(hip, other, knee, correction, shoulder=sh, other_shoulder=osh,
                                   back_view=view is View.BACK)
            if not (np.isfinite(hjc).all() and np.isfinite(knee).all() and np.isfinite(ankle).all()):
                continue
            value = float(fppa_deg(hjc, knee, ankle, other))
            if thigh_ratio is not None and not thigh_ratio.get(side, math.nan) >= MIN_THIGH_RATIO:
                value = math.nan
            marks.append(LegMark(side, _pt(hjc), _pt(knee), _pt(ankle), _pt(other), value))
        return tuple(marks), None
    if view is View.SIDE and facing:
        hip = (px[L.LEFT_HIP] + px[L.RIGHT_HIP]) / 2
        sh = (px[L.LEFT_SHOULDER] + px[L.RIGHT_SHOULDER]) / 2
        v = sh - hip
        length = float(np.hypot(*v))
        if not (math.isfinite(length) and length > 0):
            return (), None
        # MediaPipe's mid-hip is anterior: move it back perpendicular to the trunk
        # (formcheck.correction), which is what adds trunk_offset_deg to the angle.
        normal = np.array([-v[1], v[0]]) / length
        normal *= -np.sign(normal[0] * facing) or 1.0  # point backwards (against facing)
        hip_c = hip + correction.trunk_hip_anterior_frac * length * normal
        angle = float(trunk_flexion_deg(hip, sh, facing)) + correction.trunk_offset_deg
        return (), TrunkMark(_pt(hip_c), _pt(sh), angle)
    return (), None


def _deg(x: float) -> str:
    """Whole degrees, without "-0"."""
    return f"{round(x):d}"


def _pt(a: np.ndarray) -> Point:
    return (float(a[0]), float(a[1]))


def rep_mark(rep, thresholds: Thresholds | None = None) -> RepMark:
    """A :class:`RepMark` from a :class:`~formcheck.analysis.RepResult`."""
    t = thresholds or Thresholds()
    checks = rep.checks
    knee, trunk = checks.get("knee_valgus"), checks.get("hip_hinge")
    main = [c for c in (knee, trunk) if c is not None and c.verdict is not Verdict.NOT_MEASURABLE]
    details = []
    if knee is not None and knee.verdict is not Verdict.NOT_MEASURABLE and knee.value is not None:
        way = "inward" if knee.value >= 0 else "outward"
        details.append(f"knee {_deg(abs(knee.value))}° {way} ({_band(knee.verdict, t.valgus_watch_deg, t.valgus_fault_deg)})")
    elif knee is not None and knee.verdict is not Verdict.NOT_MEASURABLE:
        details.append("knees cave in (knee/ankle width)" if knee.verdict is not Verdict.OK
                       else "knees over the feet")
    if trunk is not None and trunk.verdict is not Verdict.NOT_MEASURABLE and trunk.value is not None:
        est = " (estimate)" if trunk.estimate else ""
        v = trunk.value
        if "shin_lean_deg" in trunk.extra:  # squats: the trunk's lean against the shins'
            way = "more forward than" if v >= 0 else "more upright than"
            details.append(f"trunk {_deg(abs(v))}° {way} the shins{est}")
        else:
            details.append(f"trunk {_deg(abs(v))}° {'forward' if v >= 0 else 'back'}{est}")
    if not main:
        reasons = [c.reason for c in (knee, trunk) if c is not None and c.reason]
        details.append(reasons[0] if reasons else "not measurable from this view")
    verdict = rep.worst
    conf = [c.confidence for c in main if c.verdict is verdict and c.confidence is not None]
    word = VERDICT_WORDS[verdict] + (" (borderline)" if conf and max(conf) < 0.6 else "")
    side = "both legs" if rep.side is Side.BOTH else f"{rep.side.value} leg"
    partial = f" (not counted: {rep.rep.reason})" if rep.rep.partial else ""
    order = [c for c in (knee, trunk) if c is not None] + list(checks.values())
    cue = next((c.cue for c in order if c.cue and c.verdict is not Verdict.OK), None)
    return RepMark(rep.index, rep.side, verdict,
                   knee.verdict if knee is not None else None,
                   trunk.verdict if trunk is not None else None,
                   f"Rep {rep.index}, {side}{partial}: {word}", "; ".join(details), cue,
                   rep.rep.partial)


def _band(v: Verdict, watch: float, fault: float) -> str:
    return {Verdict.OK: f"ok up to {watch:g}°", Verdict.WATCH: f"watch above {watch:g}°",
            Verdict.FAULT: f"fault above {fault:g}°"}.get(v, "")


def rep_line(rep) -> str:
    """One plain-text line for a judged rep (headless live mode prints these)."""
    m = rep_mark(rep)
    heading, word = m.title.rsplit(": ", 1)
    text = f"{heading} - {word}: {m.detail}".replace("°", " deg")
    return text + (f". {m.cue}" if m.cue else "")


# -- states of a file's frames ---------------------------------------------------------
class FileStates:
    """The :class:`FrameState` of each frame of a file, from its final analysis
    (``len()`` and ``[i]``; the pixels and rep marks are computed once)."""

    def __init__(self, analysis) -> None:
        self.analysis = analysis
        seq = analysis.pose
        self._px, self._detected = seq.pixels(), seq.detected
        t = analysis.settings.thresholds
        self._reps = [(r, rep_mark(r, t)) for r in analysis.reps]
        self._correction = getattr(analysis, "correction", DEFAULT_CORRECTION)

    def __len__(self) -> int:
        return len(self.analysis.pose)

    def __getitem__(self, i: int) -> FrameState:
        """What to draw at frame ``i``: the smoothed pose, the measured lines of the
        view and stance leg at that time, the rep under way (lines in its verdict's
        colour, from its start to its end frame) and the last finished rep."""
        a = self.analysis
        seq, ctx = a.pose, a.context
        if not 0 <= i < len(seq):
            raise IndexError(i)
        t_s = float(seq.times_s[i])
        view, stance = _view_at(ctx, t_s), _stance_at(ctx, t_s)
        legs = (Side.LEFT, Side.RIGHT) if stance in (None, Side.BOTH) else (stance,)
        kp = self._px[i] if self._detected[i] else None
        marks: tuple[tuple[LegMark, ...], TrunkMark | None] = ((), None)
        if kp is not None:
            ratio = {s: float(a.series.legs[s].thigh_ratio[i]) for s in legs}
            marks = measure_frame(kp, view, legs, ctx.view.facing or 1, self._correction, ratio)
        current = last = None
        count, last_end = 0, -1
        for r, mark in self._reps:
            if r.rep.start_index <= i <= r.rep.end_index:
                current = mark
            if r.rep.end_index <= i:
                count += not r.rep.partial
                if r.rep.end_index >= last_end:
                    last, last_end = mark, r.rep.end_index
        return FrameState(i, float(seq.timestamps_ms[i]), seq.width, seq.height, kp,
                          seq.visibility[i] if kp is not None else None, view, a.exercise, stance,
                          marks[0], marks[1], count, current, last,
                          "" if kp is not None else "no person in view")


def frame_states(analysis) -> list[FrameState]:
    """One :class:`FrameState` per frame of ``analysis.pose``, from the final analysis."""
    states = FileStates(analysis)
    return [states[i] for i in range(len(states))]


def state_at(analysis, i: int) -> FrameState:
    """The :class:`FrameState` of frame ``i`` (for many frames use :class:`FileStates`)."""
    return FileStates(analysis)[i]


def _view_at(ctx, t_s: float) -> View:
    for seg in ctx.view.per_segment:
        if seg.start_s <= t_s <= seg.end_s:
            return seg.view
    return ctx.view.view


def _stance_at(ctx, t_s: float) -> Side | None:
    if not ctx.sets:
        return None
    return min(ctx.sets, key=lambda s: 0.0 if s.start_s <= t_s <= s.end_s
               else min(abs(t_s - s.start_s), abs(t_s - s.end_s))).stance


# -- drawing primitives -------------------------------------------------------------------
@dataclass(frozen=True)
class Metrics:
    """Sizes for a frame, from ``min(width, height)`` (480 px = 1 unit)."""

    unit: float
    line: int  # measured lines, px
    thin: int  # skeleton
    font_scale: float
    font_thickness: int
    text_h: int  # cap height of body text, px
    pad: int

    @classmethod
    @lru_cache(maxsize=16)
    def of(cls, width: int, height: int) -> Metrics:
        u = min(width, height) / 480.0
        text_h = max(11, round(16 * u))  # ~3 % of the short side
        scale = text_h / cv2.getTextSize("H", _FONT, 1.0, 1)[0][1]
        return cls(u, max(2, round(3 * u)), max(1, round(2 * u)), scale,
                   max(1, round(1.4 * u)), text_h, max(3, round(6 * u)))


def text_size(text: str, m: Metrics, scale: float = 1.0) -> tuple[int, int]:
    """(width, cap height) of ``text`` as :func:`put_text` draws it."""
    parts = text.split("°")
    w = sum(cv2.getTextSize(p, _FONT, m.font_scale * scale, m.font_thickness)[0][0] for p in parts)
    w += (len(parts) - 1) * round(m.text_h * scale * 0.45)
    return w, round(m.text_h * scale)


def put_text(img: np.ndarray, text: str, org: tuple[int, int], m: Metrics,
             colour=WHITE, scale: float = 1.0) -> None:
    """Text at ``org`` (left, baseline); "°" is drawn as a small ring (Hershey has none)."""
    x, y = org
    fs, th = m.font_scale * scale, m.font_thickness
    deg_w = round(m.text_h * scale * 0.45)
    for k, part in enumerate(text.split("°")):
        if k:
            r = max(2, round(m.text_h * scale * 0.17))
            cv2.circle(img, (x + r + 1, y - round(m.text_h * scale) + r), r, colour, max(1, th),
                       cv2.LINE_AA)
            x += deg_w
        if part:
            cv2.putText(img, part, (x, y), _FONT, fs, colour, th, cv2.LINE_AA)
            x += cv2.getTextSize(part, _FONT, fs, th)[0][0]


def shade(img: np.ndarray, x0: int, y0: int, x1: int, y1: int, keep: float = 0.3) -> None:
    """Darken a box (a translucent dark background for text)."""
    h, w = img.shape[:2]
    x0, y0, x1, y1 = max(0, x0), max(0, y0), min(w, x1), min(h, y1)
    if x1 > x0 and y1 > y0:
        img[y0:y1, x0:x1] = cv2.convertScaleAbs(img[y0:y1, x0:x1], alpha=keep)


def label(img: np.ndarray, text: str, org: tuple[int, int], m: Metrics, colour=WHITE,
          scale: float = 1.0, anchor: str = "lt") -> tuple[int, int, int, int]:
    """Text in a dark box. ``anchor``: which corner ``org`` is ("lt", "rt", "lc"...).
    Returns the box (x0, y0, x1, y1), kept inside the image."""
    tw, th = text_size(text, m, scale)
    pad = round(m.pad * scale)
    bw, bh = tw + 2 * pad, th + 2 * pad
    x, y = org
    x -= bw if anchor[0] == "r" else 0
    y -= bh if anchor[1] == "b" else bh // 2 if anchor[1] == "c" else 0
    h, w = img.shape[:2]
    x, y = min(max(0, x), max(0, w - bw)), min(max(0, y), max(0, h - bh))
    shade(img, x, y, x + bw, y + bh)
    put_text(img, text, (x + pad, y + pad + th), m, colour, scale)
    return x, y, x + bw, y + bh


def wrap(text: str, max_w: int, m: Metrics, scale: float = 1.0) -> list[str]:
    """Words of ``text`` in lines no wider than ``max_w`` pixels."""
    lines: list[str] = []
    for word in text.split():
        if lines and text_size(f"{lines[-1]} {word}", m, scale)[0] <= max_w:
            lines[-1] += f" {word}"
        else:
            lines.append(word)
    return lines


def _line(img, a: Point, b: Point, colour, thickness: int, outline: bool = True) -> None:
    p, q = (round(a[0]), round(a[1])), (round(b[0]), round(b[1]))
    if outline:
        cv2.line(img, p, q, DARK, thickness + max(2, thickness // 2 * 2), cv2.LINE_AA)
    cv2.line(img, p, q, colour, thickness, cv2.LINE_AA)


def _dot(img, a: Point, r: int, colour) -> None:
    c = (round(a[0]), round(a[1]))
    cv2.circle(img, c, r + max(1, r // 3), DARK, -1, cv2.LINE_AA)
    cv2.circle(img, c, r, colour, -1, cv2.LINE_AA)


# -- annotators ----------------------------------------------------------------------------
class SkeletonAnnotator:
    """The followed person's skeleton (SKELETON_EDGES), thin, under the measured lines."""

    def __init__(self, colour=SKELETON, min_visibility: float = 0.3) -> None:
        self.colour, self.min_visibility = colour, min_visibility

    def annotate(self, frame: np.ndarray, state: FrameState) -> np.ndarray:
        if state.keypoints is None:
            return frame
        m = Metrics.of(state.width, state.height)
        kp = state.keypoints
        vis = state.visibility if state.visibility is not None else np.ones(len(kp))
        ok = np.isfinite(kp).all(axis=1) & ~(vis < self.min_visibility)
        for a, b in SKELETON_EDGES:
            if ok[a] and ok[b]:
                _line(frame, kp[a], kp[b], self.colour, m.thin, outline=False)
        for i in np.flatnonzero(ok[11:]) + 11:  # body joints, not the face
            _dot(frame, kp[i], m.thin + 1, self.colour)
        return frame


class AngleAnnotator:
    """Measured lines and angles: FPPA at the knee (front/back), trunk angle (side).

    Coloured by the verdict of the rep under way, ``neutral`` between reps.
    """

    def __init__(self, colours: dict[Verdict, tuple[int, int, int]] | None = None,
                 neutral=NEUTRAL) -> None:
        self.colours, self.neutral = colours or VERDICT_COLOURS, neutral

    def _colour(self, verdict: Verdict | None):
        return self.neutral if verdict is None else self.colours[verdict]

    def annotate(self, frame: np.ndarray, state: FrameState) -> np.ndarray:
        m = Metrics.of(state.width, state.height)
        cur = state.current
        for leg in state.legs:
            colour = self._colour(cur.knee if cur is not None else None)
            hip, knee, ankle = (np.array(p) for p in (leg.hip, leg.knee, leg.ankle))
            shank = float(np.hypot(*(ankle - knee)))
            thigh = knee - hip
            n = float(np.hypot(*thigh))
            if n > 0:  # the thigh line continued past the knee: FPPA is the angle to it
                _line(frame, leg.knee, _pt(knee + thigh / n * 0.45 * shank), WHITE,
                      max(1, m.thin // 2), outline=False)
            _line(frame, leg.hip, leg.knee, colour, m.line)
            _line(frame, leg.knee, leg.ankle, colour, m.line)
            for p in (leg.hip, leg.ankle):
                _dot(frame, p, m.line, colour)
            _dot(frame, leg.knee, round(m.line * 1.8), colour)
            if math.isfinite(leg.fppa_deg):
                lateral = 1 if knee[0] >= leg.other_hip[0] else -1
                x = round(knee[0] + lateral * (m.line * 2 + m.pad * 2))
                label(frame, f"{_deg(leg.fppa_deg)}°", (x, round(knee[1])), m, colour,
                      anchor="lc" if lateral > 0 else "rc")
        if state.trunk is not None:
            tr = state.trunk
            colour = self._colour(cur.trunk if cur is not None else None)
            length = float(np.hypot(tr.shoulder[0] - tr.hip[0], tr.shoulder[1] - tr.hip[1]))
            _line(frame, tr.hip, (tr.hip[0], tr.hip[1] - length), WHITE, max(1, m.thin // 2),
                  outline=False)
            _line(frame, tr.hip, tr.shoulder, colour, m.line)
            _dot(frame, tr.hip, round(m.line * 1.5), colour)
            _dot(frame, tr.shoulder, m.line, colour)
            if math.isfinite(tr.flexion_deg):
                away = -1 if tr.shoulder[0] >= tr.hip[0] else 1  # label on the open side
                x = round(tr.hip[0] + away * (m.line * 2 + m.pad * 2))
                label(frame, f"trunk {_deg(tr.flexion_deg)}°", (x, round(tr.hip[1] - 0.5 * length)),
                      m, colour, anchor="lc" if away > 0 else "rc")
        return frame


_COUNTER_SCALE = 1.5


def counter_bottom(m: Metrics) -> int:
    """The y just below the rep counter's box."""
    return m.pad + round(m.text_h * _COUNTER_SCALE) + 2 * round(m.pad * _COUNTER_SCALE)


class RepCounterAnnotator:
    """The rep count, top left."""

    def annotate(self, frame: np.ndarray, state: FrameState) -> np.ndarray:
        m = Metrics.of(state.width, state.height)
        label(frame, f"REPS {state.rep_count}", (m.pad, m.pad), m, WHITE, scale=_COUNTER_SCALE)
        return frame


class TagAnnotator:
    """A small view/exercise tag, top right (and a note such as PAUSED under it)."""

    def annotate(self, frame: np.ndarray, state: FrameState) -> np.ndarray:
        m = Metrics.of(state.width, state.height)
        words = [f"{state.view.value} view", EXERCISE_WORDS[state.exercise]]
        if state.stance in (Side.LEFT, Side.RIGHT):
            words.append(f"{state.stance.value} leg")
        box = label(frame, ", ".join(words), (state.width - m.pad, m.pad), m, WHITE, 0.8, "rt")
        if state.note:
            label(frame, state.note, (state.width - m.pad, box[3] + m.pad), m,
                  VERDICT_COLOURS[Verdict.WATCH], 0.9, "rt")
        return frame


class VerdictAnnotator:
    """The last finished rep: its verdict (coloured), what was measured and the cue,
    in a panel at the top, under the counter (the feet, where the legs are
    measured, are at the bottom). Full width on portrait frames, the left part
    of landscape ones."""

    def __init__(self, colours: dict[Verdict, tuple[int, int, int]] | None = None,
                 max_cue_lines: int = 3) -> None:
        self.colours, self.max_cue_lines = colours or VERDICT_COLOURS, max_cue_lines

    def annotate(self, frame: np.ndarray, state: FrameState) -> np.ndarray:
        rep = state.last
        if rep is None:
            return frame
        m = Metrics.of(state.width, state.height)
        colour = self.colours[rep.verdict]
        bar = max(3, round(m.pad * 1.2))
        right = min(state.width, max(state.width // 2, round(min(state.width, state.height) * 1.1)))
        x = m.pad + bar + m.pad
        max_w = right - x - 2 * m.pad
        title = wrap(rep.title, max_w, m, 1.1)
        detail = wrap(rep.detail, max_w, m, 0.9)
        cue = wrap(rep.cue, max_w, m)[: self.max_cue_lines] if rep.cue else []
        step = round(m.text_h * 1.7)
        lines = ([(s, 1.1, colour) for s in title] + [(s, 0.9, WHITE) for s in detail]
                 + [(s, 1.0, CUE) for s in cue])
        y0 = counter_bottom(m) + m.pad
        y1 = y0 + step * len(lines) + 2 * m.pad
        shade(frame, m.pad, y0, right - m.pad, y1)
        cv2.rectangle(frame, (m.pad, y0), (m.pad + bar, y1 - 1), colour, -1)
        y = y0 + m.pad
        for text, scale, c in lines:
            y += step
            put_text(frame, text, (x, y - round((step - m.text_h * scale) / 2)), m, c, scale)
        return frame


class FormOverlay:
    """All the annotators, in drawing order; ``annotate(frame, state) -> frame``."""

    def __init__(self, annotators: list | None = None) -> None:
        self.annotators = annotators if annotators is not None else [
            SkeletonAnnotator(), AngleAnnotator(), RepCounterAnnotator(), TagAnnotator(),
            VerdictAnnotator()]

    def annotate(self, frame: np.ndarray, state: FrameState) -> np.ndarray:
        """Draw on ``frame`` (RGB uint8, in place when writable) and return it."""
        if not frame.flags.writeable:
            frame = frame.copy()
        for a in self.annotators:
            frame = a.annotate(frame, state)
        return frame
