"""``python -m formcheck.web``: run the web app (what ``formcheck serve`` does)."""

from __future__ import annotations

import argparse
import sys

from formcheck.errors import FormcheckError


def main(argv: list[str] | None = None) -> int:
    from formcheck.web.app import serve

    p = argparse.ArgumentParser(prog="python -m formcheck.web", description=__doc__)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8000)
    p.add_argument("--data-dir", default="formcheck-data")
    p.add_argument("--token", default=None)
    p.add_argument("--max-upload-mb", type=float, default=500)
    p.add_argument("--max-duration-s", type=float, default=600)
    p.add_argument("--jobs", type=int, default=1, help="analyses at once")
    p.add_argument("--workers", type=int, default=None, help="processes per analysis")
    a = p.parse_args(argv)
    try:
        serve(a.host, a.port, a.data_dir, a.token, max_upload_mb=a.max_upload_mb,
              max_duration_s=a.max_duration_s, processes=a.jobs, clip_workers=a.workers)
    except FormcheckError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    return 0


if __name__ == "__main__":  # worker processes (spawn) import this module too
    sys.exit(main())
