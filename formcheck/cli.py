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
            err.print(f"[bold red]error:[/] {exc}", soft_wrap=True)
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


@app.command()
@user_errors
def pose(
    video: VideoArg,
    output: Annotated[Optional[Path], typer.Option(
        "--output", "-o", help="Write landmarks to OUT.json, OUT.csv or OUT.npz.")] = None,
    raw: Annotated[bool, typer.Option(help="Write the raw landmarks (no smoothing or gap filling).")
                   ] = False,
    model: ModelOpt = "full",
    quiet: Quiet = False,
) -> None:
    """Extract one person's landmarks from a video (33 BlazePose points per frame)."""
    from formcheck.estimator import EstimatorSettings
    from formcheck.extract import extract_pose
    from formcheck.landmark_io import check_output_path, write_pose
    from formcheck.smoothing import smooth
    from formcheck.video import probe

    if output is not None:
        check_output_path(output, (".json", ".csv", ".npz"))
    info = probe(video)
    with _Bar(info.frame_count, f"pose {video.name}", quiet) as bar:
        seq = extract_pose(video, estimator=EstimatorSettings(model=model), progress=bar, info=info)
    if not raw:
        seq = smooth(seq)
    err.print(f"{video.name}: {info.width}x{info.height}, {seq.fps:.2f} fps, {len(seq)} frames, "
              f"person found in {seq.detection_rate:.0%}")
    if output is not None:
        write_pose(seq, output)
        err.print(f"wrote {output}")


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


def main() -> None:  # pragma: no cover - console entry point
    app()


if __name__ == "__main__":  # pragma: no cover
    app()
