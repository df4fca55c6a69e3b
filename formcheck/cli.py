"""The ``formcheck`` command: parse arguments, call the library, print.

Library errors (:class:`formcheck.errors.FormcheckError`) become one line on
stderr and a non-zero exit code; no traceback for a user mistake.
"""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console
from rich.markup import escape

from formcheck.errors import FormcheckError

app = typer.Typer(
    name="formcheck",
    help="Rep-by-rep form checks (knee valgus, trunk lean) for single-leg dips and squats on video.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
err = Console(stderr=True, highlight=False)
out = Console(highlight=False)


def user_errors(func: Callable) -> Callable:
    """Turn FormcheckError (and Ctrl-C) into one line and an exit code."""

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        try:
            return func(*args, **kwargs)
        except FormcheckError as exc:
            err.print(f"[bold red]error:[/] {escape(str(exc))}", soft_wrap=True)
            raise typer.Exit(exc.exit_code) from None
        except KeyboardInterrupt:
            err.print("interrupted")
            raise typer.Exit(130) from None

    return wrapper


class _Bar:
    """A rich progress bar for frames, or nothing at all when quiet."""

    def __init__(self, total: int | None, label: str, quiet: bool) -> None:
        self.quiet = quiet or not sys.stderr.isatty()
        self.total, self.label = total, label

    def __enter__(self) -> Callable[[int], None]:
        if self.quiet:
            return lambda n: None
        from rich.progress import (BarColumn, MofNCompleteColumn, Progress, TextColumn,
                                   TimeRemainingColumn)

        self._progress = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                                  TextColumn("frames"), TimeRemainingColumn(), console=err,
                                  transient=True)
        self._progress.__enter__()
        task = self._progress.add_task(self.label, total=self.total)
        return lambda n: self._progress.advance(task, n)

    def __exit__(self, *exc) -> None:
        if not self.quiet:
            self._progress.__exit__(*exc)


Quiet = Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar.")]
VideoArg = Annotated[Path, typer.Argument(help="Video file (mp4, mov, m4v, webm, mkv, avi).",
                                          show_default=False)]
ModelOpt = Annotated[str, typer.Option("--model", help="Pose model: full (bundled), lite, heavy, "
                                       "or a path to a .task file.")]
WorkersOpt = Annotated[Optional[int], typer.Option(
    "--workers", "-j", min=1, help="Processes for one clip (default: one per core).")]


ExerciseOpt = Annotated[Optional[str], typer.Option(
    "--exercise", "-e", help="single_leg_squat or squat (default: inferred from the clip).")]
SettingsOpt = Annotated[Optional[Path], typer.Option(
    "--settings", help="TOML file of thresholds and settings (see 'formcheck settings').")]
SetOpt = Annotated[Optional[list[str]], typer.Option(
    "--set", help="Override one setting, e.g. --set thresholds.valgus_fault_deg=12 (repeatable).")]


@app.command()
@user_errors
def pose(
    video: VideoArg,
    output: Annotated[Optional[Path], typer.Option(
        "--output", "-o", help="Write landmarks to OUT.json, OUT.csv or OUT.npz (default: JSON on "
                               "stdout).")] = None,
    raw: Annotated[bool, typer.Option(help="Write the raw landmarks (no smoothing or gap filling).")
                   ] = False,
    settings_file: SettingsOpt = None,
    set_: SetOpt = None,
    model: ModelOpt = "full",
    workers: WorkersOpt = None,
    quiet: Quiet = False,
) -> None:
    """Extract one person's landmarks from a video (33 BlazePose points per frame)."""
    from formcheck.extract import default_workers, extract_pose
    from formcheck.landmark_io import check_output_path, dump_pose_json, write_pose
    from formcheck.smoothing import smooth
    from formcheck.video import probe

    settings = _settings(settings_file, set_)
    if model != "full":
        settings = settings.replace("model", model=model)
    to_stdout = output is None or str(output) == "-"
    if not to_stdout:
        check_output_path(output, (".json", ".csv", ".npz"))
    info = probe(video)
    with _Bar(info.frame_count, f"pose {video.name}", quiet) as bar:
        seq = extract_pose(video, estimator=settings.model, progress=bar, info=info,
                           workers=workers or default_workers())
    if not raw:
        seq = smooth(seq, settings.smoothing)
    err.print(f"{video.name}: {info.width}x{info.height}, {seq.fps:.2f} fps, {len(seq)} frames, "
              f"person found in {seq.detection_rate:.0%}")
    if to_stdout:
        dump_pose_json(seq, sys.stdout)
        sys.stdout.write("\n")
    else:
        write_pose(seq, output)
        err.print(f"wrote {output}")


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" + ("" if n == 1 else "s")


def _settings(path: Path | None, overrides: list[str] | None):
    from formcheck.settings import apply_overrides, load_settings

    return apply_overrides(load_settings(path), overrides or [])


def _exercise(name: str | None):
    from formcheck.context import Exercise
    from formcheck.errors import SettingsError

    if name is None:
        return None
    aliases = {"single_leg_squat": Exercise.SINGLE_LEG_SQUAT, "single-leg": Exercise.SINGLE_LEG_SQUAT,
               "single_leg": Exercise.SINGLE_LEG_SQUAT, "dip": Exercise.SINGLE_LEG_SQUAT,
               "squat": Exercise.SQUAT}
    try:
        return aliases[name.lower()]
    except KeyError:
        raise SettingsError(f"unknown exercise '{name}' (use single_leg_squat or squat)") from None


@app.command()
@user_errors
def analyze(
    video: VideoArg,
    json_out: Annotated[Optional[Path], typer.Option(
        "--json", help="Write the full result as JSON ('-' for standard output).")] = None,
    csv_out: Annotated[Optional[Path], typer.Option("--csv", help="Write one row per rep as CSV.")] = None,
    annotate: Annotated[Optional[Path], typer.Option(
        "--annotate", help="Write an annotated H.264 video (plays in browsers and phones).")] = None,
    snapshots: Annotated[Optional[Path], typer.Option(
        "--snapshots", help="Write an annotated PNG of the bottom of each rep into this folder.")] = None,
    exercise: ExerciseOpt = None,
    settings_file: SettingsOpt = None,
    set_: SetOpt = None,
    model: ModelOpt = "full",
    workers: WorkersOpt = None,
    quiet: Quiet = False,
) -> None:
    """Check form rep by rep: knee valgus (FPPA), trunk lean, depth, left vs right."""
    from formcheck.analysis import analyze as run_analysis
    from formcheck.extract import default_workers
    from formcheck.landmark_io import check_output_path
    from formcheck.report import print_analysis, write_csv, write_json
    from formcheck.video import probe

    settings = _settings(settings_file, set_)
    if model != "full":
        settings = settings.replace("model", model=model)
    ex = _exercise(exercise)
    for path, suffixes in ((json_out, (".json",)), (csv_out, (".csv",)), (annotate, (".mp4", ".m4v", ".mov", ".mkv"))):
        if path is not None and str(path) != "-":
            check_output_path(path, suffixes)
    if snapshots is not None:
        _make_dir(snapshots)
    info = probe(video)
    with _Bar(info.frame_count, f"analyse {video.name}", quiet) as bar:
        result = run_analysis(video, settings=settings, exercise=ex, progress=bar,
                              workers=workers or default_workers())
    if json_out is not None and str(json_out) == "-":
        import json

        sys.stdout.write(json.dumps(result.to_dict(), indent=2) + "\n")
    else:
        print_analysis(result, out)
        if json_out is not None:
            write_json(result, json_out)
            err.print(f"wrote {json_out}")
    if csv_out is not None:
        write_csv(result, csv_out)
        err.print(f"wrote {csv_out}")
    if annotate is not None:
        from formcheck.render import render_annotated

        with _Bar(info.frame_count, f"annotate {video.name}", quiet) as bar:
            render_annotated(result, video, annotate, progress=bar, workers=workers or default_workers())
        err.print(f"wrote {annotate}")
    if snapshots is not None:
        from formcheck.render import save_snapshots

        paths = save_snapshots(result, video, snapshots)
        err.print(f"wrote {len(paths)} snapshots to {snapshots}")


@app.command()
@user_errors
def live(
    camera: Annotated[str, typer.Option(
        "--camera", help="Camera index, stream URL, or a video file played at its own pace.")] = "0",
    headless: Annotated[bool, typer.Option(
        "--headless", help="No window: print each rep's verdict as it completes.")] = False,
    record: Annotated[Optional[Path], typer.Option(
        "--record", help="Save the annotated session to OUT.mp4 (H.264).")] = None,
    mirror: Annotated[bool, typer.Option("--mirror", help="Show the picture mirrored (m toggles).")] = False,
    settings_file: SettingsOpt = None,
    set_: SetOpt = None,
    model: ModelOpt = "full",
) -> None:
    """Live cues from a camera: skeleton, angles, rep count and each rep's verdict.

    Keys: q quit, space pause, m mirror, r reset.
    """
    from formcheck.live import run_live  # first: cv2 must load before PyAV
    from formcheck.camera import open_camera
    from formcheck.landmark_io import check_output_path

    settings = _settings(settings_file, set_)
    if model != "full":
        settings = settings.replace("model", model=model)
    if record is not None:
        check_output_path(record, (".mp4", ".m4v", ".mov", ".mkv"))
    with open_camera(camera) as cam:
        summary = run_live(cam, headless=headless, record=record, mirror=mirror,
                           on_rep=lambda rep: out.print(rep.line), settings=settings)
    stopped = " (stopped with Ctrl-C)" if summary.interrupted else ""
    err.print(f"{_plural(summary.rep_count, 'rep')}; {summary.frames} frames shown, {summary.dropped} dropped{stopped}")
    if record is not None:
        err.print(f"wrote {record}")


def _make_dir(path: Path) -> None:
    from formcheck.errors import OutputError

    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputError(f"cannot create folder {path}: {exc.strerror or exc}") from None


@app.command()
@user_errors
def batch(
    inputs: Annotated[list[str], typer.Argument(help="Folders, video files or globs (e.g. 'clips/*.mp4').",
                                                show_default=False)],
    out_dir: Annotated[Path, typer.Option("--out", "-o", help="Results folder (one sub-folder per clip).")
                       ] = Path("formcheck-results"),
    workers: Annotated[Optional[int], typer.Option(
        "--workers", "-j", min=1, help="Cores to use across clips (default: all).")] = None,
    settings_file: SettingsOpt = None,
    set_: SetOpt = None,
    quiet: Quiet = False,
) -> None:
    """Analyse many clips in parallel: per clip an annotated video, JSON, CSV and HTML report,
    plus summary.csv; clips already done (same content) are skipped."""
    from formcheck.batch import LineBatchProgress, RichBatchProgress, run_batch

    settings = _settings(settings_file, set_)
    if quiet:
        result = run_batch(inputs, out_dir, workers=workers, settings=settings)
    elif not sys.stderr.isatty():  # a log file or a pipe: one plain line per finished clip
        result = run_batch(inputs, out_dir, workers=workers, settings=settings,
                           progress=LineBatchProgress(sys.stderr))
    else:
        with RichBatchProgress(err) as bar:
            result = run_batch(inputs, out_dir, workers=workers, settings=settings, progress=bar)
    ok = [c for c in result.clips if c.status == "ok"]
    failed = [c for c in result.clips if c.status != "ok"]
    for c in failed:
        err.print(f"failed: {escape(c.error or str(c.path))}", soft_wrap=True)
    reused = sum(c.reused for c in ok)
    done = f"{_plural(len(ok) - reused, 'clip')} analysed" + (f", {reused} already done before" if reused else "")
    err.print(f"{done}, {len(failed)} failed; summary: {escape(str(result.summary_csv))}",
              soft_wrap=True)
    if failed:  # scripts must see that some clips have no results
        raise typer.Exit(1)


@app.command()
@user_errors
def serve(
    host: Annotated[str, typer.Option(help="Address to listen on (a non-local one needs --token).")
                    ] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port.", min=1, max=65535)] = 8000,
    data: Annotated[Path, typer.Option("--data", help="Folder for the database and the clips.")
                    ] = Path("formcheck-data"),
    token: Annotated[Optional[str], typer.Option(
        help="Access token every request must carry (required off localhost).", envvar="FORMCHECK_TOKEN")
                     ] = None,
    max_upload_mb: Annotated[float, typer.Option(help="Largest upload accepted, MB.")] = 500.0,
    max_duration_s: Annotated[float, typer.Option(help="Longest clip accepted, seconds.")] = 600.0,
) -> None:
    """The coaches' web app: upload clips, watch progress, browse reports per athlete."""
    try:
        from formcheck.web.app import serve as run_server
    except ImportError as exc:
        from formcheck.errors import FormcheckError

        raise FormcheckError(f"the web app needs its extra: pip install 'formcheck[web]' ({exc.name} "
                             "is missing)") from None
    run_server(host, port, data, token, max_upload_mb=max_upload_mb, max_duration_s=max_duration_s)


@app.command("settings")
@user_errors
def show_settings(
    settings_file: SettingsOpt = None,
    set_: SetOpt = None,
) -> None:
    """Print every setting with its value (defaults, or as a TOML file and --set change them)."""
    from formcheck.settings import describe

    text = describe(_settings(settings_file, set_))
    sys.stdout.write(text + "\n")  # as is: a terminal-width wrap would break the TOML


@app.command()
@user_errors
def models(
    fetch: Annotated[Optional[str], typer.Option(
        help="Download one of Google's official models (lite or heavy); needs internet.")] = None,
) -> None:
    """List the pose models and their state; optionally fetch one."""
    from rich.table import Table

    from formcheck.models import MODELS, fetch_model, model_state

    if fetch:
        path = fetch_model(fetch)
        err.print(f"fetched {fetch} to {path}")
    table = Table("model", "state", "file", "about")
    for name in MODELS:
        st = model_state(name)
        colour = {"ok": "green", "missing": "yellow", "corrupt": "red"}[st.state]
        table.add_row(name, f"[{colour}]{st.state}[/]", str(st.path or "-"),
                      f"{st.spec.description}. {st.detail}")
    out.print(table)


def main() -> None:
    """The console entry point (``formcheck`` and ``python -m formcheck``)."""
    from formcheck._native import filter_native_stderr

    filter_native_stderr()  # MediaPipe/LiteRT log to fd 2 at any frame; users see only ours
    errors = _click_exceptions()
    no_args = getattr(errors, "NoArgsIsHelpError", ())  # click >= 8.2 only
    aborts = (typer.Abort, getattr(errors, "Abort", typer.Abort))
    try:
        code = app(prog_name="formcheck", standalone_mode=False)
    except errors.ClickException as exc:  # a mistake on the command line: one line, exit 2
        if isinstance(exc, no_args):  # bare "formcheck": the help, as click shows it
            exc.show()
            sys.exit(exc.exit_code)
        where = exc.ctx.command_path if getattr(exc, "ctx", None) else "formcheck"
        message = " ".join(exc.format_message().split())
        err.print(f"[bold red]error:[/] {escape(message)} (see '{where} --help')", soft_wrap=True)
        sys.exit(exc.exit_code)
    except aborts:  # Ctrl-C while click reads the command line
        err.print("interrupted")
        sys.exit(130)
    sys.exit(code if isinstance(code, int) else 0)


def _click_exceptions():
    """The click that typer raises from: its own copy (typer >= 0.2x) or the click package."""
    try:
        from typer._click import exceptions
    except ImportError:
        from click import exceptions
    return exceptions


if __name__ == "__main__":  # pragma: no cover
    main()
