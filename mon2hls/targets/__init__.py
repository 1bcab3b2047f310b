"""FPGA targets: the boards mon2hls supports, read from the YAML file shipped with the package.

A target fixes the part name handed to Vitis HLS, the default clock, and the
capacity of the programmable logic that the build's resource estimate and
default parallelism are checked against. A bare `--part` gives a target with
unknown capacity.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass, field
from importlib import resources
from typing import Any

import yaml

from ..errors import ConfigError

__all__ = [
    "BOARDS_FILE",
    "DEFAULT_TARGET",
    "DEFAULT_CLOCK_MHZ",
    "RESOURCE_KINDS",
    "Resource",
    "Target",
    "load_boards",
    "known_targets",
    "get_target",
    "target_for_part",
    "resolve_target",
]

BOARDS_FILE = "boards.yaml"

#: Target used when neither --target nor --part is given.
DEFAULT_TARGET = "pynq-z2"

#: Clock for a bare --part without --clock: a conservative choice for a
#: DSP-bound datapath, assumed rather than checked against the part's timing.
DEFAULT_CLOCK_MHZ = 100.0

#: Resource kinds in report order.
RESOURCE_KINDS = ("LUT", "FF", "DSP", "BRAM36", "URAM")

# AMD part names: a family prefix (xc, xa, xq), the device, then package and
# speed grade separated by dashes, for example xc7z020clg400-1.
_PART_PATTERN = re.compile(r"^x[a-z][a-z0-9]+(-[a-z0-9]+)+$", re.IGNORECASE)


@dataclass(frozen=True)
class Resource:
    """The capacity of one kind of programmable-logic resource on a device."""

    kind: str
    count: int
    confirmed: bool
    source: str
    agrees_with: str | None = None

    def to_dict(self) -> dict[str, Any]:
        result: dict[str, Any] = {"count": self.count, "confirmed": self.confirmed, "source": self.source}
        if self.agrees_with:
            result["agrees_with"] = self.agrees_with
        return result


@dataclass(frozen=True)
class Target:
    """A device to build for: its part name, default clock and, for known boards, its capacity."""

    name: str
    part: str
    clock_mhz: float
    description: str = ""
    family: str | None = None
    dsp_type: str | None = None
    resources: tuple[Resource, ...] = ()
    aliases: tuple[str, ...] = field(default_factory=tuple)

    @property
    def resources_known(self) -> bool:
        return bool(self.resources)

    def capacity(self, kind: str) -> int | None:
        """Return the number of `kind` resources on the device, or None when unknown."""
        for resource in self.resources:
            if resource.kind == kind:
                return resource.count
        return None

    @property
    def dsp_count(self) -> int | None:
        return self.capacity("DSP")

    def with_clock(self, clock_mhz: float | None) -> "Target":
        """Return this target with another clock (unchanged when `clock_mhz` is None)."""
        if clock_mhz is None:
            return self
        return Target(
            self.name, self.part, check_clock(clock_mhz), self.description, self.family, self.dsp_type,
            self.resources, self.aliases,
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "part": self.part,
            "clock_mhz": self.clock_mhz,
            "description": self.description,
            "family": self.family,
            "dsp_type": self.dsp_type,
            "resources_known": self.resources_known,
            "resources": {r.kind: r.to_dict() for r in self.resources},
        }


def check_clock(clock_mhz: object) -> float:
    """Validate a clock frequency in MHz (above 0 and at most 1000)."""
    try:
        value = float(clock_mhz)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise ConfigError(f"clock must be a frequency in MHz, not {clock_mhz!r}") from None
    if not (0.0 < value <= 1000.0):
        raise ConfigError(f"clock must be above 0 and at most 1000 MHz, not {clock_mhz!r}")
    return value


def _parse_board(name: str, entry: dict[str, Any]) -> Target:
    source = str(entry.get("source", ""))
    parsed = []
    for kind in RESOURCE_KINDS:
        figure = entry.get("resources", {}).get(kind)
        if figure is None:
            continue
        parsed.append(
            Resource(
                kind=kind,
                count=int(figure["count"]),
                confirmed=bool(figure.get("confirmed", False)),
                source=source,
                agrees_with=figure.get("agrees_with"),
            )
        )
    return Target(
        name=name,
        part=str(entry["part"]),
        clock_mhz=float(entry["clock_mhz"]),
        description=str(entry.get("description", "")),
        family=entry.get("family"),
        dsp_type=entry.get("dsp_type"),
        resources=tuple(parsed),
        aliases=tuple(entry.get("aliases") or ()),
    )


@functools.lru_cache(maxsize=1)
def load_boards() -> dict[str, Target]:
    """Read the known boards from the package's boards.yaml, by canonical name."""
    text = resources.files(__name__).joinpath(BOARDS_FILE).read_text(encoding="utf-8")
    document = yaml.safe_load(text)
    return {name: _parse_board(name, entry) for name, entry in document["boards"].items()}


def known_targets() -> list[str]:
    """Return the canonical board names, in file order."""
    return list(load_boards())


def get_target(name: str) -> Target:
    """Look up a board by its name or an alias, case-insensitively."""
    key = str(name).strip().lower()
    for target in load_boards().values():
        if key == target.name or key in target.aliases:
            return target
    choices = ", ".join(
        f"{t.name} (alias {', '.join(t.aliases)})" if t.aliases else t.name for t in load_boards().values()
    )
    raise ConfigError(f"unknown target {name!r}; known targets: {choices}; or give any device with --part PART")


def target_for_part(part: str) -> Target:
    """Return the target of a bare part name: a known board's data when a board uses that part.

    Any other well-formed AMD part gives a target with unknown capacity and
    the clock DEFAULT_CLOCK_MHZ.
    """
    text = str(part).strip()
    if not _PART_PATTERN.match(text):
        raise ConfigError(
            f"part {part!r} does not look like an AMD part name such as xc7z020clg400-1 "
            "(device, package and speed grade separated by dashes)"
        )
    for target in load_boards().values():
        if target.part.lower() == text.lower():
            return target
    return Target(name=text, part=text, clock_mhz=DEFAULT_CLOCK_MHZ, description=f"part {text}")


def resolve_target(target: str | None = None, part: str | None = None, clock_mhz: float | None = None) -> Target:
    """Resolve --target / --part / --clock into a Target (DEFAULT_TARGET when neither is given)."""
    if target is not None and part is not None:
        raise ConfigError(f"give either a target ({target!r}) or a part ({part!r}), not both")
    if part is not None:
        resolved = target_for_part(part)
    else:
        resolved = get_target(target if target is not None else DEFAULT_TARGET)
    return resolved.with_clock(clock_mhz)
