"""Every command has help text, and the README documents every command and setting."""

from __future__ import annotations

import os
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


def test_settings_output_is_toml_that_reads_back_with_the_changes(tmp_path):
    import tomllib

    from formcheck.settings import load_settings

    # COLUMNS=40: a terminal-width wrap once broke the heading comment across lines
    r = subprocess.run([sys.executable, "-m", "formcheck", "settings", "--set",
                        "thresholds.valgus_fault_deg=12", "--set", "model.num_poses=2"],
                       capture_output=True, text=True, timeout=60, env={**os.environ, "COLUMNS": "40"})
    assert r.returncode == 0, r.stderr
    assert tomllib.loads(r.stdout)["thresholds"]["valgus_fault_deg"] == 12.0
    # each default comes with the comment that gives its source
    before = r.stdout.split("\nvalgus_fault_deg = ")[0].splitlines()[-1]
    assert before.startswith("#") and "PubMed 24380805" in before
    path = tmp_path / "mine.toml"
    path.write_text(r.stdout)
    back = load_settings(path)
    assert back.thresholds.valgus_fault_deg == 12.0 and back.model.num_poses == 2
    assert back.reps == Settings().reps


@pytest.mark.parametrize("change, words", [
    ("model.num_poses=2.5", "num_poses must be a whole number, not 2.5"),
    ("model.num_poses=abc", "num_poses must be a whole number, not 'abc'"),
    ("smoothing.enabled=1", "enabled must be true or false, not 1"),
    ("thresholds.valgus_fault_deg=true", "valgus_fault_deg must be a number, not true"),
])
def test_a_setting_of_the_wrong_type_is_one_line(tmp_path, change, words):
    r = subprocess.run([sys.executable, "-m", "formcheck", "settings", "--set", change],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 7 and r.stderr.strip().splitlines() == [r.stderr.strip()], r.stderr
    assert words in r.stderr
    toml = tmp_path / "bad.toml"
    section, _, rest = change.partition(".")
    key, _, value = rest.partition("=")
    value = '"abc"' if value == "abc" else value  # a string in TOML
    toml.write_text(f"[{section}]\n{key} = {value}\n")
    r = subprocess.run([sys.executable, "-m", "formcheck", "settings", "--settings", str(toml)],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 7 and words in r.stderr and "Traceback" not in r.stderr


def test_a_settings_file_with_a_retired_key_still_loads(tmp_path):
    from formcheck.settings import load_settings

    old = tmp_path / "old.toml"  # min_view_confidence never changed anything and was removed
    old.write_text("[thresholds]\nmin_view_confidence = 0.5\nvalgus_fault_deg = 14\n")
    assert load_settings(old).thresholds.valgus_fault_deg == 14.0
