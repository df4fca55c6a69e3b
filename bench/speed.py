#!/usr/bin/env python3
"""Throughput and memory of formcheck on this machine.

For each clip it prints:
  * bare model frames/s: pose only, one process, frames decoded beforehand;
  * end-to-end ``analyze`` frames/s (all cores), without and with ``--annotate``;
  * peak memory: the largest sum of the resident sets of the main process and
    its workers at one moment (sampled every 50 ms), and of each alone;
  * ratio = end-to-end / (cores x bare), the figure issue 6 targets (>= 0.85
    without annotation, >= 0.7 with).

Each measurement runs in a fresh process so that peak memory is its own.

    python3 bench/speed.py                      # builds the two phone clips below
    python3 bench/speed.py CLIP.mp4 [...]       # your own clips

Without arguments it builds, from the bundled CC0 renders, a 40 s 480x854
clip (four sample clips back to back) and the same clip upscaled to
1080x1920 (a modern phone's portrait video), in a temporary folder.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from fractions import Fraction
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

SAMPLES = ["dev02_slsR_front_fppa0-20-30.mp4", "dev05_slsR_side_lean10-40-10.mp4",
           "dev06_dls_front_fppa0-15-25.mp4", "dev07_slsR_back_fppa0-15-25.mp4"]
BARE_FRAMES = 300  # decoded into memory for the bare-model figure


def build_clips(folder: Path) -> list[Path]:
    import av
    import cv2
    import numpy as np

    from formcheck.video import read_frames

    out = []
    for name, size in (("phone_480x854.mp4", None), ("phone_1080x1920.mp4", (1080, 1920))):
        path = folder / name
        with av.open(str(path), "w") as container:
            st = container.add_stream("libx264", rate=30)
            st.width, st.height = size or (480, 854)
            st.pix_fmt = "yuv420p"
            st.options = {"crf": "20", "preset": "veryfast"}
            i = 0
            for sample in SAMPLES:
                for f in read_frames(ROOT / "sample_videos" / sample):
                    img = f.image if size is None else cv2.resize(f.image, size, interpolation=cv2.INTER_CUBIC)
                    frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(img), format="rgb24")
                    frame.pts, frame.time_base = i, Fraction(1, 30)
                    container.mux(st.encode(frame))
                    i += 1
            container.mux(st.encode())
        out.append(path)
    return out


def _tree_rss_mb(root: int) -> float:
    """Resident memory (MB) of process ``root`` and all its descendants, now (Linux /proc)."""
    parent, rss = {}, {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        pid = int(stat.parent.name)
        parent[pid], rss[pid] = int(fields[1]), int(fields[21])  # ppid, rss in pages
    tree, grew = {root}, True
    while grew:
        more = {pid for pid, pp in parent.items() if pp in tree} - tree
        tree |= more
        grew = bool(more)
    return sum(rss.get(pid, 0) for pid in tree) * os.sysconf("SC_PAGE_SIZE") / 2**20


class TreeMemory:
    """Peak of the summed resident memory of this process and its workers, sampled every 50 ms."""

    def __init__(self) -> None:
        self.peak_mb = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(0.05):
            self.peak_mb = max(self.peak_mb, _tree_rss_mb(os.getpid()))

    def __enter__(self) -> TreeMemory:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()


def _measure(kind: str, clip: str, workers: int) -> dict:
    """One measurement, in this (fresh) process."""
    with TreeMemory() as memory:
        result = _timed(kind, clip, workers)
    return {**result, "peak_total_mb": memory.peak_mb}


def _timed(kind: str, clip: str, workers: int) -> dict:
    import resource

    from formcheck.video import probe

    info = probe(clip)
    t0 = time.perf_counter()
    if kind == "bare":
        from formcheck.estimator import PoseEstimator
        from formcheck.video import read_frames

        frames = [f for _, f in zip(range(BARE_FRAMES), read_frames(clip))]
        with PoseEstimator() as model:
            model.process(frames[0].image, 0.0)
            t0 = time.perf_counter()
            for f in frames[1:]:
                model.process(f.image, f.t_ms)
        n = len(frames) - 1
    else:
        from formcheck.analysis import analyze

        result = analyze(clip, workers=workers)
        n = len(result.raw_pose)
        if kind == "annotate":
            from formcheck.render import render_annotated

            with tempfile.TemporaryDirectory() as tmp:
                render_annotated(result, clip, Path(tmp) / "out.mp4", workers=workers)
    dt = time.perf_counter() - t0
    rss_self = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    rss_children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    return {"kind": kind, "frames": n, "seconds": dt, "fps": n / dt, "clip_s": info.duration_s,
            "peak_mb": rss_self, "peak_worker_mb": rss_children}


def run(kind: str, clip: Path, workers: int) -> dict:
    code = (f"import json,sys; sys.path.insert(0,{str(ROOT)!r}); from bench.speed import _measure; "
            f"print(json.dumps(_measure({kind!r}, {str(clip)!r}, {workers})))")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
    return json.loads(r.stdout.strip().splitlines()[-1])


def main() -> None:
    from formcheck.extract import default_workers

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("clips", nargs="*", type=Path)
    p.add_argument("--workers", type=int, default=default_workers())
    args = p.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        clips = args.clips or build_clips(Path(tmp))
        cores = args.workers
        print(f"cores used: {cores}")
        for clip in clips:
            from formcheck.video import probe

            info = probe(clip)
            bare = run("bare", clip, 1)
            e2e = run("analyze", clip, cores)
            ann = run("annotate", clip, cores)
            print(f"\n{clip.name}: {info.width}x{info.height}, {info.duration_s:.1f} s, {info.fps:.0f} fps")
            print(f"  bare model (1 core)        {bare['fps']:6.1f} frames/s")
            for label, m, target in (("analyze", e2e, 0.85), ("analyze --annotate", ann, 0.7)):
                ratio = m["fps"] / (cores * bare["fps"])
                print(f"  {label:26} {m['fps']:6.1f} frames/s  ({m['fps'] / info.fps:.2f}x real time)  "
                      f"ratio {ratio:.2f} (target {target})  peak memory {m['peak_total_mb']:.0f} MB "
                      f"in all (main {m['peak_mb']:.0f} MB, largest worker {m['peak_worker_mb']:.0f} MB)")


if __name__ == "__main__":
    main()
