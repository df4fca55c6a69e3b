"""HTML pages of the web app (jinja2 templates, autoescaped) and the athlete charts."""

from __future__ import annotations

import datetime as dt
import math
import re
from pathlib import Path

import numpy as np
from fastapi.responses import HTMLResponse
from jinja2 import Environment, FileSystemLoader, select_autoescape
from markupsafe import Markup

from formcheck.htmlreport import SIDE_COLOURS, HLine, Line, bar_chart, line_plot
from formcheck.pose import Side
from formcheck.rules import SAFETY_NOTE, Thresholds

TEMPLATES = Path(__file__).parent / "templates"
NAV_MARKER = "<!--formcheck:nav-->"


def status_json(clip: dict) -> dict:
    s = clip.get("summary") or {}
    return {"id": clip["id"], "status": clip["status"], "stage": clip.get("stage"),
            "progress": round(float(clip.get("progress") or 0.0), 3), "error": clip.get("error"),
            "display_name": clip["display_name"], "athlete": clip.get("athlete"),
            "athlete_id": clip["athlete_id"], "session_date": clip["session_date"],
            "rep_count": s.get("rep_count"), "url": f"/clips/{clip['id']}/"}


def status_text(clip: dict) -> str:
    st = clip["status"]
    if st == "running":
        return f"{clip.get('stage') or 'running'} {100 * float(clip.get('progress') or 0):.0f}%"
    if st == "done":
        n = (clip.get("summary") or {}).get("rep_count")
        return f"done: {n} rep{'s' * (n != 1)}" if n is not None else "done"
    if st == "failed":
        return f"failed: {clip.get('error') or 'unknown error'}"
    return st


def _deg(x) -> str:
    return "-" if x is None else f"{x:.0f}°"


def _trunk_cell(summary: dict) -> str:
    """The library's trunk-mean cell: the first leg with a figure, ``~`` marking an estimate."""
    for side in ("right", "left", "both"):
        value = summary.get(f"trunk_mean_{side}_deg")
        if value is not None:
            return _deg(value) + ("~ (estimate)" if _trunk_estimate(summary, side) else "")
    return "-"


class Pages:
    def __init__(self, limits: dict, thresholds: Thresholds | None = None) -> None:
        self.limits, self.t = limits, thresholds or Thresholds()
        self.env = Environment(loader=FileSystemLoader(TEMPLATES), autoescape=select_autoescape(default=True))
        self.env.globals.update(limits=limits, safety=SAFETY_NOTE, status_text=status_text, deg=_deg, trunk_cell=_trunk_cell,
                                max_bytes=int(limits["max_upload_mb"] * 1024 * 1024))

    def _render(self, name: str, status: int = 200, **ctx) -> HTMLResponse:
        ctx.setdefault("today", dt.date.today().isoformat())
        return HTMLResponse(self.env.get_template(name).render(**ctx), status_code=status)

    def message(self, status: int, title: str, text: str) -> HTMLResponse:
        return self._render("message.html", status, title=title, text=text)

    def index(self, athletes: list[dict], recent: list[dict]) -> HTMLResponse:
        return self._render("index.html", title="Library", athletes=athletes, recent=recent)

    def athlete(self, athlete: dict, clips: list[dict], athletes: list[dict]) -> HTMLResponse:
        return self._render("athlete.html", title=athlete["name"], athlete=athlete, clips=clips,
                            athletes=athletes, charts=Markup(athlete_charts(clips, self.t)))

    def clip_status(self, clip: dict) -> HTMLResponse:
        return self._render("clip_status.html", title=clip["display_name"], clip=clip)

    def upload_result(self, status: int, accepted: list[dict], refused: list[tuple[str, str]],
                      athlete_id: int | None = None, duplicates: set[str] = frozenset()) -> HTMLResponse:
        return self._render("upload_result.html", status, title="Upload", accepted=accepted,
                            refused=refused, athlete_id=athlete_id, athletes=[], duplicates=duplicates)

    def report(self, clip: dict, report_html: str) -> HTMLResponse:
        nav = self.env.get_template("_nav.html").render(clip=clip)
        # served here, the video comes from the server: the note on keeping the file beside
        # the report is for the downloaded zip
        served = re.sub(r'<p class="muted" id="video-note">.*?</p>', "", report_html, count=1,
                        flags=re.S)
        return HTMLResponse(served.replace(NAV_MARKER, nav, 1))


def _weighted(clips: list[dict], key: str, side: str) -> float | None:
    if key.startswith("trunk"):  # measured trunk lean only: estimates are not averaged in
        clips = [c for c in clips if not _trunk_estimate(c["summary"], side)]
    pairs = [(c["summary"].get(f"{key}_{side}_deg"), c["summary"].get(f"reps_{side}") or 0) for c in clips]
    pairs = [(v, n) for v, n in pairs if v is not None and n]
    return sum(v * n for v, n in pairs) / sum(n for _, n in pairs) if pairs else None


def _trunk_estimate(summary: dict, side: str) -> bool:
    """The clip's trunk figures for ``side`` are estimates (summaries from before the flag: by view)."""
    flag = summary.get(f"trunk_estimate_{side}")
    return bool(flag) if flag is not None else summary.get("view") != "side"


def athlete_charts(clips: list[dict], t: Thresholds) -> str:
    """Left vs right over all analysed clips, and mean FPPA / trunk per side per session."""
    done = sorted((c for c in clips if c["status"] == "done" and c.get("summary")),
                  key=lambda c: (c["session_date"], c["uploaded_at"]))
    if not done:
        return '<p class="muted">No analysed clips yet.</p>'
    sides = [s for s in ("left", "right", "both") if any(c["summary"].get(f"reps_{s}") for c in done)]
    parts = []
    groups = [(label, [(s, SIDE_COLOURS[Side(s)], _weighted(done, key, s)) for s in sides])
              for key, label in (("fppa_mean", "FPPA mean"), ("fppa_worst", "FPPA worst"),
                                 ("trunk_mean", "trunk mean (measured)"))]
    parts.append(f"<figure>{bar_chart(groups, title='Left vs right, all sessions', y_label='degrees')}"
                 "<figcaption>Rep-weighted means over every analysed clip.</figcaption></figure>")
    left, right = _weighted(done, "fppa_mean", "left"), _weighted(done, "fppa_mean", "right")
    if left is not None and right is not None:
        diff = left - right
        if abs(diff) < t.fppa_sdd_deg:
            note = (f"Knee valgus: no clear difference between the legs ({abs(diff):.1f}° is below the "
                    f"{t.fppa_sdd_deg:g}° smallest detectable difference).")
        else:
            weaker = "left" if diff > 0 else "right"
            note = (f"Knee valgus: more on the {weaker} leg by {abs(diff):.1f}° (above the "
                    f"{t.fppa_sdd_deg:g}° smallest detectable difference): work off the weaker side.")
    else:
        note = "Left vs right needs clips of both legs (film a set on each leg)."
    parts.append(f'<p class="note">{Markup.escape(note)}</p>')
    dates = sorted({c["session_date"] for c in done})
    day = {d: dt.date.fromisoformat(d).toordinal() for d in dates}
    step = max(1, math.ceil(len(dates) / 8))
    ticks = [(day[d], d) for d in dates[::step]]
    for key, title, hl in (("fppa_mean", "Knee valgus (mean FPPA) per session", [
            HLine(t.valgus_watch_deg, "watch", "#e09b1b"), HLine(t.valgus_fault_deg, "fault", "#d83a40")]),
            ("trunk_mean", "Trunk lean (mean, side-view clips) per session", [])):
        lines = []
        for s in sides:
            pts = [(day[c["session_date"]], c["summary"].get(f"{key}_{s}_deg")) for c in done
                   if key != "trunk_mean" or not _trunk_estimate(c["summary"], s)]
            pts = [(x, y) for x, y in pts if y is not None]
            if pts:
                xs, ys = np.array(pts, dtype=float).T
                lines.append(Line(f"{s} leg", SIDE_COLOURS[Side(s)], xs, ys, markers=True))
        if lines:
            parts.append(f"<figure>{line_plot(lines, title=title, y_label='degrees', x_label='session', hlines=hl, x_ticks=ticks)}"
                         "<figcaption>One point per clip. Changes smaller than the smallest detectable "
                         f"difference ({t.fppa_sdd_deg:g}° for FPPA, {t.trunk_sdd_deg:g}° for trunk lean) "
                         "are within measurement noise."
                         + (" Measured trunk lean only (side-view clips): front-view estimates are left out."
                            if key == "trunk_mean" else "") + "</figcaption></figure>")
    return "\n".join(parts)
