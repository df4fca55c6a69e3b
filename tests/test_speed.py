"""Parallel tracking of one clip gives the same result as one sequential pass.

(Speed itself is measured by bench/speed.py, not asserted here.)
"""

from __future__ import annotations

import numpy as np
import pytest
from conftest import SAMPLES

from formcheck.analysis import analyze_pose
from formcheck.extract import extract_pose, plan_segments


@pytest.mark.parametrize("clip", ["dev02_slsR_front_fppa0-20-30.mp4", "nowva_squat_01.mp4"])
def test_segments_tracked_in_two_processes_match_a_sequential_pass(clip, pose_of):
    path = SAMPLES / clip
    sequential = pose_of(path)
    parallel = extract_pose(path, workers=2)
    assert parallel.meta["segments"] == 2
    np.testing.assert_array_equal(parallel.timestamps_ms, sequential.timestamps_ms)
    assert np.array_equal(parallel.detected, sequential.detected)
    diff = np.abs(parallel.xyz[..., :2] - sequential.xyz[..., :2])
    assert np.nanpercentile(diff, 99) < 0.005 and np.nanmax(diff) < 0.02
    a, b = analyze_pose(sequential), analyze_pose(parallel)
    assert len(a.reps) == len(b.reps)
    for ra, rb in zip(a.reps, b.reps):
        assert abs(ra.rep.bottom_s - rb.rep.bottom_s) < 0.1
        assert {k: c.verdict for k, c in ra.checks.items()} == {k: c.verdict for k, c in rb.checks.items()}
        if ra.fppa_deg is not None:
            assert abs(ra.fppa_deg - rb.fppa_deg) < 1.0


@pytest.mark.parametrize("duration, workers, expected", [
    (30.0, 2, 2), (30.0, 1, 1), (6.0, 2, 1), (9.0, 4, 2), (None, 2, 1), (100.0, 3, 3)])
def test_segment_plan(duration, workers, expected):
    segments = plan_segments(duration, workers)
    assert len(segments) == expected
    assert segments[0][0] == 0.0 and segments[-1][1] == np.inf
    assert all(a[1] == b[0] for a, b in zip(segments, segments[1:]))


@pytest.mark.parametrize("workers", [2, 3])
def test_segment_plan_gives_the_callers_own_segment_the_workers_head_start(workers):
    even = plan_segments(60.0, workers)
    lead = plan_segments(60.0, workers, head_start_s=1.5)
    lengths = [b - a for a, b in lead[:-1]] + [60_000.0 - lead[-1][0]]
    # each worker segment is shorter by the 1.5 s it loses, spread so that all end together
    assert lengths[0] - lengths[1] == pytest.approx(1500.0)
    assert all(x == pytest.approx(lengths[1]) for x in lengths[1:])
    assert sum(lengths) == pytest.approx(60_000.0)
    assert lead[0][1] > even[0][1]


def test_annotated_video_rendered_in_two_processes_is_one_whole_h264_file(tmp_path, analysis_of):
    from formcheck.render import render_annotated
    from formcheck.video import probe, read_frames

    clip = SAMPLES / "dev02_slsR_front_fppa0-20-30.mp4"
    analysis = analysis_of(clip)
    out = render_annotated(analysis, clip, tmp_path / "joined.mp4", workers=2)
    info = probe(out)
    assert info.codec == "h264" and (info.width, info.height) == (480, 854)
    times = [f.t_ms for f in read_frames(out)]
    np.testing.assert_allclose(times, analysis.pose.timestamps_ms, atol=1.0)
    assert not list(tmp_path.glob(".*part*"))  # segment files cleaned up


def test_a_segment_that_starts_on_a_bystander_is_tracked_by_continuity_instead(tmp_path):
    """The subject (small, left) all along; a bigger person on the right from frame 60. One pass
    follows the subject; a fresh segment's detector would pick the bigger one."""
    import cv2

    from formcheck.pose import Landmark as L
    from formcheck.video import VideoWriter, read_frames

    a = [f.image for f in read_frames(SAMPLES / "dev02_slsR_front_fppa0-20-30.mp4")][:290]
    b = [f.image for f in read_frames(SAMPLES / "dev07_slsR_back_fppa0-15-25.mp4")][:290]
    grey = np.full_like(b[0], 128)

    def small(img):
        out = grey.copy()
        out[-427:, 120:360] = cv2.resize(img, (240, 427), interpolation=cv2.INTER_AREA)
        return out

    path = tmp_path / "bystander.mp4"
    with VideoWriter(path, 960, 854, 30) as w:
        for i in range(290):
            w.write(np.concatenate([small(a[i]), b[i] if i >= 60 else grey], axis=1), i * 1000 / 30)
    seq = extract_pose(path, workers=2)
    hip_x = np.nanmean(seq.xyz[:, [L.LEFT_HIP, L.RIGHT_HIP], 0], axis=1)
    assert seq.detection_rate > 0.95 and np.nanmax(hip_x) < 0.5  # never the person on the right
