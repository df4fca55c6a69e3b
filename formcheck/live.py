"""Live mode: a camera (or a file played as one) -> pose -> cues on screen, one frame at a time.

The same pieces as files, online: PoseEstimator (VIDEO mode) -> SubjectTracker
-> a forward :class:`~formcheck.smoothing.OneEuroFilter` -> the overlay. Reps
are counted by :class:`~formcheck.reps.RepCounter` on the depth signal
(:func:`~formcheck.reps.depth_signal`'s definition, computed causally: the
leg length over its standing level, the maximum of the recent past). When a
rep completes it is judged by :func:`formcheck.analysis.analyze_pose` over the
last ``buffer_s`` seconds of raw landmarks, taking the rep whose bottom time
matches: live verdicts come from the same code as the file analysis.

The source is read newest-frame-first (frames are dropped, never queued), so
what is shown is at most one processing step old.
"""

from __future__ import annotations

import math
import os
import sys
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Self

# OpenCV before anything that imports PyAV (formcheck.video): PyAV's wheels bundle a private
# libxcb, and when it is loaded first OpenCV's Qt window livelocks at 100 % CPU
# (PyAV-Org/PyAV#978, #1050). _open_window() refuses to open a window in that state.
import cv2
import numpy as np

from formcheck.analysis import Analysis, RepResult, analyze_pose, judge_rep_at
from formcheck.context import Exercise, View, estimate_context
from formcheck.correction import DEFAULT_CORRECTION, LandmarkCorrection, corrected_hip_px
from formcheck.errors import FormcheckError, NoPersonError
from formcheck.overlay import FormOverlay, FrameState, RepMark, measure_frame, rep_line, rep_mark
from formcheck.pose import LEG, NUM_LANDMARKS, PoseSequence, Side
from formcheck.pose import Landmark as L
from formcheck.reps import Rep, RepCounter
from formcheck.settings import Settings
from formcheck.smoothing import OneEuroFilter
from formcheck.video import Frame, VideoWriter

WINDOW = "formcheck live (q quit, space pause, m mirror, r reset)"


class DisplayError(FormcheckError):
    """No screen to show the live window on."""

    exit_code = 8


@dataclass(frozen=True)
class LiveSettings:
    """Live-mode settings. Times in seconds."""

    # Raw landmarks kept to judge a completed rep with the file analysis: a rep
    # (<= 12 s, RepSettings.max_duration_s) plus standing before it.
    buffer_s: float = 15.0
    # The view/stance tag is re-estimated this often from this much recent pose
    # (formcheck.context needs a couple of seconds; ~10 ms per estimate).
    context_every_s: float = 1.0
    context_window_s: float = 5.0
    # A live rep and a rep of the buffer analysis are the same rep when their
    # bottoms are this close (or within half the rep's duration, if longer).
    match_s: float = 0.5


@dataclass(frozen=True)
class LiveRep:
    """A rep completed live: as counted, and as judged by the file analysis."""

    number: int  # 1-based in the session, partial reps included (as RepResult.index)
    counted: Rep  # from the live RepCounter (times in s of the source's clock)
    result: RepResult | None  # None when the analysis of the buffer did not find it

    @property
    def line(self) -> str:
        if self.result is None:
            return (f"Rep {self.number}: could not be judged (the analysis of the last seconds "
                    "did not find this rep)")
        return rep_line(self.result)


@dataclass(frozen=True)
class LiveFrame:
    """One processed frame: the source frame, its state and the annotated image
    (None when nothing needs it), with monotonic times of read and ready."""

    frame: Frame
    state: FrameState
    image: np.ndarray | None
    reps: tuple[LiveRep, ...]
    read_at: float
    ready_at: float

    @property
    def latency_s(self) -> float:
        return self.ready_at - self.read_at


@dataclass
class LiveSummary:
    reps: list[LiveRep] = field(default_factory=list)
    frames: int = 0  # processed
    dropped: int = 0  # frames the source replaced before they were read
    duration_s: float = 0.0
    interrupted: bool = False  # ended by Ctrl-C (the recording and the reps are still kept)
    latencies_ms: list[float] = field(default_factory=list, repr=False)

    @property
    def results(self) -> list[RepResult]:
        return [r.result for r in self.reps if r.result is not None]

    @property
    def rep_count(self) -> int:
        return sum(not r.counted.partial for r in self.reps)

    def latency_ms(self, q: float = 50.0) -> float:
        return float(np.percentile(self.latencies_ms, q)) if self.latencies_ms else math.nan


class LiveAnalyzer:
    """Landmarks in, one frame at a time; what to draw and the reps completed out.

    No pose model and no drawing here (see :class:`LiveSession`): feed each
    frame's raw landmarks (NaN when nobody was found) with :meth:`update`.
    """

    def __init__(self, width: int, height: int, settings: Settings | None = None,
                 live: LiveSettings | None = None,
                 correction: LandmarkCorrection = DEFAULT_CORRECTION) -> None:
        self.width, self.height = width, height
        self.settings = settings or Settings()
        self.live = live or LiveSettings()
        self.correction = correction
        self._scale = np.array([width, height], float)
        self.reset()

    def reset(self) -> None:
        """Start over: counter, filter, buffers, context and judged reps."""
        self.counter = RepCounter(self.settings.reps)
        self.filter = OneEuroFilter.from_settings(self.settings.smoothing)
        self._raw: deque[tuple[float, np.ndarray, np.ndarray, np.ndarray]] = deque()
        self._smooth: deque[tuple[float, np.ndarray, np.ndarray]] = deque()
        self._legs: deque[tuple[float, float, float]] = deque()  # (t_s, leg length, smoothed)
        self._thighs: deque[tuple[float, float, float]] = deque()  # (t_s, left, right) px
        self.view, self.exercise, self.stance, self.facing = View.UNKNOWN, Exercise.UNKNOWN, None, 1
        self._seen_stance: Side | None = None
        self._next_context_s = -math.inf
        self.reps: list[LiveRep] = []
        self.last: RepMark | None = None
        self.frames = 0

    # -- per frame ---------------------------------------------------------------------
    def update(self, index: int, t_ms: float, xyz: np.ndarray, world: np.ndarray,
               visibility: np.ndarray) -> tuple[FrameState, list[LiveRep]]:
        """One frame's raw landmarks ((33, 3), (33, 3), (33,); NaN if nobody)."""
        t_s = t_ms / 1000.0
        self.frames += 1
        self._raw.append((t_ms, xyz, world, visibility))
        while self._raw[0][0] < t_ms - self.live.buffer_s * 1000.0:
            self._raw.popleft()
        both = self.filter(t_s, np.stack([xyz, world]))
        self._smooth.append((t_ms, both[0], both[1]))
        while self._smooth[0][0] < t_ms - self.live.context_window_s * 1000.0:
            self._smooth.popleft()
        px = both[0][:, :2] * self._scale
        found = bool(np.isfinite(px).all(axis=1).any())
        done = []
        rep = self.counter.update(t_s, self._depth(t_s, px))
        if rep is not None:
            done.append(self._judge(rep))
        if t_s >= self._next_context_s:
            self._next_context_s = t_s + self.live.context_every_s
            self._update_context()
        return self._state(index, t_ms, px, both[0], visibility, found), done

    def finish(self) -> list[LiveRep]:
        """End of the stream: judge a rep still under way (cut off, partial)."""
        return [self._judge(rep) for rep in self.counter.finish()]

    def _depth(self, t_s: float, px: np.ndarray) -> float:
        """Depth now: 1 - leg / standing leg, the leg being hip centre to the lower ankle
        (the stance foot, or both feet in a squat), the standing leg the maximum of the
        leg length (median over ``smoothing_s``) over the last ``standing_window_s``."""
        s = self.settings.reps
        hip_y = (px[L.LEFT_HIP, 1] + px[L.RIGHT_HIP, 1]) / 2
        ankles = px[[L.LEFT_ANKLE, L.RIGHT_ANKLE], 1]
        leg = float(np.nanmax(ankles) - hip_y) if np.isfinite(ankles).any() else math.nan
        if not leg > 0:
            return math.nan
        recent = [v for t, v, _ in self._legs if t >= t_s - s.smoothing_s] + [leg]
        self._legs.append((t_s, leg, float(np.median(recent))))
        while self._legs[0][0] < t_s - s.standing_window_s:
            self._legs.popleft()
        standing = max(m for _, _, m in self._legs)
        return 1.0 - leg / standing

    def _thigh_ratio(self, t_s: float, px: np.ndarray) -> dict[Side, float]:
        """Image thigh length over its upright length (95th percentile of the buffer),
        as :mod:`formcheck.series` computes it over a clip."""
        sh, osh = px[L.LEFT_SHOULDER], px[L.RIGHT_SHOULDER]
        now = {}
        for side in (Side.LEFT, Side.RIGHT):
            hip, knee = px[LEG[side][0]], px[LEG[side][1]]
            hjc = corrected_hip_px(hip, px[LEG[side.other][0]], knee, self.correction, shoulder=sh,
                                   other_shoulder=osh, back_view=self.view is View.BACK)
            now[side] = float(np.hypot(*(knee - hjc)))
        self._thighs.append((t_s, now[Side.LEFT], now[Side.RIGHT]))
        while self._thighs[0][0] < t_s - self.live.buffer_s:
            self._thighs.popleft()
        arr = np.array([[a, b] for _, a, b in self._thighs])
        out = {}
        for k, side in enumerate((Side.LEFT, Side.RIGHT)):
            col = arr[:, k][np.isfinite(arr[:, k])]
            out[side] = now[side] / float(np.percentile(col, 95)) if col.size else math.nan
        return out

    def _update_context(self) -> None:
        if len(self._smooth) < 10:
            return
        t = np.array([x[0] for x in self._smooth])
        xyz = np.array([x[1] for x in self._smooth])
        world = np.array([x[2] for x in self._smooth])
        vis = np.array([r[3] for r in list(self._raw)[-len(t):]])
        seq = PoseSequence(t, xyz, world, vis, self.width, self.height)
        if not seq.detected.any():
            return
        ctx = estimate_context(seq)
        if ctx.view.view is not View.UNKNOWN:
            self.view, self.facing = ctx.view.view, ctx.view.facing or 1
        if ctx.sets:
            self.exercise = ctx.exercise
            stance = ctx.sets[-1].stance
            # a change of leg seen twice in a row (2 s of context) starts a new set: a flicker
            # of the short window's stance must not reset the shallow reference every time
            if stance is not self.stance and stance is self._seen_stance:
                self._new_set(stance)
            self._seen_stance = stance

    def _new_set(self, stance: Side, first: Rep | None = None) -> Rep | None:
        """Take ``stance``; the other leg (or from one leg to both) is a new set, whose
        reps are judged "shallow" against its own, as in the file analysis (a weaker
        leg dips less deep). Returns ``first`` as judged in the new set."""
        if self.stance is not None and stance is not self.stance:
            first = self.counter.new_set(first)
        self.stance = self._seen_stance = stance
        return first

    def _state(self, index: int, t_ms: float, px: np.ndarray, xyz: np.ndarray,
               visibility: np.ndarray, found: bool) -> FrameState:
        legs = (Side.LEFT, Side.RIGHT) if self.stance in (None, Side.BOTH) else (self.stance,)
        marks: tuple = ((), None)
        if found:
            ratio = self._thigh_ratio(t_ms / 1000.0, px)
            marks = measure_frame(px, self.view, legs, self.facing, self.correction, ratio)
        return FrameState(index, t_ms, self.width, self.height, px if found else None,
                          visibility if found else None, self.view, self.exercise, self.stance,
                          marks[0], marks[1], self.counter.count, None, self.last,
                          "" if found else "no person in view")

    # -- judging a completed rep with the file analysis ------------------------------------
    def buffer_sequence(self) -> PoseSequence:
        """The raw landmarks of the last ``buffer_s`` seconds (source times)."""
        t, xyz, world, vis = zip(*self._raw)
        return PoseSequence(np.array(t), np.array(xyz), np.array(world), np.array(vis),
                            self.width, self.height)

    def _judge(self, rep: Rep) -> LiveRep:
        number = len(self.reps) + 1
        try:
            analysis = analyze_pose(self.buffer_sequence(), settings=self.settings,
                                    correction=self.correction, source="live")
        except NoPersonError:
            analysis = None
        result = _matching(analysis, rep, self.live.match_s)
        if result is None:  # the short buffer's own segmentation missed it: judge it by its times
            result = judge_rep_at(self.buffer_sequence(), rep, settings=self.settings,
                                  correction=self.correction, index=number)
        if result is not None:
            result = replace(result, index=number)
            self.last = rep_mark(result, self.settings.thresholds)
            self.view = result.view
            rep = self._new_set(result.side, rep)  # on a change of leg this rep starts the set
            self.exercise = analysis.exercise if analysis is not None else self.exercise
        live = LiveRep(number, rep, result)
        self.reps.append(live)
        return live


def _matching(analysis: Analysis | None, rep: Rep, match_s: float) -> RepResult | None:
    """The analysed rep whose bottom is nearest the live rep's, if close enough."""
    if analysis is None or not analysis.reps:
        return None
    best = min(analysis.reps, key=lambda r: abs(r.rep.bottom_s - rep.bottom_s))
    ok = abs(best.rep.bottom_s - rep.bottom_s) <= max(match_s, rep.duration_s / 2)
    return best if ok else None


_MISSING3 = np.full((NUM_LANDMARKS, 3), np.nan)
_MISSING1 = np.full(NUM_LANDMARKS, np.nan)


class LiveSession:
    """The pose model, the subject tracker, a :class:`LiveAnalyzer` and the overlay.

    Use as a context manager (it opens the model); :meth:`process` does one frame.
    """

    def __init__(self, width: int, height: int, settings: Settings | None = None,
                 live: LiveSettings | None = None, overlay: FormOverlay | None = None) -> None:
        from formcheck.tracking import SubjectTracker

        self.settings = settings or Settings()
        self.analyzer = LiveAnalyzer(width, height, self.settings, live)
        self.tracker = SubjectTracker(width, height)
        self.overlay = overlay or FormOverlay()
        self._estimator = None

    def __enter__(self) -> Self:
        from formcheck.estimator import PoseEstimator

        self._estimator = PoseEstimator(self.settings.model, mode="video")
        self._estimator.open()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._estimator is not None:
            self._estimator.close()
            self._estimator = None

    def reset(self) -> None:
        self.analyzer.reset()
        self.tracker.reset()

    def process(self, frame: Frame, *, read_at: float | None = None, draw: bool = True,
                mirror: bool = False, note: str = "") -> LiveFrame:
        """Pose, tracking, filter, reps and (``draw``) the annotated image of one frame."""
        read_at = time.monotonic() if read_at is None else read_at
        if self._estimator is None:
            raise RuntimeError("LiveSession.process() outside 'with LiveSession(...)'")
        candidates = self._estimator.process(frame.image, frame.t_ms)
        idx = self.tracker.update(candidates, frame.t_ms)
        if idx is None:
            xyz, world, vis = _MISSING3, _MISSING3, _MISSING1
        else:
            xyz, world, vis = candidates.xyz[idx], candidates.world[idx], candidates.visibility[idx]
        state, reps = self.analyzer.update(frame.index, frame.t_ms, xyz, world, vis)
        image = self.draw(frame.image, state, mirror=mirror, note=note) if draw else None
        return LiveFrame(frame, state, image, tuple(reps), read_at, time.monotonic())

    def draw(self, image: np.ndarray, state: FrameState, *, mirror: bool = False,
             note: str = "") -> np.ndarray:
        if note:
            state = replace(state, note=note)
        if mirror:
            return self.overlay.annotate(np.ascontiguousarray(image[:, ::-1]), state.mirrored())
        return self.overlay.annotate(image.copy(), state)


# -- the loop ----------------------------------------------------------------------------------
def _open_window(width: int, height: int) -> None:
    """Open the live window, or DisplayError (checked before Qt can abort the process)."""
    hint = "run with --headless (add --record OUT.mp4 to keep the annotated video)"
    if sys.platform.startswith("linux") and not (os.environ.get("DISPLAY")
                                                 or os.environ.get("WAYLAND_DISPLAY")):
        raise DisplayError(f"no display for the live window ($DISPLAY is not set); {hint}")
    loaded = list(sys.modules)
    if "av" in loaded and loaded.index("av") < loaded.index("cv2"):
        raise RuntimeError("PyAV was imported before OpenCV, so the live window would hang "
                           "(PyAV's bundled libxcb): import formcheck.live before formcheck.video, "
                           "formcheck.camera or av")
    try:
        cv2.namedWindow(WINDOW, cv2.WINDOW_NORMAL)
        fit = min(1.0, 1280 / max(width, height))
        cv2.resizeWindow(WINDOW, round(width * fit), round(height * fit))
    except cv2.error as exc:
        raise DisplayError(f"cannot open the live window ({str(exc).strip().splitlines()[-1]}); "
                           f"{hint}") from None


def run_live(source, *, display: bool = True, headless: bool = False,
             record: str | os.PathLike[str] | None = None, mirror: bool = False,
             on_rep: Callable[[LiveRep], None] | None = None,
             on_frame: Callable[[LiveFrame], None] | None = None,
             settings: Settings | None = None, live: LiveSettings | None = None) -> LiveSummary:
    """Run live mode until the source ends or the user quits; returns the session's reps.

    ``source``: a live source (``.read() -> Frame | None``, ``.info``, ``.dropped``;
    :mod:`formcheck.camera`) or a spec for :func:`~formcheck.camera.open_camera`
    (camera index, stream URL, video file played in real time), opened and
    closed here. ``display`` shows the window (keys: q/Esc quit, space pause,
    m mirror, r reset); ``headless`` (or ``display=False``) shows nothing.
    ``record``: write the annotated session to this video (H.264). ``on_rep``
    gets each :class:`LiveRep` when judged (headless: print ``rep.line``);
    ``on_frame`` each :class:`LiveFrame` (tests, benchmarks).

    Raises :class:`DisplayError` without a screen (suggesting ``--headless``),
    :class:`~formcheck.errors.CameraError` for a missing or busy camera,
    :class:`~formcheck.errors.OutputError` for a bad ``record`` path.
    """
    from formcheck.camera import open_camera

    show = display and not headless
    owned = not hasattr(source, "read")
    cam = open_camera(source) if owned else source
    writer, window = None, False
    summary = LiveSummary()
    try:
        width, height = cam.info.width, cam.info.height
        if show:
            _open_window(width, height)
            window = True
        if record is not None:
            writer = VideoWriter(record, width, height, fps_hint=cam.info.fps or 30.0)
        started = time.monotonic()
        with LiveSession(width, height, settings, live) as session:
            paused, last, t0 = False, None, None
            earlier: list[LiveRep] = []  # reps judged before an 'r' reset
            try:
                while True:
                    frame = cam.read()
                    if frame is None:
                        break
                    read_at = time.monotonic()
                    if not paused:
                        out = session.process(frame, read_at=read_at, draw=show or writer is not None
                                              or on_frame is not None, mirror=mirror)
                        last = out
                        summary.frames += 1
                        summary.latencies_ms.append(out.latency_s * 1000.0)
                        for rep in out.reps:
                            if on_rep is not None:
                                on_rep(rep)
                        if writer is not None and out.image is not None:
                            t0 = frame.t_ms if t0 is None else t0
                            writer.write(out.image, frame.t_ms - t0)
                        if on_frame is not None:
                            on_frame(out)
                    if window:
                        if last is not None and last.image is not None:
                            image = last.image if not paused else session.draw(
                                last.frame.image, last.state, mirror=mirror, note="PAUSED")
                            cv2.imshow(WINDOW, cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
                        key = cv2.waitKey(1) & 0xFF
                        if key in (ord("q"), 27) or cv2.getWindowProperty(WINDOW, cv2.WND_PROP_VISIBLE) < 1:
                            break
                        if key == ord(" "):
                            paused = not paused
                        elif key == ord("m"):
                            mirror = not mirror
                        elif key == ord("r"):
                            earlier += session.analyzer.reps
                            session.reset()
            except KeyboardInterrupt:  # Ctrl-C is how a headless session ends: keep what it made
                summary.interrupted = True
            for rep in session.analyzer.finish():
                if on_rep is not None:
                    on_rep(rep)
            summary.reps = earlier + list(session.analyzer.reps)
        summary.duration_s = time.monotonic() - started
        summary.dropped = int(getattr(cam, "dropped", 0))
        if writer is not None:
            if writer.frames_written:
                writer.close()
            else:
                writer.abort()
    except BaseException:
        if writer is not None:
            writer.abort()
        raise
    finally:
        if owned:
            cam.close()
        if window:
            cv2.destroyWindow(WINDOW)
    return summary
