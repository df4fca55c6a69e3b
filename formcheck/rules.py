"""Form rules: documented thresholds, verdicts with their confidence, and cues.

Every default is written once, in :class:`Thresholds`, with its source; the
CLI help, the TOML settings file and the docs read it from here.

A verdict is ``ok``, ``watch``, ``fault`` or ``not_measurable``. Its
confidence is the probability that the true value lies in the verdict's band,
assuming the measurement error is normal with the SD measured against the
rendered ground truth (``formcheck.correction``): a 16° FPPA read with 3° SD is
a fault with confidence 0.63, a 25° one with 0.9997.
"""

from __future__ import annotations

import enum
import math
from dataclasses import dataclass, field, fields


class Verdict(str, enum.Enum):
    OK = "ok"
    WATCH = "watch"
    FAULT = "fault"
    NOT_MEASURABLE = "not_measurable"


@dataclass(frozen=True)
class Thresholds:
    """Rule thresholds. Units are in the names; each default cites its source."""

    # Knee valgus, FPPA at the bottom of the rep (front or back view).
    # Controls: women 8.4 +/- 5.1 deg, men ~7 deg in single-leg squats (PubMed 24380805,
    # SCIRP 109897); control mean + 1 SD is ~13 deg (women) / ~10 deg (men): watch above 10.
    valgus_watch_deg: float = 10.0
    # Patellofemoral pain 16.8 +/- 5.4 deg (PubMed 24380805); domain.md: flag above about 15.
    valgus_fault_deg: float = 15.0
    # Bilateral squat, when FPPA cannot be used (deep squat with the thighs pointing at
    # the camera, or an oblique view): knee width / ankle width at the bottom, relative
    # to the same ratio standing at the start of the rep. domain.md: knee width / ankle
    # width < 1 means the knees cave in; dividing by the standing ratio removes the
    # person's stance width and build. Knees tracking over the toes widen (measured
    # 1.1-1.5 on front-view control clips); no published cut-off: watch when the knees
    # close in by 10 % relative to the ankles, fault by 20 % (heuristic, documented).
    knee_width_change_watch: float = 0.9
    knee_width_change_fault: float = 0.8
    # Forward hip hinge in a single-leg dip: trunk flexion from vertical (side view).
    # Healthy SLS peak trunk flexion 26.6 +/- 11.3 deg (men), 23.1 +/- 15.3 (women)
    # (doi 10.1186/s12891-015-0739-3); domain.md: flag past about 35-40 deg.
    sls_trunk_watch_deg: float = 35.0
    sls_trunk_fault_deg: float = 40.0
    # Squats: trunk lean minus shin lean (trunk roughly parallel to the shin is the
    # coaching norm); domain.md: flag when the trunk exceeds the shin by 15-20 deg.
    squat_trunk_shin_watch_deg: float = 15.0
    squat_trunk_shin_fault_deg: float = 20.0
    # Contralateral pelvic drop at the bottom of a single-leg dip (front/back view).
    # Visual pelvis rating is unreliable (kappa 0.17, domain.md): shown as watch only.
    pelvic_drop_watch_deg: float = 8.0
    # Lateral trunk lean at the bottom (front/back view); Crossley 2011 rating scheme
    # item; no published 2D cut-off: watch above 10 deg (coaching heuristic).
    lateral_lean_watch_deg: float = 10.0
    # Depth: a single-leg dip "as if to sit on a chair" bends the knee ~60-90 deg;
    # below 45 deg of knee flexion the rep is reported as shallow (watch).
    shallow_knee_flexion_deg: float = 45.0
    # Left vs right: smallest detectable difference of 2D FPPA is 7.5-8.9 deg
    # (Munro et al. 2012): a smaller side difference is "no clear difference".
    fppa_sdd_deg: float = 8.0
    # Trunk lean side difference below this is noise (2x the trunk SEM ~ 2.5-3 deg).
    trunk_sdd_deg: float = 6.0

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if not isinstance(value, (int, float)) or isinstance(value, bool) or not math.isfinite(value):
                raise ValueError(f"{f.name} must be a number, got {value!r}")
            lo, hi = _RANGES.get(f.name, (0.0, 90.0))
            if not lo <= value <= hi:
                raise ValueError(f"{f.name} = {value} is out of range ({lo} to {hi})")
        pairs = [("valgus_watch_deg", "valgus_fault_deg"), ("sls_trunk_watch_deg", "sls_trunk_fault_deg"),
                 ("squat_trunk_shin_watch_deg", "squat_trunk_shin_fault_deg")]
        for watch, fault in pairs:
            if getattr(self, watch) > getattr(self, fault):
                raise ValueError(f"{watch} must not exceed {fault}")
        if self.knee_width_change_fault > self.knee_width_change_watch:
            raise ValueError("knee_width_change_fault must not exceed knee_width_change_watch")

    @classmethod
    def field_help(cls) -> dict[str, str]:
        """name -> default with unit, for help texts generated from this class."""
        return {f.name: f"{f.default}" for f in fields(cls)}


_RANGES = {
    "knee_width_change_watch": (0.0, 2.0),
    "knee_width_change_fault": (0.0, 2.0),
    "shallow_knee_flexion_deg": (0.0, 150.0),
    "fppa_sdd_deg": (0.0, 45.0),
    "trunk_sdd_deg": (0.0, 45.0),
}


@dataclass(frozen=True)
class Check:
    """One rule's result for one rep."""

    verdict: Verdict
    value: float | None = None
    confidence: float | None = None  # P(true value is in the verdict's band)
    cue: str | None = None
    reason: str | None = None  # why not measurable, or how it was measured
    estimate: bool = False  # True when measured from a view that only allows an estimate
    extra: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        d = {"verdict": self.verdict.value, "value": _round(self.value),
             "confidence": _round(self.confidence, 2), "cue": self.cue, "reason": self.reason,
             "estimate": self.estimate}
        d.update({k: _round(v) if isinstance(v, float) else v for k, v in self.extra.items()})
        return d


def _round(x: float | None, nd: int = 1) -> float | None:
    return None if x is None or not math.isfinite(x) else round(float(x), nd)


def _phi(z: float) -> float:
    return 0.5 * (1.0 + math.erf(z / math.sqrt(2.0)))


def banded(value: float, watch: float, fault: float, sd: float, *, higher_is_worse: bool = True
           ) -> tuple[Verdict, float]:
    """Verdict of ``value`` against two thresholds, and the probability it is right.

    With ``higher_is_worse`` False (ratios where lower is worse) the bands flip.
    """
    if not higher_is_worse:
        value, watch, fault = -value, -watch, -fault
    sd = max(sd, 1e-9)
    p_above_fault = 1.0 - _phi((fault - value) / sd)
    p_above_watch = 1.0 - _phi((watch - value) / sd)
    if value > fault:
        return Verdict.FAULT, p_above_fault
    if value > watch:
        return Verdict.WATCH, p_above_watch - p_above_fault
    return Verdict.OK, 1.0 - p_above_watch


def not_measurable(reason: str) -> Check:
    return Check(Verdict.NOT_MEASURABLE, reason=reason)


CUES = {
    "knee_valgus": "Keep the bending knee in line with your big toe; don't let it drop inwards.",
    "knee_valgus_squat": "Push your knees out in line with your toes.",
    "hip_hinge": "Sit back so your glutes work; don't fold forward at the hips.",
    "hip_hinge_squat": "Keep your back straight and chest up; let the hips sit back and down.",
    "pelvic_drop": "Keep your hips level; don't let the free side drop.",
    "lateral_lean": "Keep your trunk upright; don't lean to the side.",
    "shallow": "Go a little lower, as if to sit on a chair (only as far as is comfortable).",
}

SAFETY_NOTE = ("Some muscle soreness is normal. Sharp or shooting pain is not: stop, and see a "
               "physiotherapist or doctor. formcheck gives coaching cues; it does not diagnose.")


def check_valgus_fppa(fppa_deg: float, sd_deg: float, t: Thresholds, *, bilateral: bool) -> Check:
    verdict, conf = banded(fppa_deg, t.valgus_watch_deg, t.valgus_fault_deg, sd_deg)
    cue = None
    if verdict is not Verdict.OK:
        cue = CUES["knee_valgus_squat" if bilateral else "knee_valgus"]
    return Check(verdict, fppa_deg, conf, cue, reason="FPPA at the bottom of the rep")


def check_valgus_width(change: float, sd: float, t: Thresholds, *, reason: str, estimate: bool,
                       extra: dict) -> Check:
    """Knee-to-ankle width ratio at the bottom / the same standing (lower is worse)."""
    verdict, conf = banded(change, t.knee_width_change_watch, t.knee_width_change_fault, sd,
                           higher_is_worse=False)
    cue = CUES["knee_valgus_squat"] if verdict is not Verdict.OK else None
    return Check(verdict, None, conf, cue, reason=reason, estimate=estimate,
                 extra={"knee_width_change": round(change, 2), **extra})


def check_trunk(value_deg: float, sd_deg: float, t: Thresholds, *, bilateral: bool,
                estimate: bool = False, reason: str = "") -> Check:
    if bilateral:
        verdict, conf = banded(value_deg, t.squat_trunk_shin_watch_deg, t.squat_trunk_shin_fault_deg,
                               sd_deg)
        cue = CUES["hip_hinge_squat"]
    else:
        verdict, conf = banded(value_deg, t.sls_trunk_watch_deg, t.sls_trunk_fault_deg, sd_deg)
        cue = CUES["hip_hinge"]
    return Check(verdict, value_deg, conf, cue if verdict is not Verdict.OK else None,
                 reason=reason, estimate=estimate)


def check_single_threshold(name: str, value: float, watch: float, sd: float, reason: str) -> Check:
    """A rule with a watch level only (pelvic drop, lateral lean, depth)."""
    verdict, conf = banded(value, watch, math.inf, sd)
    return Check(verdict, value, conf, CUES[name] if verdict is not Verdict.OK else None, reason=reason)


def check_depth(knee_flexion_deg: float, sd: float, t: Thresholds, *, estimate: bool = False) -> Check:
    verdict, conf = banded(-knee_flexion_deg, -t.shallow_knee_flexion_deg, math.inf, sd)
    how = ("ESTIMATE from how short the thigh and shank look (front/back view)" if estimate
           else "side view")
    return Check(verdict, knee_flexion_deg, conf,
                 CUES["shallow"] if verdict is not Verdict.OK else None,
                 reason=f"peak knee flexion ({how})", estimate=estimate)


def confidence_word(p: float | None) -> str:
    if p is None:
        return ""
    return "high" if p >= 0.8 else "moderate" if p >= 0.6 else "low"
