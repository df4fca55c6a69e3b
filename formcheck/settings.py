"""All tunable settings in one object, loadable from a TOML file.

```toml
# formcheck.toml
[thresholds]
valgus_fault_deg = 15.0

[smoothing]
min_cutoff_hz = 1.0

[reps]
min_depth = 0.06
```

Section and key names are the dataclass fields (``formcheck settings`` prints
them all with their defaults). An unknown section or key, a malformed file or
a value out of range is a :class:`SettingsError` naming it.
"""

from __future__ import annotations

import dataclasses
import inspect
import re
import tomllib
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from formcheck.errors import SettingsError
from formcheck.estimator import EstimatorSettings
from formcheck.reps import RepSettings
from formcheck.rules import Thresholds
from formcheck.smoothing import SmoothingSettings


@dataclass(frozen=True)
class Settings:
    thresholds: Thresholds = field(default_factory=Thresholds)
    smoothing: SmoothingSettings = field(default_factory=SmoothingSettings)
    reps: RepSettings = field(default_factory=RepSettings)
    model: EstimatorSettings = field(default_factory=EstimatorSettings)

    def replace(self, section: str, **values: Any) -> "Settings":
        """A copy with some values of one section changed (validated)."""
        current = getattr(self, section)
        types = {f.name: f.type for f in fields(current)}
        values = {k: _typed(section, k, v, types.get(k)) for k, v in values.items()}
        try:
            new = dataclasses.replace(current, **values)
        except (TypeError, ValueError) as exc:
            raise SettingsError(f"[{section}] {exc}") from None
        return dataclasses.replace(self, **{section: new})

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


SECTIONS = {f.name: f.type for f in fields(Settings)}
# Keys that older files may still carry and that never changed anything: read and ignored.
RETIRED = {("thresholds", "min_view_confidence")}
_KINDS = {"float": (float, "a number"), "int": (int, "a whole number"),
          "bool": (bool, "true or false"), "str": (str, "a string in quotes or a bare word")}


def _typed(section: str, name: str, value: Any, annotation: Any) -> Any:
    """``value`` as the field's type (an int where a float is wanted is fine), or one clear error."""
    kind = _KINDS.get(annotation if isinstance(annotation, str) else getattr(annotation, "__name__", ""))
    if kind is None:
        return value
    want, words = kind
    if isinstance(value, bool) and want is not bool:
        pass  # true/false is not a number
    elif want is float and isinstance(value, int | float):
        return float(value)
    elif isinstance(value, want):
        return value
    shown = ("true" if value else "false") if isinstance(value, bool) else repr(value)
    raise SettingsError(f"[{section}] {name} must be {words}, not {shown}")


def load_settings(path: str | Path | None) -> Settings:
    """Settings from a TOML file (defaults for everything it does not set)."""
    settings = Settings()
    if path is None:
        return settings
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise SettingsError(f"settings file {path} not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise SettingsError(f"cannot read settings file {path}: {exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise SettingsError(f"settings file {path} is not valid TOML: {exc}") from None
    for section, values in data.items():
        if section not in SECTIONS:
            raise SettingsError(f"{path}: unknown section [{section}] "
                                f"(known: {', '.join(SECTIONS)})")
        if not isinstance(values, dict):
            raise SettingsError(f"{path}: '{section}' must be a [section] table")
        known = {f.name for f in fields(getattr(settings, section))}
        values = {k: v for k, v in values.items() if (section, k) not in RETIRED}
        for key in values:
            if key not in known:
                raise SettingsError(f"{path}: unknown key '{key}' in [{section}] "
                                    f"(known: {', '.join(sorted(known))})")
        try:
            settings = settings.replace(section, **values)
        except SettingsError as exc:
            raise SettingsError(f"{path}: {exc}") from None
    return settings


def _parse_value(text: str) -> Any:
    try:
        return tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        return text  # a bare string, e.g. a model name


def apply_overrides(settings: Settings, overrides: list[str]) -> Settings:
    """Apply ``section.key=value`` overrides (the CLI's ``--set``)."""
    for item in overrides:
        key, sep, value = item.partition("=")
        section, dot, name = key.strip().partition(".")
        if not sep or not dot:
            raise SettingsError(f"--set {item!r}: use SECTION.KEY=VALUE, e.g. thresholds.valgus_fault_deg=12")
        if section not in SECTIONS:
            raise SettingsError(f"--set {item!r}: unknown section '{section}' (known: {', '.join(SECTIONS)})")
        known = {f.name for f in fields(getattr(settings, section))}
        if name not in known:
            raise SettingsError(f"--set {item!r}: unknown key '{name}' in [{section}] "
                                f"(known: {', '.join(sorted(known))})")
        settings = settings.replace(section, **{name: _parse_value(value.strip())})
    return settings


def _field_comments(cls: type) -> dict[str, list[str]]:
    """The ``#`` comment lines just above each field in the dataclass's source (its source)."""
    try:
        source = inspect.getsource(cls)
    except (OSError, TypeError):  # no source (frozen app): values only
        return {}
    out: dict[str, list[str]] = {}
    pending: list[str] = []
    for line in source.splitlines():
        text = line.strip()
        if text.startswith("#"):
            pending.append(text)
        elif m := re.match(r"([A-Za-z_]\w*)\s*:[^=]+=", text):
            if pending:
                out[m.group(1)] = pending
            pending = []
        else:
            pending = []
    return out


def describe(settings: Settings) -> str:
    """The settings as a TOML document, each default with the comment that gives its source."""
    lines = ["# formcheck settings: every value, with the source of its default",
             "# (edit and pass with --settings FILE, or change one with --set section.key=value)"]
    for section in SECTIONS:
        lines.append(f"\n[{section}]")
        comments = _field_comments(type(getattr(settings, section)))
        for f in fields(getattr(settings, section)):
            lines.extend(comments.get(f.name, []))
            value = getattr(getattr(settings, section), f.name)
            if isinstance(value, bool):
                text = "true" if value else "false"
            elif isinstance(value, str):
                text = f'"{value}"'
            else:
                text = repr(value)
            lines.append(f"{f.name} = {text}")
    return "\n".join(lines)
