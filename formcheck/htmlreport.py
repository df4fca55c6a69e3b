"""Analysis -> one self-contained HTML report per clip.

Everything is inside the file: CSS inline, plots as inline SVG (no JavaScript,
no CDN), keyframes as ``data:`` URIs, and the annotated video either embedded
(``data:`` URI, up to :data:`EMBED_MAX_BYTES`) or referenced relatively (a file
beside the report). The page says which. The page skeleton and its CSS
(including the print rules) are ``formcheck/templates/report.html``, a
:class:`string.Template`; nothing here needs jinja2.
"""

from __future__ import annotations

import base64
import datetime as dt
import math
import tempfile
from collections.abc import Sequence
from html import escape
from pathlib import Path, PurePosixPath
from string import Template
from typing import NamedTuple
from urllib.parse import quote

import numpy as np

from formcheck import __version__
from formcheck.analysis import SQUAT_KNEES, upright_trunk_length
from formcheck.context import View
from formcheck.landmark_io import atomic_output
from formcheck.pose import Side
from formcheck.rules import SAFETY_NOTE, Verdict
from formcheck.series import nanmean_rows

EMBED_MAX_BYTES = 20 * 1024 * 1024  # larger annotated videos are referenced, not embedded
KEYFRAMES_MAX = 3  # keyframes of the worst reps shown
KEYFRAME_MAX_SIDE_PX = 640  # keyframes are scaled down to this and stored as JPEG

TEMPLATE = Path(__file__).parent / "templates" / "report.html"
SEVERITY = {Verdict.FAULT: 3, Verdict.WATCH: 2, Verdict.OK: 1, Verdict.NOT_MEASURABLE: 0}
LABELS = {Verdict.OK: "ok", Verdict.WATCH: "watch", Verdict.FAULT: "fault",
          Verdict.NOT_MEASURABLE: "n/a"}
BAND_COLOURS = {Verdict.OK: "#2e9e50", Verdict.WATCH: "#e09b1b", Verdict.FAULT: "#d83a40",
                Verdict.NOT_MEASURABLE: "#9aa3ad"}
SIDE_COLOURS = {Side.LEFT: "#1f6fd1", Side.RIGHT: "#d9480f", Side.BOTH: "#6f42c1"}
CHECKS = [("knee_valgus", "knee valgus"), ("hip_hinge", "hip hinge"), ("depth", "depth"),
          ("pelvic_drop", "pelvis"), ("lateral_lean", "side lean")]
EST = '<span class="est" title="estimate: this camera view cannot measure it directly">~</span>'
_VIDEO_TYPES = {".mp4": "video/mp4", ".m4v": "video/mp4", ".mov": "video/quicktime",
                ".webm": "video/webm", ".mkv": "video/x-matroska"}


def write_report(analysis, out_path: str | Path, *, video_rel_path: str | None = None,
                 snapshots: list[Path] | None = None, title: str | None = None,
                 embed_video: bool = True) -> Path:
    """Write the report of ``analysis`` to ``out_path`` (atomically) and return it.

    ``video_rel_path``: the annotated video, relative to the report's folder
    (e.g. ``"annotated.mp4"``); embedded when ``embed_video`` and it is at most
    :data:`EMBED_MAX_BYTES`, else referenced. ``snapshots``: PNGs from
    :func:`formcheck.render.save_snapshots`; ``None`` draws them from
    ``analysis.source`` when that file exists, ``[]`` shows none. ``title``
    defaults to the clip's file name (it is escaped).
    """
    out_path = Path(out_path)
    html = render_report(analysis, base_dir=out_path.parent, video_rel_path=video_rel_path,
                         snapshots=snapshots, title=title, embed_video=embed_video)
    with atomic_output(out_path) as f:
        f.write(html)
    return out_path


def render_report(analysis, *, base_dir: Path = Path("."), video_rel_path: str | None = None,
                  snapshots: list[Path] | None = None, title: str | None = None,
                  embed_video: bool = True) -> str:
    """The report as one HTML string (see :func:`write_report`)."""
    a = analysis
    title = title or Path(a.source).name or "clip"
    if snapshots is None:
        snapshots_html = _keyframes_from_source(a)
    else:
        snapshots_html = _keyframes(a, [Path(p) for p in snapshots])
    body = "\n".join([
        _summary(a, title),
        _video(Path(base_dir), video_rel_path, embed_video),
        _rep_table(a),
        _plots(a),
        _left_right(a),
        snapshots_html,
        _notes(a),
    ])
    return Template(TEMPLATE.read_text(encoding="utf-8")).substitute(
        title=escape(title), body=body, version=escape(__version__),
        generated=dt.datetime.now().strftime("%Y-%m-%d %H:%M"))


# -- numbers -------------------------------------------------------------------
def _deg(x: float | None, estimate: bool = False) -> str:
    if x is None or not math.isfinite(x):
        return "-"
    return f"{x:.0f}&deg;" + (EST if estimate else "")


def _badge(check, *, with_conf: bool = True) -> str:
    if check is None:
        return '<span class="muted">-</span>'
    v = check.verdict
    tip = f' title="{escape(check.reason)}"' if check.reason else ""
    out = f'<span class="v {v.value}"{tip}>{LABELS[v]}</span>'
    if with_conf and check.confidence is not None and v is not Verdict.NOT_MEASURABLE:
        out += f' <span class="conf">{check.confidence:.0%}</span>'
    if check.estimate:
        out += EST
    return out


def _worst(verdicts) -> Verdict:
    return max(verdicts, key=SEVERITY.get, default=Verdict.NOT_MEASURABLE)


# -- sections ------------------------------------------------------------------
def _summary(a, title: str) -> str:
    full = a.full_reps
    worst = _worst(r.worst for r in full)
    if not full:
        head = "No complete repetitions were found in this clip."
    else:
        counts = {v: sum(r.worst is v for r in full) for v in SEVERITY}
        legs = ", ".join(sorted({f"{r.side.value} leg" if r.side is not Side.BOTH else "both legs"
                                 for r in full}))
        parts = [f"{counts[v]} {LABELS[v]}" for v in (Verdict.FAULT, Verdict.WATCH, Verdict.OK)
                 if counts[v]]
        head = f"{len(full)} rep{'s' * (len(full) != 1)} ({legs}): " + ", ".join(parts or ["none judged"])
    lines = []
    for name, label in CHECKS:
        checks = [(r.index, r.checks[name]) for r in full if name in r.checks]
        if not checks:
            continue
        if all(c.verdict is Verdict.NOT_MEASURABLE for _, c in checks):
            lines.append(f"<li><b>{label}</b>: not measurable &ndash; {escape(checks[0][1].reason or '')}</li>")
            continue
        bits = []
        for v in (Verdict.FAULT, Verdict.WATCH, Verdict.OK):
            reps = [str(i) for i, c in checks if c.verdict is v]
            if reps:
                bits.append(f'<span class="v {v.value}">{LABELS[v]}</span> '
                            f"rep{'s' * (len(reps) > 1)} {', '.join(reps)}")
        est = EST if any(c.estimate for _, c in checks) else ""
        lines.append(f"<li><b>{label}</b>{est}: {'; '.join(bits)}</li>")
    cues = sorted({cue for r in full for cue in r.cues})
    cue_html = "".join(f"<li>{escape(c)}</li>" for c in cues)
    return f"""<section class="first" id="summary">
<h1>{escape(title)}</h1>
<p class="meta">{escape(a.context.summary())}</p>
<p class="headline {worst.value if full else 'not_measurable'}">{escape(head)}</p>
<ul>{''.join(lines)}</ul>
{f'<h3>What to work on</h3><ul class="cues">{cue_html}</ul>' if cues else ''}
{_side_table(a)}
</section>"""


def _side_table(a) -> str:
    if not a.sides:
        return ""
    rows = "".join(
        f"<tr><td>{s.side.value}</td><td class=num>{s.reps}</td><td class=num>{s.partial_reps}</td>"
        f"<td class=num>{_deg(s.fppa_mean_deg)}</td><td class=num>{_deg(s.fppa_worst_deg)}</td>"
        f"<td class=num>{_deg(s.trunk_mean_deg, _trunk_estimated(a, s.side))}</td>"
        f"<td class=num>{_deg(s.trunk_worst_deg, _trunk_estimated(a, s.side))}</td>"
        f"<td class=num>{s.faults}</td></tr>" for s in a.sides.values())
    return ("<table class=sides><thead><tr><th>leg</th><th>reps</th><th>partial</th><th>FPPA mean</th>"
            "<th>FPPA worst</th><th>trunk mean</th><th>trunk worst</th><th>reps with a fault</th>"
            f"</tr></thead><tbody>{rows}</tbody></table>")


def _leg_words(side: Side) -> str:
    return "both legs" if side is Side.BOTH else f"{side.value} leg"


def _trunk_estimated(a, side: Side) -> bool:
    return a.sides[side].trunk_estimate if side in a.sides else False


def _video(base_dir: Path, rel: str | None, embed: bool) -> str:
    if rel is None:
        return ""
    path = base_dir / rel
    size = path.stat().st_size if path.is_file() else None
    mime = _VIDEO_TYPES.get(path.suffix.lower(), "video/mp4")
    name = escape(PurePosixPath(rel).name)
    if embed and size is not None and size <= EMBED_MAX_BYTES:
        src = f"data:{mime};base64," + base64.b64encode(path.read_bytes()).decode("ascii")
        note = (f"The annotated video is embedded in this file ({size / 1e6:.1f} MB): "
                "the report works on its own.")
    else:
        src = quote(PurePosixPath(rel).as_posix())
        why = ("larger than " + f"{EMBED_MAX_BYTES / 2**20:.0f} MB" if size and size > EMBED_MAX_BYTES
               else "kept as a separate file")
        note = (f"The annotated video is not embedded ({why}): it plays from <code>{name}</code>, "
                "which must stay in the same folder as this report.")
    return f"""<section class="keep no-print" id="video">
<h2>Annotated video</h2>
<video controls playsinline preload="metadata" src="{src}" type="{mime}"></video>
<p class="muted" id="video-note">{note}</p>
</section>"""


def _rep_table(a) -> str:
    if not a.reps:
        return '<section id="reps"><h2>Repetitions</h2><p>No repetitions found.</p></section>'
    rows = []
    for r in a.reps:
        rep, est_knee = r.rep, r.knee_flexion_estimate
        label = f"{r.index}" + (" <small>(partial)</small>" if rep.partial else "")
        if rep.partial:
            cues = f"partial ({escape(rep.reason or 'incomplete')}): not counted"
        else:
            cues = "<br>".join(escape(c) for c in r.cues)
        cells = "".join(f"<td>{_badge(r.checks.get(name))}</td>" for name, _ in CHECKS)
        rows.append(
            f'<tr class="{"partial" if rep.partial else "rep"}"><td>{label}</td><td>{r.side.value}</td>'
            f"<td class=num>{rep.start_s:.1f} &ndash; {rep.bottom_s:.1f} &ndash; {rep.end_s:.1f}</td>"
            f"<td class=num>{_deg(r.knee_flexion_deg, est_knee)}</td><td class=num>{_deg(r.fppa_deg)}</td>"
            f"<td class=num>{_deg(r.trunk_flexion_deg, r.trunk_estimate)}</td>{cells}"
            f'<td class="cues">{cues}</td></tr>')
    heads = "".join(f"<th>{label}</th>" for _, label in CHECKS)
    return f"""<section id="reps">
<h2>Repetitions</h2>
<div class="scroll"><table class="reps"><thead><tr><th>rep</th><th>leg</th>
<th>time (s)<br><small>start &ndash; bottom &ndash; end</small></th>
<th>knee<br>flexion</th><th>FPPA</th><th>trunk</th>{heads}<th>cues</th></tr></thead>
<tbody>
{chr(10).join(rows)}
</tbody></table></div>
<p class="muted">Angles at the bottom of each rep. FPPA: frontal plane projection angle, valgus
(knee inwards) positive. Trunk: flexion from vertical. % = how sure the verdict is;
{EST} = an estimate from a camera view that cannot measure it directly. Hover a verdict for how it
was measured.</p>
</section>"""


def _legs(a) -> list[Side]:
    sides = {r.side for r in a.reps} or {Side.BOTH}
    return [s for s in (Side.LEFT, Side.RIGHT) if s in sides or Side.BOTH in sides]


def _plots(a) -> str:
    s, t, th = a.series, a.series.times_s, a.settings.thresholds
    view = a.view.value
    frontal, side_view = view in ("front", "back"), view == "side"
    def bands_of(check: str) -> list[Band]:  # shaded reps, coloured by this plot's verdict
        return [Band(r.rep.start_s, r.rep.end_s, BAND_COLOURS[_verdict(r, check)], f"rep {r.index}",
                     r.rep.bottom_s) for r in a.reps]

    legs = _legs(a)
    single = a.exercise.value == "single_leg_squat"
    figs = []

    def fig(svg: str, caption: str) -> None:
        figs.append(f"<figure>{svg}<figcaption>{caption}</figcaption></figure>")

    if frontal or side_view:
        key = "knee_flexion_2d_deg" if side_view else "knee_flexion_fs_deg"
        lines = [Line(f"{leg.value} knee", SIDE_COLOURS[leg], t, getattr(s.legs[leg], key),
                      dashed=not side_view) for leg in legs]
        how = ("measured in the image (side view)" if side_view else
               "ESTIMATE from how short thigh and shank look (front/back view)")
        fig(line_plot(lines, title="Knee flexion", y_label="knee flexion (deg)", bands=bands_of("depth"),
                      hlines=[HLine(th.shallow_knee_flexion_deg, "shallow", BAND_COLOURS[Verdict.WATCH])]),
            f"Knee flexion over time, {how}. Shaded: reps, coloured by the depth verdict; dotted: "
            f"the bottom. Dashed: shallow below {th.shallow_knee_flexion_deg:g}&deg;.")
    else:
        figs.append(f'<p class="note">Knee flexion is not plotted: {escape(view)} view.</p>')
    if frontal:
        lines = [Line(f"{leg.value} FPPA", SIDE_COLOURS[leg], t, s.legs[leg].fppa_deg) for leg in legs]
        fig(line_plot(lines, title="Knee valgus (FPPA)", y_label="FPPA (deg, valgus +)",
                      bands=bands_of("knee_valgus"),
                      hlines=_hl(th.valgus_watch_deg, th.valgus_fault_deg)),
            f"FPPA over time (valgus positive); dashed: watch above {th.valgus_watch_deg:g}&deg;, "
            f"fault above {th.valgus_fault_deg:g}&deg;; shaded reps coloured by the knee valgus verdict, "
            "judged at the bottom (dotted).")
    else:
        figs.append(f'<p class="note">Knee valgus (FPPA) is not plotted: it needs a front or back '
                    f"view, this clip is {'an' if view[:1] in 'aeiou' else 'a'} {escape(view)} view.</p>")
    figs.append(_trunk_plot(a, bands_of("hip_hinge"), frontal, side_view, single))
    return f'<section id="plots"><h2>Over time</h2>{"".join(figs)}</section>'


def _verdict(r, check: str) -> Verdict:
    c = r.checks.get(check)
    return c.verdict if c is not None else Verdict.NOT_MEASURABLE


def _hl(watch: float, fault: float) -> list[HLine]:
    return [HLine(watch, "watch", BAND_COLOURS[Verdict.WATCH]),
            HLine(fault, "fault", BAND_COLOURS[Verdict.FAULT])]


def _trunk_plot(a, bands, frontal: bool, side_view: bool, single: bool) -> str:
    s, t, th = a.series, a.series.times_s, a.settings.thresholds
    colour = "#444c56"
    if side_view and single:
        line = Line("trunk flexion", colour, t, s.trunk_flexion_deg)
        hl, how = _hl(th.sls_trunk_watch_deg, th.sls_trunk_fault_deg), "measured (side view)"
    elif side_view:
        shin = nanmean_rows([s.legs[leg].shin_lean_deg for leg in (Side.LEFT, Side.RIGHT)])
        line = Line("trunk minus shin lean", colour, t, s.trunk_flexion_deg - shin)
        hl, how = (_hl(th.squat_trunk_shin_watch_deg, th.squat_trunk_shin_fault_deg),
                   "trunk lean minus shin lean (side view; the trunk should stay about parallel to the shin)")
    elif frontal and single:
        est = a.correction.foreshortened_trunk_deg(s.trunk_length_px, upright_trunk_length(s),
                                                   back_view=a.view is View.BACK)
        line = Line("trunk flexion (estimate)", colour, t, est, dashed=True)
        hl = _hl(th.sls_trunk_watch_deg, th.sls_trunk_fault_deg)
        how = "ESTIMATE from the trunk's foreshortening (front/back view); film from the side to measure"
    else:
        return (f'<p class="note">Trunk lean is not plotted: it needs a side view '
                f"(this clip: {escape(a.view.value)} view).</p>")
    svg = line_plot([line], title="Trunk lean", y_label="degrees", bands=bands, hlines=hl)
    return (f"<figure>{svg}<figcaption>Trunk lean over time, {how}. Dashed: watch above "
            f"{hl[0].y:g}&deg;, fault above {hl[1].y:g}&deg;; shaded reps coloured by the hip hinge verdict.</figcaption></figure>")


def _left_right(a) -> str:
    sides = [s for s in (Side.LEFT, Side.RIGHT, Side.BOTH) if s in a.sides]
    if not sides:
        return ""
    groups = []
    est = " (estimate)" if any(a.sides[s].trunk_estimate for s in sides) else ""
    for key, label in (("fppa_mean_deg", "FPPA mean"), ("fppa_worst_deg", "FPPA worst"),
                       ("trunk_mean_deg", "trunk mean" + est), ("trunk_worst_deg", "trunk worst" + est)):
        groups.append((label, [(s.value, SIDE_COLOURS[s], getattr(a.sides[s], key)) for s in sides]))
    svg = bar_chart(groups, title="Left vs right", y_label="degrees")
    comp = a.comparison
    if comp.get("available"):
        squat = comp.get("basis") == SQUAT_KNEES
        notes = "".join(f"<li><b>{'knee valgus' if k == 'fppa' else 'trunk lean'}</b>"
                        f"{f' ({SQUAT_KNEES})' if squat and k == 'fppa' else ''}: "
                        f"{escape(comp[k]['note'])}</li>" for k in ("fppa", "trunk")
                        if k in comp and not (squat and k == "trunk"))
    else:
        notes = f"<li>{escape(comp.get('note', 'no comparison'))}</li>"
    th = a.settings.thresholds
    return f"""<section id="left-right">
<h2>Left vs right</h2>
<figure>{svg}<figcaption>Mean and worst FPPA and trunk lean per leg (full reps only).</figcaption></figure>
<ul>{notes}</ul>
<p class="muted">A left-right or session-to-session difference in FPPA below the
{th.fppa_sdd_deg:g}&deg; smallest detectable difference (Munro et al. 2012) is no clear difference:
it is within what the measurement itself varies.</p>
</section>"""


def _rank(r) -> tuple:
    vals = [v for v in (r.fppa_deg, r.trunk_flexion_deg) if v is not None]
    return (-SEVERITY[r.worst], r.rep.partial, -max(vals, default=0.0))


def _keyframes_from_source(a) -> str:
    source = Path(a.source) if a.source else None
    if not a.reps or source is None or not source.is_file():
        return _keyframes(a, [])
    from formcheck.errors import FormcheckError
    from formcheck.render import save_snapshots

    with tempfile.TemporaryDirectory(prefix="formcheck-keyframes-") as tmp:
        try:
            paths = save_snapshots(a, source, tmp)
        except FormcheckError as exc:
            return _keyframes(a, [], problem=str(exc))
        return _keyframes(a, paths)


def _keyframes(a, snapshots: list[Path], problem: str | None = None) -> str:
    by_index = {}
    for p in snapshots:
        if p.name.startswith("rep") and p.name[3:5].isdigit():
            by_index[int(p.name[3:5])] = p
    chosen = [r for r in sorted(a.reps, key=_rank) if r.index in by_index][:KEYFRAMES_MAX]
    if not chosen:
        why = f" ({escape(problem)})" if problem else ""
        return (f'<section id="keyframes"><h2>Keyframes</h2><p class="muted">No keyframes{why}.'
                "</p></section>")
    figs = []
    for r in chosen:
        uri = _image_uri(by_index[r.index])
        checks = ", ".join(f"{label} {LABELS[r.checks[n].verdict]}" for n, label in CHECKS[:2]
                           if n in r.checks)
        figs.append(f'<figure><img src="{uri}" alt="rep {r.index} at the bottom">'
                    f"<figcaption>Rep {r.index} ({_leg_words(r.side)}) at {r.rep.bottom_s:.1f} s: "
                    f"{escape(checks)}; FPPA {_deg(r.fppa_deg)}, trunk "
                    f"{_deg(r.trunk_flexion_deg, r.trunk_estimate)}</figcaption></figure>")
    return f"""<section id="keyframes">
<h2>Keyframes of the worst reps</h2>
<div class="keyframes">{''.join(figs)}</div>
<p class="muted">The bottom frame of each rep, annotated with the measured lines.</p>
</section>"""


def _image_uri(path: Path) -> str:
    """A PNG as a compact JPEG ``data:`` URI, scaled down to KEYFRAME_MAX_SIDE_PX."""
    import cv2

    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if image is None:
        return "data:image/png;base64," + base64.b64encode(path.read_bytes()).decode("ascii")
    h, w = image.shape[:2]
    scale = KEYFRAME_MAX_SIDE_PX / max(h, w)
    if scale < 1:
        image = cv2.resize(image, (round(w * scale), round(h * scale)), interpolation=cv2.INTER_AREA)
    ok, buf = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, 85])
    if not ok:
        return "data:image/png;base64," + base64.b64encode(path.read_bytes()).decode("ascii")
    return "data:image/jpeg;base64," + base64.b64encode(buf.tobytes()).decode("ascii")


def _notes(a) -> str:
    reasons = sorted({c.reason for r in a.reps for c in r.checks.values()
                      if c.verdict is Verdict.NOT_MEASURABLE and c.reason})
    notes = "".join(f'<p class="note">{escape(n)}</p>' for n in a.notes)
    nm = "".join(f"<li>{escape(x)}</li>" for x in reasons)
    estimated = sorted({c.reason for r in a.reps if not r.rep.partial for c in r.checks.values()
                        if c.estimate and c.verdict is not Verdict.NOT_MEASURABLE and c.reason})
    est = "".join(f"<li>{escape(x)}</li>" for x in estimated)
    th = a.settings.thresholds
    return f"""<section id="notes">
<h2>Camera view and what could not be measured</h2>
<p>{escape(a.context.summary())}</p>
{notes}
{f'<h3>Not measured</h3><ul>{nm}</ul>' if nm else ''}
{f'<h3>Estimated only (marked ~)</h3><ul>{est}</ul>' if est else ''}
{'' if nm or est else '<p class="muted">Every check could be measured in this view.</p>'}
<h3>Thresholds used</h3>
<ul><li>Knee valgus (FPPA): watch above {th.valgus_watch_deg:g}&deg;, fault above {th.valgus_fault_deg:g}&deg;.</li>
<li>Trunk flexion, single-leg dip: watch above {th.sls_trunk_watch_deg:g}&deg;, fault above {th.sls_trunk_fault_deg:g}&deg;.</li>
<li>Trunk minus shin lean, squat: watch above {th.squat_trunk_shin_watch_deg:g}&deg;, fault above {th.squat_trunk_shin_fault_deg:g}&deg;.</li>
<li>Depth: shallow below {th.shallow_knee_flexion_deg:g}&deg; of knee flexion.</li></ul>
<p class="muted">Thresholds are defaults from the literature, not diagnoses; there is no universal cut-off.</p>
<h2 class="no-print-rule">Safety</h2>
<p class="safety">{escape(SAFETY_NOTE)}</p>
</section>"""


# -- inline SVG charts: no JavaScript, no library --------------------------------
class Line(NamedTuple):
    label: str
    colour: str
    xs: np.ndarray
    ys: np.ndarray
    dashed: bool = False  # estimates are drawn dashed
    markers: bool = False


class HLine(NamedTuple):
    y: float
    label: str
    colour: str


class Band(NamedTuple):
    x0: float
    x1: float
    colour: str
    label: str = ""
    mark: float | None = None  # a dotted vertical line inside (the rep bottom)


_ML, _MR, _MT, _MB = 56, 78, 24, 50  # margins: left, right (threshold labels), top, bottom
_MAX_POINTS = 1500  # longer series are thinned (a 10-minute clip has 18,000 frames)


def _step(span: float, target: int = 6) -> float:
    raw = max(span, 1e-9) / target
    mag = 10 ** math.floor(math.log10(raw))
    return next(m * mag for m in (1, 2, 2.5, 5, 10) if raw <= m * mag)


def _ticks(lo: float, hi: float, step: float) -> list[float]:
    start = math.ceil(lo / step - 1e-9) * step
    return [start + k * step for k in range(int((hi - start) / step + 1e-9) + 1)]


def _num(v: float) -> str:
    return f"{v:.0f}" if abs(v - round(v)) < 1e-9 else f"{v:g}"


def _y_range(values: list[float]) -> tuple[float, float, float]:
    lo, hi = min(values), max(values)
    pad = max((hi - lo) * 0.08, 1.0)
    step = _step(hi - lo + 2 * pad)
    return math.floor((lo - pad) / step) * step, math.ceil((hi + pad) / step) * step, step


def _svg_open(title: str, width: int, height: int) -> list[str]:
    return [f'<svg class="plot" viewBox="0 0 {width} {height}" role="img" aria-label="{escape(title)}">',
            f"<title>{escape(title)}</title>",
            f'<text x="{_ML}" y="15" font-size="14" font-weight="600" fill="#1f2328">{escape(title)}</text>']


def _y_axis(out: list[str], y0: float, y1: float, step: float, py, width: int, y_label: str,
            height: int) -> None:
    for v in _ticks(y0, y1, step):
        y = py(v)
        out.append(f'<line x1="{_ML}" x2="{width - _MR}" y1="{y:.1f}" y2="{y:.1f}" stroke="#e4e8ec"/>'
                   f'<text x="{_ML - 6}" y="{y + 4:.1f}" font-size="11" text-anchor="end" '
                   f'fill="#57606a">{_num(v)}</text>')
    mid = (_MT + height - _MB) / 2
    out.append(f'<text transform="translate(14 {mid:.0f}) rotate(-90)" font-size="11" '
               f'text-anchor="middle" fill="#57606a">{escape(y_label)}</text>')


def line_plot(lines: Sequence[Line], *, title: str, y_label: str, x_label: str = "time (s)",
              bands: Sequence[Band] = (), hlines: Sequence[HLine] = (),
              x_ticks: Sequence[tuple[float, str]] | None = None, width: int = 900,
              height: int = 250) -> str:
    """Lines over x (NaN breaks a line), shaded bands, dashed horizontal thresholds."""
    xs = np.concatenate([np.asarray(ln.xs, float) for ln in lines]) if lines else np.zeros(0)
    ys = np.concatenate([np.asarray(ln.ys, float) for ln in lines]) if lines else np.zeros(0)
    ok = np.isfinite(xs) & np.isfinite(ys)
    if not ok.any():
        return f'<p class="note">{escape(title)}: nothing measured.</p>'
    x0, x1 = float(xs[ok].min()), float(xs[ok].max())
    if x_ticks:
        x0, x1 = min(x0, min(t for t, _ in x_ticks)), max(x1, max(t for t, _ in x_ticks))
    if any(ln.markers for ln in lines):  # keep the end points' markers inside the frame
        pad = max((x1 - x0) * 0.04, 0.5)
        x0, x1 = x0 - pad, x1 + pad
    x1 = x1 if x1 > x0 else x0 + 1.0
    y0, y1, step = _y_range(list(ys[ok]) + [h.y for h in hlines])

    def px(x: float) -> float:
        return _ML + (x - x0) / (x1 - x0) * (width - _ML - _MR)

    def py(y: float) -> float:
        return _MT + (y1 - y) / (y1 - y0) * (height - _MT - _MB)

    out = _svg_open(title, width, height)
    bottom = height - _MB
    for b in bands:
        a, z = px(max(b.x0, x0)), px(min(b.x1, x1))
        out.append(f'<rect x="{a:.1f}" y="{_MT}" width="{max(z - a, 1):.1f}" height="{bottom - _MT}" '
                   f'fill="{b.colour}" fill-opacity="0.15"/>')
        if b.mark is not None:
            m = px(b.mark)
            out.append(f'<line x1="{m:.1f}" x2="{m:.1f}" y1="{_MT}" y2="{bottom}" stroke="{b.colour}" '
                       'stroke-dasharray="2 3"/>')
        if b.label:
            out.append(f'<text x="{(a + z) / 2:.1f}" y="{_MT + 12}" font-size="10" text-anchor="middle" '
                       f'fill="#57606a">{escape(b.label)}</text>')
    _y_axis(out, y0, y1, step, py, width, y_label, height)
    ticks = x_ticks or [(v, _num(v)) for v in _ticks(x0, x1, _step(x1 - x0, 10))]
    for v, text in ticks:
        out.append(f'<text x="{px(v):.1f}" y="{bottom + 15}" font-size="11" text-anchor="middle" '
                   f'fill="#57606a">{escape(text)}</text>')
    out.append(f'<rect x="{_ML}" y="{_MT}" width="{width - _ML - _MR}" height="{bottom - _MT}" '
               'fill="none" stroke="#8c959f"/>')
    for h in hlines:
        y = py(h.y)
        out.append(f'<line x1="{_ML}" x2="{width - _MR}" y1="{y:.1f}" y2="{y:.1f}" stroke="{h.colour}" '
                   f'stroke-width="1.5" stroke-dasharray="7 4"/><text x="{width - _MR + 4}" '
                   f'y="{y + 4:.1f}" font-size="11" fill="{h.colour}">{escape(h.label)} {_num(h.y)}&#176;</text>')
    for ln in lines:
        x, y = np.asarray(ln.xs, float), np.asarray(ln.ys, float)
        stride = max(1, math.ceil(len(x) / _MAX_POINTS))
        x, y = x[::stride], y[::stride]
        finite = np.isfinite(x) & np.isfinite(y)
        dash = ' stroke-dasharray="6 3"' if ln.dashed else ""
        for run in np.split(np.arange(len(x)), np.flatnonzero(np.diff(finite.astype(int))) + 1):
            if not finite[run[0]]:
                continue
            pts = " ".join(f"{px(x[i]):.1f},{py(y[i]):.1f}" for i in run)
            out.append(f'<polyline points="{pts}" fill="none" stroke="{ln.colour}" stroke-width="2"{dash}/>')
        if ln.markers:
            out.extend(f'<circle cx="{px(x[i]):.1f}" cy="{py(y[i]):.1f}" r="3.5" fill="{ln.colour}"/>'
                       for i in np.flatnonzero(finite))
    lx = _ML
    for ln in lines:
        dash = ' stroke-dasharray="6 3"' if ln.dashed else ""
        out.append(f'<line x1="{lx}" x2="{lx + 22}" y1="{height - 10}" y2="{height - 10}" '
                   f'stroke="{ln.colour}" stroke-width="2.5"{dash}/><text x="{lx + 27}" '
                   f'y="{height - 6}" font-size="11" fill="#1f2328">{escape(ln.label)}</text>')
        lx += 40 + 7 * len(ln.label)
    out.append(f'<text x="{width - _MR}" y="{height - 6}" font-size="11" text-anchor="end" '
               f'fill="#57606a">{escape(x_label)}</text></svg>')
    return "\n".join(out)


def bar_chart(groups: Sequence[tuple[str, Sequence[tuple[str, str, float | None]]]], *, title: str,
              y_label: str, width: int = 900, height: int = 260) -> str:
    """Grouped bars ``[(group, [(bar label, colour, value or None), ...]), ...]``."""
    values = [v for _, bars in groups for _, _, v in bars if v is not None and math.isfinite(v)]
    if not values:
        return f'<p class="note">{escape(title)}: nothing measured.</p>'
    y0, y1, step = _y_range(values + [0.0])

    def py(y: float) -> float:
        return _MT + (y1 - y) / (y1 - y0) * (height - _MT - _MB)

    out = _svg_open(title, width, height)
    _y_axis(out, y0, y1, step, py, width, y_label, height)
    gw = (width - _ML - _MR) / max(len(groups), 1)
    zero = py(0.0)
    legend: dict[str, str] = {}
    for g, (name, bars) in enumerate(groups):
        bw = gw * 0.7 / max(len(bars), 1)
        for b, (label, colour, v) in enumerate(bars):
            legend.setdefault(label, colour)
            x = _ML + g * gw + gw * 0.15 + b * bw
            if v is None or not math.isfinite(v):
                out.append(f'<text x="{x + bw / 2:.1f}" y="{zero - 4:.1f}" font-size="10" '
                           f'text-anchor="middle" fill="#57606a">n/a</text>')
                continue
            top = min(py(v), zero)
            out.append(f'<rect x="{x + 2:.1f}" y="{top:.1f}" width="{bw - 4:.1f}" '
                       f'height="{max(abs(py(v) - zero), 1):.1f}" fill="{colour}"/>'
                       f'<text x="{x + bw / 2:.1f}" y="{top - 4:.1f}" font-size="11" text-anchor="middle" '
                       f'fill="#1f2328">{v:.0f}&#176;</text>')
        out.append(f'<text x="{_ML + (g + 0.5) * gw:.1f}" y="{height - _MB + 16}" font-size="12" '
                   f'text-anchor="middle" fill="#1f2328">{escape(name)}</text>')
    out.append(f'<line x1="{_ML}" x2="{width - _MR}" y1="{zero:.1f}" y2="{zero:.1f}" stroke="#57606a"/>')
    lx = _ML
    for label, colour in legend.items():
        out.append(f'<rect x="{lx}" y="{height - 17}" width="12" height="12" fill="{colour}"/>'
                   f'<text x="{lx + 17}" y="{height - 7}" font-size="11" fill="#1f2328">{escape(label)}</text>')
        lx += 30 + 7 * len(label)
    out.append("</svg>")
    return "\n".join(out)
