"""Live frame sources: cameras (OpenCV) and a video file played as a camera.

Both keep only the NEWEST frame (a live view drops frames rather than queue
them, so what is shown is never more than one processing step old) and share
one interface: ``.read() -> Frame | None``, ``.info``, ``.dropped``,
``.close()``, context manager. ``FileCamera`` stands in for a webcam in tests
(no machine here has one).
"""

from __future__ import annotations

import logging
import os
import threading
import time
from pathlib import Path
from typing import TypeVar

import numpy as np

from formcheck._native import quiet_native_stderr
from formcheck.errors import CameraError
from formcheck.video import MIN_STEP_MS, Frame, VideoInfo, probe, read_frames

log = logging.getLogger(__name__)
_Source = TypeVar("_Source", bound="_LiveSource")


class _NewestSlot:
    """A one-frame hand-over between a producer thread and ``read()``.

    ``keep_all=False``: a new frame replaces an unread one (counted in
    ``dropped``), like a camera. ``keep_all=True``: the producer waits.
    """

    def __init__(self, keep_all: bool) -> None:
        self.keep_all = keep_all
        self.dropped = 0
        self._cond = threading.Condition()
        self._frame: Frame | None = None
        self._done = False
        self._error: BaseException | None = None

    def put(self, frame: Frame) -> None:
        with self._cond:
            if self.keep_all:
                self._cond.wait_for(lambda: self._frame is None or self._done)
            elif self._frame is not None:
                self.dropped += 1
            self._frame = frame
            self._cond.notify_all()

    def finish(self, error: BaseException | None = None) -> None:
        with self._cond:
            self._done, self._error = True, error
            self._cond.notify_all()

    def take(self, timeout_s: float | None) -> Frame | None:
        """The newest unread frame; None at the end; raises the producer's error;
        ``TimeoutError`` if nothing came within ``timeout_s``."""
        with self._cond:
            if not self._cond.wait_for(lambda: self._frame is not None or self._done, timeout_s):
                raise TimeoutError
            frame, self._frame = self._frame, None
            self._cond.notify_all()  # a keep_all producer waits for the empty slot
            if frame is None and self._error is not None:
                raise self._error
            return frame


class _LiveSource:
    """Shared plumbing: a daemon thread fills a :class:`_NewestSlot`."""

    info: VideoInfo
    _timeout_s: float | None = None

    def __init__(self, keep_all: bool) -> None:
        self._slot = _NewestSlot(keep_all)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run_thread, daemon=True,
                                        name=f"formcheck-{type(self).__name__}")

    def _run_thread(self) -> None:
        error: BaseException | None = None
        try:
            self._produce()
        except Exception as exc:  # handed to the reader, raised by read()
            error = exc
        finally:
            self._slot.finish(error)

    def _produce(self) -> None:
        raise NotImplementedError

    @property
    def dropped(self) -> int:
        """Frames replaced by a newer one before ``read()`` took them."""
        return self._slot.dropped

    def read(self) -> Frame | None:
        """Block until a frame newer than the last one returned is ready;
        None when the source has ended or was closed."""
        if self._stop.is_set():
            return None
        try:
            return self._slot.take(self._timeout_s)
        except TimeoutError:
            raise CameraError(f"{self.info.path}: no frame for {self._timeout_s:g} s") from None

    def close(self) -> None:
        """Stop the reader thread (idempotent)."""
        self._stop.set()
        self._slot.finish()
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join(timeout=5.0)

    def __enter__(self: _Source) -> _Source:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class CameraSource(_LiveSource):
    """A webcam (int index) or stream URL read with OpenCV, newest frame first.

    ``t_ms`` is monotonic-clock time since the source was opened. Raises
    :class:`CameraError` if the camera cannot be opened or gives no first frame;
    ``read()`` raises it if no frame arrives for ``frame_timeout_s``.
    """

    def __init__(self, spec: int | str, *, frame_timeout_s: float = 5.0) -> None:
        super().__init__(keep_all=False)
        import cv2  # lazily: only live mode needs OpenCV

        self._cv2 = cv2
        self._timeout_s = frame_timeout_s
        name = f"camera {spec}" if isinstance(spec, int) else f"stream {spec}"
        with quiet_native_stderr():  # OpenCV logs every backend it tries to fd 2
            self._cap = cv2.VideoCapture(spec)
        if not self._cap.isOpened():
            raise CameraError(f"{name} is not available (it cannot be opened; "
                              "is it connected and free?)")
        ok, bgr = self._cap.read()
        if not ok or bgr is None:
            self._cap.release()
            raise CameraError(f"{name} is not available (it opened but gave no frame)")
        self._start, self._index, self._last_ms = time.monotonic(), 0, 0.0
        height, width = bgr.shape[:2]
        fps = float(self._cap.get(cv2.CAP_PROP_FPS) or 0.0)
        self.info = VideoInfo(path=str(spec), width=width, height=height, rotation_deg=0,
                              fps=fps, duration_s=None, frame_count=None,
                              codec=self._cap.getBackendName())
        self._slot.put(self._to_frame(bgr))
        self._thread.start()

    def _to_frame(self, bgr: np.ndarray) -> Frame:
        t_ms = (time.monotonic() - self._start) * 1000.0 if self._index else 0.0
        t_ms = max(t_ms, self._last_ms + MIN_STEP_MS) if self._index else 0.0
        rgb = np.ascontiguousarray(self._cv2.cvtColor(bgr, self._cv2.COLOR_BGR2RGB))
        self._index, self._last_ms = self._index + 1, t_ms
        return Frame(self._index - 1, t_ms, rgb)

    def _produce(self) -> None:
        try:
            while not self._stop.is_set():
                ok, bgr = self._cap.read()
                if not ok or bgr is None:
                    return  # stream ended or camera unplugged
                self._slot.put(self._to_frame(bgr))
        finally:
            self._cap.release()


class FileCamera(_LiveSource):
    """A camera stand-in that plays a video file at its own pace.

    ``realtime=True``: each frame is released when the wall clock (started at
    construction) reaches its ``t_ms``; a slow reader gets only the newest
    frame and the others count in ``dropped``. ``realtime=False``: every frame,
    in order, as fast as the reader takes them (deterministic tests).
    ``read()`` returns None at the end of the file. ``t_ms`` are the file's.
    """

    def __init__(self, path: str | os.PathLike[str], realtime: bool = True) -> None:
        super().__init__(keep_all=not realtime)
        self.path = Path(path)
        self.realtime = realtime
        self.info = probe(self.path)
        self._thread.start()

    def _produce(self) -> None:
        start = time.monotonic()
        frames = read_frames(self.path)
        try:
            for frame in frames:
                if self._stop.is_set():
                    return
                if self.realtime:
                    delay_s = start + frame.t_ms / 1000.0 - time.monotonic()
                    if delay_s > 0 and self._stop.wait(delay_s):
                        return
                self._slot.put(frame)
        finally:
            frames.close()


def open_camera(spec: int | str | os.PathLike[str], *, realtime: bool = True) -> _LiveSource:
    """A live source from a user's spec: an int or digit string is a camera
    index, ``scheme://...`` or ``/dev/video*`` a stream or device for OpenCV,
    anything else a video file played by :class:`FileCamera`."""
    if isinstance(spec, int):
        return CameraSource(spec)
    text = os.fspath(spec)
    if text.strip().isdigit():
        return CameraSource(int(text))
    if text.strip().startswith("-") and text.strip()[1:].isdigit():
        raise CameraError(f"camera index {text.strip()} is not valid: use 0 for the first camera, "
                          "1 for the next, ...")
    if "://" in text or text.startswith("/dev/video"):
        return CameraSource(text)
    return FileCamera(text, realtime=realtime)
