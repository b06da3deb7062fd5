"""A surge detector's whole state: what ``SurgeDetector.to_dict`` stores and ``from_dict`` reads.

Plain dataclasses of floats and lists, written as JSON-safe dicts (the alerts worker keeps them
in a changelog-backed table), with a version so that a stored state of another layout is refused
rather than misread.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any

from services.alerts.detector_config import HOURS_PER_DAY
from services.alerts.detector_spread import Spread

STATE_VERSION = 1
DAY_TYPES = 2  # weekday, weekend


@dataclass
class DetectorState:
    """What one key's detector has learnt: baseline, day shape, spreads, CUSUMs, onset memory."""

    last_bucket: str | None = None
    buckets_seen: int = 0
    level: float | None = None
    level_posts: float = 0.0  # exponentially weighted posts ...
    level_shape: float = 0.0  # ... and day-and-week shape: level = posts / shape
    hour_profile: list[float] = field(default_factory=lambda: [1.0] * HOURS_PER_DAY)
    hour_updates: list[int] = field(default_factory=lambda: [0] * HOURS_PER_DAY)
    day_factor: list[float] = field(default_factory=lambda: [1.0] * DAY_TYPES)
    day_updates: list[int] = field(default_factory=lambda: [0] * DAY_TYPES)
    residual_center: float = 0.0
    residual_scale: float = 0.0
    recent_observed: list[float] = field(default_factory=list)
    recent_expected: list[float] = field(default_factory=list)
    spreads: list[Spread] = field(default_factory=list)
    onset_reference: float = 0.0
    cusum: float = 0.0
    cusum_jump: float = 0.0
    dispersion: float = 1.0
    busiest_window: float = 0.0
    borrowed_posts: float = 0.0  # posts behind each hour of a shape borrowed from a parent key


def plain(obj: DetectorState | Spread) -> dict[str, Any]:
    """A state dataclass as JSON-safe dicts and lists (what ``asdict`` does, several times faster)."""
    out: dict[str, Any] = {}
    for name in _FIELDS[type(obj)]:
        value = getattr(obj, name)
        if isinstance(value, list):
            value = [plain(v) for v in value] if name == "spreads" else list(value)
        out[name] = value
    return out


_FIELDS = {cls: tuple(f.name for f in fields(cls)) for cls in (DetectorState, Spread)}


def load_state(data: dict[str, Any]) -> DetectorState:
    """The state that ``plain`` wrote (with its version); ValueError for another version."""
    if data.get("version") != STATE_VERSION:
        raise ValueError(f"unsupported detector state version {data.get('version')!r}")
    values = {name: _copy(data[name]) for name in DetectorState.__dataclass_fields__ if name in data}
    values["spreads"] = [Spread(**{k: _copy(v) for k, v in spread.items()})
                         for spread in data.get("spreads", [])]
    return DetectorState(**values)


def _copy(value: Any) -> Any:
    """Lists copied, so that updating a detector never changes the stored state it came from."""
    return list(value) if isinstance(value, list) else value
