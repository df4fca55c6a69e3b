"""The pose models: the bundled one verified, bad ones refused in one line, fetching offline."""

from __future__ import annotations

import shutil
import subprocess
import sys
import urllib.error

import pytest
from conftest import SAMPLES

from formcheck import models
from formcheck.errors import ModelError

DEV02 = SAMPLES / "dev02_slsR_front_fppa0-20-30.mp4"


def _cli(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    import os

    return subprocess.run([sys.executable, "-m", "formcheck", *args], capture_output=True, text=True,
                          timeout=120, env={**os.environ, **(env or {})})


def test_the_bundled_model_is_there_and_matches_its_pinned_sha256():
    state = models.model_state("full")
    assert state.state == "ok" and state.path is not None
    assert models.sha256_of(state.path) == models.MODELS["full"].sha256


@pytest.mark.parametrize("content, words", [
    (None, ["not found"]),
    (b"not a zip at all\n" * 100, ["corrupt"]),
])
def test_a_missing_or_corrupt_model_file_is_one_line_and_exit_4(tmp_path, content, words):
    model = tmp_path / "pose.task"
    if content is not None:
        model.write_bytes(content)
    r = _cli("analyze", str(DEV02), "--model", str(model), "-q")
    assert r.returncode == 4 and "Traceback" not in r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and str(model) in lines[0] and all(w in lines[0] for w in words)


def test_a_fetched_model_changed_after_download_is_refused(tmp_path, monkeypatch):
    monkeypatch.setenv("FORMCHECK_MODEL_DIR", str(tmp_path))
    bundled = models.model_state("full").path
    heavy = tmp_path / models.MODELS["heavy"].filename
    shutil.copy(bundled, heavy)  # a valid bundle standing in for the download
    heavy.with_suffix(".task.sha256").write_text(f"{'0' * 64}  {heavy.name}\n")
    assert models.model_state("heavy").state == "corrupt"
    with pytest.raises(ModelError, match="heavy.*corrupt"):
        models.resolve_model("heavy")
    heavy.with_suffix(".task.sha256").write_text(f"{models.sha256_of(heavy)}  {heavy.name}\n")
    assert models.resolve_model("heavy") == heavy


def test_fetching_without_internet_is_one_clear_error_and_leaves_nothing(tmp_path, monkeypatch):
    monkeypatch.setenv("FORMCHECK_MODEL_DIR", str(tmp_path))

    def offline(*a, **k):
        raise urllib.error.URLError("[Errno -3] Temporary failure in name resolution")

    monkeypatch.setattr(models.urllib.request, "urlopen", offline)
    with pytest.raises(ModelError, match="could not download model 'lite'.*no internet"):
        models.fetch_model("lite")
    assert list(tmp_path.iterdir()) == []  # no partial download left
    assert models.model_state("lite").state == "missing"


def test_models_command_lists_every_model_with_its_state(tmp_path):
    r = _cli("models", env={"FORMCHECK_MODEL_DIR": str(tmp_path), "COLUMNS": "200"})
    assert r.returncode == 0, r.stderr
    rows = {line.split()[1]: line for line in r.stdout.splitlines() if line.startswith("│ ")
            and line.split()[1] in models.MODELS}
    assert set(rows) == set(models.MODELS)
    assert " ok " in rows["full"] and " missing " in rows["lite"] and " missing " in rows["heavy"]
