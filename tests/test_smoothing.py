"""Tests for formcheck.smoothing: One Euro filter, gap filling, offline smoothing.

Signals are synthetic landmark tracks in normalised image units with Gaussian
noise (sd 0.003, ~2.6 px on an 854 px high frame), seeded so numbers are stable.
"""

from __future__ import annotations

import numpy as np
import pytest

from formcheck.errors import SettingsError
from formcheck.pose import NUM_LANDMARKS, Landmark, PoseSequence
from formcheck.smoothing import (OneEuroFilter, SmoothingSettings, fill_gaps, smooth,
                                 smooth_online)

FPS = 30.0
FRAME_MS = 1000.0 / FPS
NOISE_SD = 0.003
KNEE = int(Landmark.LEFT_KNEE)


def make_seq(t_ms: np.ndarray, y: np.ndarray, noise_sd: float = 0.0, seed: int = 0) -> PoseSequence:
    """Every landmark at x = 0.5 and y = ``y`` (T,), plus independent noise; world alike."""
    rng = np.random.default_rng(seed)
    n = len(t_ms)
    xyz = np.empty((n, NUM_LANDMARKS, 3))
    xyz[:, :, 0] = 0.5
    xyz[:, :, 1] = y[:, None]
    xyz[:, :, 2] = 0.0
    xyz += rng.normal(0.0, noise_sd, xyz.shape)
    world = (xyz - 0.5) * 2.0 + rng.normal(0.0, noise_sd, xyz.shape)
    vis = np.full((n, NUM_LANDMARKS), 0.9)
    return PoseSequence(t_ms, xyz, world, vis, width=480, height=854)


def frames_ms(n: int) -> np.ndarray:
    return np.arange(n) * FRAME_MS


def jitter(y: np.ndarray) -> float:
    """Frame-to-frame jitter: std of the first difference."""
    return float(np.std(np.diff(y)))


def extrema(t_s: np.ndarray, y: np.ndarray, period_s: float, mid: float) -> list[tuple[float, float]]:
    """(time offset s, amplitude) of every max/min of a sine of ``period_s`` fully inside the clip.

    The peak of a noisy, flat-topped signal is located by fitting a parabola over
    +-period/8 around the true extremum (argmax alone wanders with the noise).
    """
    out, half = [], period_s / 8.0
    k = 0
    while (tp := period_s / 4.0 + k * period_s / 2.0) + half <= t_s[-1]:
        if tp - half >= t_s[0]:
            m = np.abs(t_s - tp) < half
            c = np.polyfit(t_s[m] - tp, y[m], 2)
            tv = -c[1] / (2.0 * c[0])
            out.append((float(tv), float(abs(np.polyval(c, tv) - mid))))
        k += 1
    return out


# -- settings --------------------------------------------------------------------

@pytest.mark.parametrize("kwargs", [
    {"min_cutoff_hz": -1.0},
    {"min_cutoff_hz": 0.0},
    {"beta": -0.1},
    {"d_cutoff_hz": 0.0},
    {"max_gap_ms": -1.0},
    {"min_cutoff_hz": float("nan")},
    {"beta": float("inf")},
    {"enabled": "yes"},
])
def test_settings_reject_out_of_range(kwargs: dict) -> None:
    with pytest.raises(ValueError, match=next(iter(kwargs))) as info:
        SmoothingSettings(**kwargs)
    assert isinstance(info.value, SettingsError)   # the CLI reports it as one line


def test_filter_rejects_bad_parameters() -> None:
    with pytest.raises(ValueError):
        OneEuroFilter(min_cutoff_hz=-1.0)


# -- offline smoothing: jitter and lag --------------------------------------------

@pytest.mark.parametrize("seed", [0, 1, 2])
def test_smooth_cuts_jitter_of_still_landmark(seed: int) -> None:
    t = frames_ms(int(3 * FPS))
    raw = make_seq(t, np.full(len(t), 0.5), NOISE_SD, seed)
    out = smooth(raw, SmoothingSettings())
    for arr_raw, arr_out in ((raw.xyz, out.xyz), (raw.world, out.world)):
        ratio = jitter(arr_raw[:, KNEE, 1]) / jitter(arr_out[:, KNEE, 1])
        assert ratio >= 3.0, f"jitter only reduced {ratio:.2f}x"


# period s, allowed peak shift ms, allowed amplitude error (fraction)
LAG_TABLE = [
    (2.0, FRAME_MS, 0.10),       # a squat rep
    (1.0, 2 * FRAME_MS, 0.10),   # a fast rep
]


@pytest.mark.parametrize("period_s,max_shift_ms,max_amp_err", LAG_TABLE)
@pytest.mark.parametrize("seed", [0, 1])
def test_smooth_keeps_peak_time_and_amplitude(period_s: float, max_shift_ms: float,
                                              max_amp_err: float, seed: int) -> None:
    t = frames_ms(int(6 * FPS))
    t_s = t / 1000.0
    true = 0.5 + 0.08 * np.sin(2 * np.pi / period_s * t_s)
    out = smooth(make_seq(t, true, NOISE_SD, seed))
    peaks = extrema(t_s, out.xyz[:, KNEE, 1], period_s, 0.5)
    assert len(peaks) == int(2 * 6.0 / period_s)   # every max and min of the clip
    for shift_s, amp in peaks:
        assert abs(shift_s) * 1000 <= max_shift_ms
        assert abs(amp / 0.08 - 1.0) <= max_amp_err


def test_forward_only_lags_more_than_forward_backward_but_within_3_frames() -> None:
    period_s = 2.0
    t = frames_ms(int(6 * FPS))
    t_s = t / 1000.0
    seq = make_seq(t, 0.5 + 0.08 * np.sin(np.pi * t_s), NOISE_SD, seed=3)
    filt = OneEuroFilter.from_settings(SmoothingSettings())
    live = np.array([filt(ts, seq.xyz[i, KNEE, 1]) for i, ts in enumerate(t_s)])
    live_lag = np.mean([s for s, _ in extrema(t_s, live, period_s, 0.5)])
    offline_lag = np.mean([abs(s) for s, _ in extrema(t_s, smooth(seq).xyz[:, KNEE, 1], period_s, 0.5)])
    assert live_lag > offline_lag
    assert 0.0 < live_lag <= 3 * FRAME_MS / 1000.0


def test_smooth_online_matches_frame_by_frame_filter() -> None:
    t = frames_ms(60)
    seq = make_seq(t, 0.5 + 0.05 * np.sin(np.pi * t / 1000.0), NOISE_SD)
    filt = OneEuroFilter.from_settings(SmoothingSettings())
    expected = np.stack([filt(ts, seq.xyz[i]) for i, ts in enumerate(seq.times_s)])
    np.testing.assert_allclose(smooth_online(seq).xyz, expected)


def test_variable_frame_rate() -> None:
    rng = np.random.default_rng(7)
    t = np.concatenate([[0.0], np.cumsum(rng.uniform(25.0, 40.0, 120))])
    t_s = t / 1000.0
    still = make_seq(t, np.full(len(t), 0.5), NOISE_SD, seed=4)
    out = smooth(still)
    assert np.all(np.isfinite(out.xyz)) and np.all(np.isfinite(out.world))
    assert jitter(still.xyz[:, KNEE, 1]) / jitter(out.xyz[:, KNEE, 1]) >= 3.0
    assert np.max(np.abs(out.xyz[:, KNEE, 1] - 0.5)) < 3 * NOISE_SD
    true = 0.5 + 0.08 * np.sin(np.pi * t_s)
    moving = smooth(make_seq(t, true, NOISE_SD, seed=5)).xyz[:, KNEE, 1]
    assert np.sqrt(np.mean((moving - true) ** 2)) < NOISE_SD
    for shift_s, amp in extrema(t_s, moving, 2.0, 0.5):
        assert abs(shift_s) * 1000 <= 40.0 and abs(amp / 0.08 - 1.0) <= 0.10


def test_smooth_returns_new_sequence_and_keeps_raw() -> None:
    t = frames_ms(30)
    raw = make_seq(t, np.full(len(t), 0.5), NOISE_SD)
    before = raw.xyz.copy()
    out = smooth(raw)
    assert out is not raw
    np.testing.assert_array_equal(raw.xyz, before)
    np.testing.assert_array_equal(out.visibility, raw.visibility)   # not smoothed
    assert smooth(raw, SmoothingSettings(enabled=False)) is raw


def test_smooth_leaves_long_gap_nan_and_fills_short_one() -> None:
    t = frames_ms(90)
    seq = make_seq(t, np.full(len(t), 0.5), NOISE_SD)
    xyz = seq.xyz.copy()
    xyz[20:25] = np.nan      # 167 ms: filled
    xyz[50:70] = np.nan      # 667 ms: kept
    out = smooth(seq.with_arrays(xyz=xyz))
    assert np.all(np.isfinite(out.xyz[:50])) and np.all(np.isfinite(out.xyz[70:]))
    assert np.all(np.isnan(out.xyz[50:70]))
    assert np.max(np.abs(out.xyz[np.isfinite(out.xyz[:, 0, 0]), :, 1] - 0.5)) < 3 * NOISE_SD


# -- gap filling ------------------------------------------------------------------

# first missing frame, number missing, filled? (30 fps, default max_gap_ms 250)
GAP_TABLE = [
    (10, 1, True),
    (10, 5, True),    # 167 ms
    (10, 7, True),    # 233 ms
    (10, 8, False),   # 267 ms
    (10, 20, False),  # 667 ms
    (0, 3, False),    # leading
    (37, 3, False),   # trailing
]


@pytest.mark.parametrize("start,length,filled", GAP_TABLE)
def test_fill_gaps_table(start: int, length: int, filled: bool) -> None:
    t = frames_ms(40)
    y = 0.3 + 0.01 * np.arange(40) ** 1.5          # not a line: checks interpolation
    seq = make_seq(t, y)
    xyz, world, vis = seq.xyz.copy(), seq.world.copy(), seq.visibility.copy()
    vis[:] = np.linspace(0.5, 0.9, 40)[:, None]
    gap = slice(start, start + length)
    xyz[gap], world[gap], vis[gap] = np.nan, np.nan, np.nan
    out = fill_gaps(seq.with_arrays(xyz=xyz, world=world, visibility=vis),
                    SmoothingSettings().max_gap_ms)
    if not filled:
        assert np.all(np.isnan(out.xyz[gap])) and np.all(np.isnan(out.visibility[gap]))
        return
    a, b = start - 1, start + length
    expected = y[a] + (y[b] - y[a]) * (t[gap] - t[a]) / (t[b] - t[a])
    np.testing.assert_allclose(out.xyz[gap, KNEE, 1], expected, rtol=0, atol=1e-12)
    np.testing.assert_allclose(out.world[gap, KNEE, 1], (expected - 0.5) * 2.0, atol=1e-12)
    np.testing.assert_allclose(out.visibility[gap], min(vis[a, 0], vis[b, 0]))
    np.testing.assert_array_equal(out.xyz[:start], xyz[:start])


def test_fill_gaps_exact_values_five_frames() -> None:
    t = frames_ms(12)
    y = np.array([0.1, 0.2, 0.3, 0.4, np.nan, np.nan, np.nan, np.nan, np.nan, 1.0, 1.1, 1.2])
    out = fill_gaps(make_seq(t, y), 250.0)
    np.testing.assert_allclose(out.xyz[4:9, 0, 1], [0.5, 0.6, 0.7, 0.8, 0.9], atol=1e-12)


def test_fill_gaps_interpolates_in_time_not_in_frames() -> None:
    t = np.array([0.0, 10.0, 100.0, 110.0])
    y = np.array([0.0, np.nan, np.nan, 1.1])
    out = fill_gaps(make_seq(t, y), 250.0)
    np.testing.assert_allclose(out.xyz[:, 0, 1], [0.0, 0.1, 1.0, 1.1], atol=1e-12)
    # (by frame index it would be 0.367 and 0.733)


def test_fill_gaps_per_landmark() -> None:
    t = frames_ms(10)
    seq = make_seq(t, np.linspace(0.2, 0.29, 10))
    xyz = seq.xyz.copy()
    xyz[4:6, KNEE] = np.nan                # only the knee is missing
    out = fill_gaps(seq.with_arrays(xyz=xyz), 250.0)
    np.testing.assert_allclose(out.xyz, seq.xyz, atol=1e-12)


# -- OneEuroFilter state ----------------------------------------------------------

def test_filter_nan_sample_does_not_poison_state() -> None:
    rng = np.random.default_rng(8)
    t_s = np.arange(30) / FPS
    x = 0.5 + rng.normal(0, NOISE_SD, (30, 33, 3))
    with_nan, skipped = OneEuroFilter(), OneEuroFilter()
    out_nan, out_skip = [], {}
    for i, ts in enumerate(t_s):
        sample = x[i].copy()
        if i == 10:
            sample[:] = np.nan
        if i == 20:
            sample[KNEE, 1] = np.nan       # one element only
        out_nan.append(with_nan(ts, sample))
        if i != 10:
            out_skip[i] = skipped(ts, np.where(np.isnan(sample), np.nan, x[i]))
    assert np.all(np.isnan(out_nan[10]))
    assert np.isnan(out_nan[20][KNEE, 1]) and np.isfinite(np.delete(out_nan[20].ravel(), KNEE * 3 + 1)).all()
    for i, expected in out_skip.items():   # a NaN sample is the same as no sample
        np.testing.assert_allclose(out_nan[i], expected)
    assert np.all(np.isfinite(out_nan[-1]))


@pytest.mark.parametrize("gap_s,restarts", [(0.2, False), (0.6, True), (2.0, True)])
def test_filter_restarts_after_long_gap(gap_s: float, restarts: bool) -> None:
    filt = OneEuroFilter(reset_after_s=0.5)
    for i in range(30):
        filt(i / FPS, np.zeros(3))
    out = filt(29 / FPS + gap_s, np.ones(3))
    if restarts:
        np.testing.assert_array_equal(out, np.ones(3))
    else:
        assert np.all((out > 0.0) & (out < 1.0))


def test_filter_reset_and_time_order() -> None:
    filt = OneEuroFilter()
    filt(0.0, np.zeros(2))
    filt(0.033, np.zeros(2))
    with pytest.raises(ValueError):
        filt(0.033, np.zeros(2))
    filt.reset()
    np.testing.assert_array_equal(filt(0.0, np.array([3.0, 4.0])), [3.0, 4.0])
