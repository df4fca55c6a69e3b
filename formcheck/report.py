"""Analysis -> terminal table (rich), JSON and CSV files."""

from __future__ import annotations

import csv
import json
from pathlib import Path

from rich.console import Console
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from formcheck.analysis import SQUAT_KNEES, Analysis
from formcheck.landmark_io import atomic_output
from formcheck.rules import SAFETY_NOTE, Verdict

COLOURS = {Verdict.OK: "green", Verdict.WATCH: "yellow", Verdict.FAULT: "red",
           Verdict.NOT_MEASURABLE: "bright_black"}
LABELS = {Verdict.OK: "ok", Verdict.WATCH: "watch", Verdict.FAULT: "FAULT",
          Verdict.NOT_MEASURABLE: "n/a"}

CSV_COLUMNS = ["index", "side", "start_s", "bottom_s", "end_s", "partial", "partial_reason",
               "knee_flexion_deg", "knee_flexion_estimate", "fppa_deg", "fppa_raw_deg", "trunk_flexion_deg",
               "trunk_flexion_estimate", "knee_valgus", "knee_valgus_confidence", "hip_hinge",
               "hip_hinge_confidence", "depth", "pelvic_drop", "lateral_lean", "cues"]


def _fmt(x: float | None, unit: str = "°") -> str:
    return "-" if x is None else f"{x:.0f}{unit}"


def _verdict_cell(analysis_rep, name: str) -> Text:
    check = analysis_rep.checks.get(name)
    if check is None:
        return Text("-", style="bright_black")
    text = Text(LABELS[check.verdict], style=COLOURS[check.verdict])
    if check.confidence is not None and check.verdict is not Verdict.NOT_MEASURABLE:
        text.append(f" {check.confidence:.0%}", style="bright_black")
    if check.estimate:
        text.append("~", style="bright_black")
    return text


def print_analysis(a: Analysis, console: Console) -> None:
    """The per-rep table, the left/right summary and the notes."""
    console.print(f"[bold]{Path(a.source).name}[/]: {a.context.summary()}")
    table = Table(title=None, show_lines=False, header_style="bold", pad_edge=False)
    for col in ("rep", "leg", "time s", "knee", "FPPA", "valgus", "trunk", "hip hinge"):
        table.add_column(col, no_wrap=True)
    cues: list[str] = []
    for r in a.reps:
        label = f"{r.index}" + ("p" if r.rep.partial else "")
        trunk = _fmt(r.trunk_flexion_deg) + ("~" if r.trunk_estimate and r.trunk_flexion_deg else "")
        knee = _fmt(r.knee_flexion_deg) + ("~" if r.knee_flexion_estimate else "")
        table.add_row(label, r.side.value, f"{r.rep.start_s:.1f}-{r.rep.end_s:.1f}",
                      knee, _fmt(r.fppa_deg), _verdict_cell(r, "knee_valgus"),
                      trunk, _verdict_cell(r, "hip_hinge"),
                      style="bright_black" if r.rep.partial else None)
        if r.rep.partial:
            cues.append(f"rep {r.index}: partial ({r.rep.reason or 'incomplete'}), not counted")
        elif r.cues:
            cues.append(f"rep {r.index}: " + " ".join(r.cues))
    if a.reps:
        console.print(table)
        console.print("[bright_black]knee = peak knee flexion; % = how sure the verdict is; "
                      "~ = estimate from a view that cannot measure it directly[/]")
    for line in cues:
        console.print(f"  {line}")
    console.print(f"reps: {len(a.full_reps)} full" +
                  (f", {len(a.reps) - len(a.full_reps)} partial (not counted)"
                   if len(a.reps) > len(a.full_reps) else ""))
    for side, s in a.sides.items():
        est = "~" if s.trunk_estimate else ""
        console.print(f"  {side.value:>5}: {s.reps} rep{'' if s.reps == 1 else 's'}, FPPA mean {_fmt(s.fppa_mean_deg)} "
                      f"worst {_fmt(s.fppa_worst_deg)}, trunk mean {_fmt(s.trunk_mean_deg)}{est} "
                      f"worst {_fmt(s.trunk_worst_deg)}{est}"
                      + (" (estimates)" if est else "") + f", faults {s.faults}")
    comp = a.comparison
    if comp.get("available"):
        basis = f", {SQUAT_KNEES}" if comp.get("basis") == SQUAT_KNEES else ""
        for key in ("fppa", "trunk"):
            if key == "trunk" and basis:
                continue  # one trunk in a squat
            console.print(f"  left vs right ({'knee valgus' if key == 'fppa' else 'trunk lean'}{basis}): "
                          f"{comp[key]['note']}")
    reasons: dict[str, list[int]] = {}  # the same reason for several reps: one line naming them
    for r in a.reps:
        for c in r.checks.values():
            if c.verdict is Verdict.NOT_MEASURABLE and c.reason:
                reps = reasons.setdefault(c.reason, [])
                if r.index not in reps:
                    reps.append(r.index)
    for reason, reps in sorted(reasons.items(), key=lambda kv: kv[1]):
        which = f"rep {reps[0]}" if len(reps) == 1 else "reps " + ", ".join(map(str, reps))
        console.print(f"  [bright_black]not measured ({which}): {escape(reason)}[/]")
    for note in a.notes:
        console.print(f"  [cyan]note:[/] {note}")
    console.print(f"  [bright_black]{SAFETY_NOTE}[/]")


def write_json(a: Analysis, path: Path) -> None:
    with atomic_output(Path(path)) as f:
        json.dump(a.to_dict(), f, indent=2)


def csv_rows(a: Analysis) -> list[dict]:
    rows = []
    for r in a.reps:
        d = r.to_dict()
        row = {k: d.get(k) for k in CSV_COLUMNS if k in d}
        for name in ("knee_valgus", "hip_hinge", "depth", "pelvic_drop", "lateral_lean"):
            c = r.checks.get(name)
            row[name] = c.verdict.value if c else ""
        for name in ("knee_valgus", "hip_hinge"):
            c = r.checks.get(name)
            row[f"{name}_confidence"] = "" if c is None or c.confidence is None else round(c.confidence, 2)
        row["cues"] = " | ".join(r.cues)
        rows.append(row)
    return rows


def write_csv(a: Analysis, path: Path) -> None:
    with atomic_output(Path(path)) as f:
        w = csv.DictWriter(f, fieldnames=CSV_COLUMNS)
        w.writeheader()
        for row in csv_rows(a):
            w.writerow({k: "" if v is None else v for k, v in row.items()})
