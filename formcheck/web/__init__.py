"""The coaches' web app (``formcheck serve``): needs the ``web`` extra (FastAPI, uvicorn, jinja2)."""

from formcheck.web.app import create_app, serve

__all__ = ["create_app", "serve"]
