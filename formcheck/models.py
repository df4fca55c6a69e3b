"""Find, verify (sha256) and fetch pose model bundles.

The default model, BlazePose GHUM 3D "full" rebuilt from the mediapipe 0.10.21
wheel (see ``models/README.md``), ships inside the package, so formcheck works
offline. Google's official lite/heavy bundles can be fetched by users who have
internet; their hash is recorded when fetched and checked on every later load.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
import urllib.error
import urllib.request
import zipfile
from dataclasses import dataclass
from pathlib import Path

from formcheck.errors import ModelError

_PACKAGE_MODELS = Path(__file__).resolve().parent / "_models"  # inside a wheel
_SOURCE_MODELS = Path(__file__).resolve().parent.parent / "models"  # in a source checkout
BUNDLE_ENTRIES = ("pose_detector.tflite", "pose_landmarks_detector.tflite")
_GOOGLE = "https://storage.googleapis.com/mediapipe-models/pose_landmarker"


@dataclass(frozen=True)
class ModelSpec:
    name: str
    filename: str
    description: str
    sha256: str | None = None  # pinned for the bundled model
    url: str | None = None  # fetchable models
    bundled: bool = False


MODELS: dict[str, ModelSpec] = {
    "full": ModelSpec(
        "full", "pose_landmarker_full.task",
        "BlazePose GHUM 3D full, rebuilt from mediapipe 0.10.21 (bundled, default)",
        sha256="09a896313cfb0afc74764efbe22f3ff606aaaa8f0ef1f42fe377021e95f4d34c",
        bundled=True),
    "lite": ModelSpec(
        "lite", "pose_landmarker_lite.task", "Google's official lite bundle (needs internet once)",
        url=f"{_GOOGLE}/pose_landmarker_lite/float16/1/pose_landmarker_lite.task"),
    "heavy": ModelSpec(
        "heavy", "pose_landmarker_heavy.task", "Google's official heavy bundle (needs internet once)",
        url=f"{_GOOGLE}/pose_landmarker_heavy/float16/1/pose_landmarker_heavy.task"),
}
DEFAULT_MODEL = "full"


def user_model_dir() -> Path:
    """Where fetched models live: $FORMCHECK_MODEL_DIR or ~/.cache/formcheck/models."""
    env = os.environ.get("FORMCHECK_MODEL_DIR")
    if env:
        return Path(env)
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "formcheck" / "models"


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _candidates(spec: ModelSpec) -> list[Path]:
    if spec.bundled:
        return [_PACKAGE_MODELS / spec.filename, _SOURCE_MODELS / spec.filename]
    return [user_model_dir() / spec.filename]


def _check_bundle(path: Path) -> None:
    try:
        with zipfile.ZipFile(path) as zf:
            names = set(zf.namelist())
    except (zipfile.BadZipFile, OSError) as exc:
        raise ModelError(f"model file {path} is corrupt (not a MediaPipe .task bundle: {exc})") from None
    missing = [e for e in BUNDLE_ENTRIES if e not in names]
    if missing:
        raise ModelError(f"model file {path} is not a pose landmarker bundle (missing {', '.join(missing)})")


@dataclass(frozen=True)
class ModelState:
    spec: ModelSpec
    path: Path | None
    state: str  # "ok", "missing", "corrupt"
    detail: str = ""


def model_state(name: str) -> ModelState:
    """Locate a model and verify it, without raising."""
    spec = _spec(name)
    path = next((p for p in _candidates(spec) if p.is_file()), None)
    if path is None:
        hint = "reinstall formcheck" if spec.bundled else f"run 'formcheck models --fetch {name}'"
        return ModelState(spec, None, "missing", f"not found ({hint})")
    expected = spec.sha256 or _recorded_hash(path)
    actual = sha256_of(path)
    if expected and actual != expected:
        return ModelState(spec, path, "corrupt",
                          f"sha256 {actual[:12]}... does not match {expected[:12]}...")
    try:
        _check_bundle(path)
    except ModelError as exc:
        return ModelState(spec, path, "corrupt", str(exc))
    return ModelState(spec, path, "ok", f"sha256 {actual[:12]}...")


def resolve_model(name_or_path: str | os.PathLike | None = None) -> Path:
    """Return a verified model path, or raise ModelError saying what is wrong.

    Accepts a model name ("full", "lite", "heavy") or a path to a .task file.
    """
    if name_or_path is None:
        name_or_path = DEFAULT_MODEL
    if str(name_or_path) not in MODELS:
        path = Path(name_or_path)
        if not path.is_file():
            raise ModelError(f"model file {path} not found")
        _check_bundle(path)
        return path
    state = model_state(str(name_or_path))
    if state.state != "ok":
        where = f" at {state.path}" if state.path else ""
        raise ModelError(f"pose model '{state.spec.name}'{where} is {state.state}: {state.detail}")
    assert state.path is not None
    return state.path


def _spec(name: str) -> ModelSpec:
    try:
        return MODELS[name]
    except KeyError:
        raise ModelError(f"unknown model '{name}' (choose from {', '.join(MODELS)})") from None


def _recorded_hash(path: Path) -> str | None:
    sidecar = path.with_suffix(path.suffix + ".sha256")
    return sidecar.read_text().split()[0] if sidecar.is_file() else None


def fetch_model(name: str, *, timeout_s: float = 30.0) -> Path:
    """Download one of Google's official bundles into the user model folder.

    Google publishes no checksums for these files, so the download is checked
    to be a valid pose landmarker bundle, and its sha256 is recorded next to it
    and verified on every later load (a file changed afterwards is refused).
    """
    spec = _spec(name)
    if spec.url is None:
        raise ModelError(f"model '{name}' ships with formcheck and needs no download")
    dest_dir = user_model_dir()
    try:
        dest_dir.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(prefix=".partial-", suffix=".task", dir=dest_dir)
    except OSError as exc:
        raise ModelError(f"cannot write to model folder {dest_dir}: {exc.strerror or exc}") from None
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as out, urllib.request.urlopen(spec.url, timeout=timeout_s) as resp:
            for block in iter(lambda: resp.read(1 << 16), b""):
                out.write(block)
        _check_bundle(tmp)
        dest = dest_dir / spec.filename
        os.replace(tmp, dest)
        dest.with_suffix(dest.suffix + ".sha256").write_text(f"{sha256_of(dest)}  {spec.filename}\n")
        return dest
    except (urllib.error.URLError, OSError, TimeoutError) as exc:
        reason = getattr(exc, "reason", None) or exc
        raise ModelError(f"could not download model '{name}' from {spec.url} "
                         f"(no internet? {reason})") from None
    finally:
        tmp.unlink(missing_ok=True)
