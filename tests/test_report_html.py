"""The per-clip HTML report: one self-contained file, right content, renders and prints in Chromium."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import numpy as np
import pytest
from conftest import SAMPLES

from formcheck.htmlreport import Band, HLine, Line, bar_chart, line_plot, render_report, write_report
from formcheck.rules import SAFETY_NOTE

DEV02 = SAMPLES / "dev02_slsR_front_fppa0-20-30.mp4"
DEV05 = SAMPLES / "dev05_slsR_side_lean10-40-10.mp4"
CHROMIUM = Path("/usr/bin/chromium")
BROWSER_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                "--disable-component-update", "--no-first-run", "--disable-quic", "--disable-sync"]
EXTERNAL = re.compile(r"""(?:src|href|srcset|poster|action)\s*=\s*["']?\s*(?:https?:)?//""", re.IGNORECASE)


@pytest.fixture(scope="module")
def front_report(analysis_of, tmp_path_factory) -> tuple[object, Path]:
    """dev02's report, keyframes drawn from the clip, the 'annotated' video embedded."""
    a = analysis_of(DEV02)
    folder = tmp_path_factory.mktemp("report")
    shutil.copy(DEV02, folder / "annotated.mp4")  # stands in for the annotated video (same size)
    return a, write_report(a, folder / "report.html", video_rel_path="annotated.mp4",
                           title="Sam <b>dip</b> & co")


def test_report_is_one_file_with_nothing_external(front_report):
    _, path = front_report
    html = path.read_text(encoding="utf-8")
    assert sorted(p.name for p in path.parent.iterdir()) == ["annotated.mp4", "report.html"]
    assert not EXTERNAL.findall(html)
    assert 'src="http' not in html and '<link href="http' not in html and "<script" not in html
    assert 'src="data:video/mp4;base64,' in html and "embedded in this file" in html
    assert html.count('src="data:image/jpeg;base64,') == 3  # keyframes of the worst reps


def test_report_has_the_rep_table_plots_notes_and_safety_note(front_report):
    a, path = front_report
    html = path.read_text(encoding="utf-8")
    assert len(a.full_reps) == 3
    assert len(re.findall(r'<tr class="(?:rep|partial)"', html)) == len(a.reps)
    assert html.count("<svg") >= 4  # knee flexion, FPPA, trunk, left vs right
    assert "Knee valgus (FPPA)" in html and 'stroke-dasharray="7 4"' in html  # dashed thresholds
    assert "fault 15&#176;" in html and "watch 10&#176;" in html
    assert 'class="est"' in html  # front view: trunk lean is an estimate, and says so
    assert SAFETY_NOTE.replace("'", "&#x27;") in html
    assert "Front view: trunk lean is only estimated" in html
    assert "8&deg; smallest detectable difference" in html or "8\u00b0 smallest" in html
    assert "Sam &lt;b&gt;dip&lt;/b&gt; &amp; co" in html and "<b>dip</b>" not in html


def test_side_view_report_says_what_it_cannot_measure(analysis_of, tmp_path):
    a = analysis_of(DEV05)
    html = write_report(a, tmp_path / "r.html", snapshots=[]).read_text(encoding="utf-8")
    assert "Knee valgus (FPPA) is not plotted" in html and "side view" in html
    assert "knee valgus needs the camera in front of or behind the person" in html
    assert "No keyframes" in html and "<video" not in html


def test_a_large_video_is_referenced_not_embedded(analysis_of, tmp_path):
    a = analysis_of(DEV02)
    shutil.copy(DEV02, tmp_path / "annotated.mp4")
    html = render_report(a, base_dir=tmp_path, video_rel_path="annotated.mp4", snapshots=[],
                         embed_video=False)
    assert 'src="annotated.mp4"' in html and "must stay in the same folder" in html


def test_line_plot_breaks_lines_at_gaps_and_draws_bands_and_thresholds():
    t = np.linspace(0, 10, 101)
    y = np.sin(t) * 10
    y[40:50] = np.nan
    svg = line_plot([Line("a", "#123456", t, y)], title="T <1>", y_label="deg",
                    bands=[Band(1, 2, "#ff0000", "rep 1", 1.5)], hlines=[HLine(5, "watch", "#00ff00")])
    assert svg.count("<polyline") == 2 and svg.count("<rect") >= 2
    assert "T &lt;1&gt;" in svg and "watch 5&#176;" in svg
    assert "nothing measured" in line_plot([Line("a", "#000", t, np.full_like(t, np.nan))],
                                           title="x", y_label="y")


def test_bar_chart_marks_missing_values():
    svg = bar_chart([("FPPA mean", [("left", "#00f", 12.3), ("right", "#f00", None)])],
                    title="L/R", y_label="deg")
    assert "12&#176;" in svg and "n/a" in svg


def _browser():
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed "
                                   "(pip install playwright; CI installs it with the test extra)")
    if not CHROMIUM.exists():
        pytest.skip("/usr/bin/chromium is missing (apt-get install chromium; .ci/run installs it)")
    return sync_api


def test_report_renders_and_prints_in_chromium(front_report, tmp_path):
    import cv2

    sync_api = _browser()
    a, path = front_report
    shot, pdf = tmp_path / "report.png", tmp_path / "report.pdf"
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=BROWSER_ARGS)
        page = browser.new_page(viewport={"width": 1100, "height": 900})
        page.goto(path.as_uri())
        rows = page.locator("table.reps tbody tr").count()
        svg_width = page.evaluate("document.querySelector('svg.plot').getBoundingClientRect().width")
        page.screenshot(path=str(shot), full_page=True)
        page.emulate_media(media="print")
        video_display = page.evaluate("getComputedStyle(document.querySelector('video')).display")
        ink = page.evaluate("getComputedStyle(document.querySelector('h2')).color")
        page.pdf(path=str(pdf))
        browser.close()
    assert rows == len(a.reps) == 3 and svg_width > 300
    assert video_display == "none" and ink == "rgb(0, 0, 0)"
    image = cv2.imread(str(shot))
    assert image.shape[0] > 2000  # the whole page: summary, table, plots, keyframes, notes
    assert (image < 200).any(axis=2).mean() > 0.05 and image.std() > 20  # not blank
    data = pdf.read_bytes()
    assert data[:5] == b"%PDF-" and pdf.stat().st_size > 20_000
    pages = len(re.findall(rb"/Type\s*/Page\b", data))
    assert 1 <= pages <= 4, pages  # sections flow on: a 3-rep report is a few A4 pages, not one each
