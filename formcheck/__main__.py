"""``python -m formcheck`` is the ``formcheck`` command."""

from formcheck.cli import app

if __name__ == "__main__":  # worker processes (spawn) import this module too
    app(prog_name="formcheck")
