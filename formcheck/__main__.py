"""``python -m formcheck`` is the ``formcheck`` command."""

from formcheck.cli import app

app(prog_name="formcheck")
