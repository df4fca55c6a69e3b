"""Every command has help text, and the README documents every command and setting."""

from __future__ import annotations

import subprocess
import sys
from dataclasses import fields
from pathlib import Path

import pytest

from formcheck.cli import app
from formcheck.settings import Settings, describe

README = (Path(__file__).resolve().parent.parent / "README.md").read_text(encoding="utf-8")
COMMANDS = [c.name or c.callback.__name__ for c in app.registered_commands]


def test_there_are_commands():
    assert {"analyze", "pose", "live", "models", "settings"} <= set(COMMANDS)


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_has_help_and_is_in_the_readme(command):
    r = subprocess.run([sys.executable, "-m", "formcheck", command, "--help"], capture_output=True,
                       text=True, timeout=60)
    assert r.returncode == 0 and "Usage" in r.stdout
    callback = next(c.callback for c in app.registered_commands if (c.name or c.callback.__name__) == command)
    assert callback.__doc__ and len(callback.__doc__.strip()) > 20
    assert f"formcheck {command}" in README


def test_settings_command_prints_every_default_from_the_dataclasses():
    text = describe(Settings())
    for section in fields(Settings):
        for f in fields(getattr(Settings(), section.name)):
            assert f"{f.name} = " in text
    r = subprocess.run([sys.executable, "-m", "formcheck", "settings"], capture_output=True, text=True,
                       timeout=60)
    assert r.returncode == 0 and "valgus_fault_deg = 15.0" in r.stdout


def test_error_text_with_brackets_is_printed_verbatim(tmp_path):
    r = subprocess.run([sys.executable, "-m", "formcheck", "settings", "--set", "smoothing.min_cutoff_hz=-1"],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode != 0 and "[smoothing]" in r.stderr
