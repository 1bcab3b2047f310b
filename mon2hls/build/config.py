"""The configuration of one `mon2hls build`, and its YAML form `mon2hls.yaml`.

Every build writes the configuration it resolved (all defaults filled in,
the model path and its SHA-256) to `mon2hls.yaml` in the output folder, so
`mon2hls build --config OUT/mon2hls.yaml -o OTHER` rebuilds the same files.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from .. import __version__
from ..errors import ConfigError
from ..quantize.schemes import check_bits

__all__ = [
    "DEFAULT_VECTORS",
    "DEFAULT_SEED",
    "RANGE_MODES",
    "SPLITTINGS",
    "BuildConfig",
    "parse_state_format",
    "read_config",
]

#: Test vectors written to vectors/ unless --vectors says otherwise.
DEFAULT_VECTORS = 200

#: Seed of the random test inputs of models without a labelled data set.
DEFAULT_SEED = 0

SPLITTINGS = ("fb", "pr")
RANGE_MODES = ("worst-case", "data")

#: Version of the mon2hls.yaml layout, bumped when a key changes meaning.
CONFIG_VERSION = 1


def parse_state_format(text: str | tuple[int, int] | list[int] | None) -> tuple[int, int] | None:
    """Parse a state format "W,I" (total bits, integer bits including the sign) into (W, I)."""
    if text is None:
        return None
    if isinstance(text, (tuple, list)):
        parts = [str(part) for part in text]
    else:
        parts = str(text).replace("<", "").replace(">", "").split(",")
    try:
        width, integer_bits = (int(part.strip(), 10) for part in parts)
    except ValueError:
        raise ConfigError(
            f"state format must be two whole numbers W,I (total bits, integer bits), for example 24,12, "
            f"not {text!r}"
        ) from None
    if not 2 <= width <= 32:
        raise ConfigError(f"state format width must be from 2 to 32 bits, not {width} (in {text!r})")
    if not 1 <= integer_bits <= width:
        raise ConfigError(
            f"state format integer bits must be from 1 to the width {width}, not {integer_bits} (in {text!r})"
        )
    return width, integer_bits


@dataclass(frozen=True)
class BuildConfig:
    """Every option of a build. None means "let the build choose"; `resolved` configs have no None left
    except where None is itself the choice (no --part, no --data-dir, no --state-format).
    """

    model: str
    bits: int
    m: float | None = None
    layout: str = "auto"
    model_sha256: str | None = None
    scheme: str | None = None
    splitting: str = "pr"
    alpha: float | None = None
    tolerance: float | None = None
    max_iterations: int | None = None
    parallel: int | None = None
    target: str | None = None
    part: str | None = None
    clock_mhz: float | None = None
    input_range: tuple[float, float] | None = None
    state_format: tuple[int, int] | None = None
    range_mode: str = "worst-case"
    vectors: int = DEFAULT_VECTORS
    seed: int = DEFAULT_SEED
    data_dir: str | None = None
    #: Run Yosys on rtl/ and put its resource counts in the report.
    synth: bool = False
    #: Names of the options the build chose rather than the user; a rebuild
    #: with changed options chooses them again instead of keeping old values.
    chosen: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        set_ = object.__setattr__
        set_(self, "bits", check_bits(self.bits))
        set_(self, "splitting", str(self.splitting).lower())
        if self.splitting not in SPLITTINGS:
            raise ConfigError(f"unknown splitting {self.splitting!r}; choose one of: {', '.join(SPLITTINGS)}")
        if self.range_mode not in RANGE_MODES:
            raise ConfigError(f"unknown range mode {self.range_mode!r}; choose one of: {', '.join(RANGE_MODES)}")
        if self.alpha is not None and not (math.isfinite(self.alpha) and self.alpha > 0):
            raise ConfigError(f"splitting step alpha must be a positive number, not {self.alpha!r}")
        if self.tolerance is not None and not (math.isfinite(self.tolerance) and self.tolerance > 0):
            raise ConfigError(f"tolerance must be a positive number, not {self.tolerance!r}")
        if self.max_iterations is not None and not 1 <= self.max_iterations <= 65535:
            raise ConfigError(
                f"max iterations must be from 1 to 65535 (the status word holds 16 bits), "
                f"not {self.max_iterations!r}"
            )
        if self.parallel is not None and self.parallel < 1:
            raise ConfigError(f"parallelism must be at least 1 multiplier, not {self.parallel!r}")
        if self.input_range is not None:
            low, high = (float(v) for v in self.input_range)
            if not (math.isfinite(low) and math.isfinite(high) and low < high):
                raise ConfigError(f"input range must be two finite numbers LO < HI, not {self.input_range!r}")
            set_(self, "input_range", (low, high))
        set_(self, "state_format", parse_state_format(self.state_format))
        if self.vectors < 1:
            raise ConfigError(f"the number of test vectors must be at least 1, not {self.vectors!r}")

    def replace(self, **changes: Any) -> "BuildConfig":
        return dataclasses.replace(self, **changes)

    def choose(self, **choices: Any) -> "BuildConfig":
        """Fill in the options that are still None with the build's choices, and record them as chosen."""
        filled = {name: value for name, value in choices.items() if getattr(self, name) is None}
        chosen = tuple(dict.fromkeys([*self.chosen, *filled]))
        return dataclasses.replace(self, chosen=chosen, **filled)

    def unchosen(self, keep: set[str]) -> "BuildConfig":
        """Reset the options the build chose to None, except those in `keep`, so they are chosen again."""
        resets = {name: None for name in self.chosen if name not in keep}
        return dataclasses.replace(self, chosen=tuple(n for n in self.chosen if n in keep), **resets)

    def to_yaml(self) -> str:
        """Render the configuration as mon2hls.yaml: a fixed key order and no timestamps, so it is deterministic."""
        document = {
            "mon2hls": {"version": __version__, "config_version": CONFIG_VERSION},
            "model": {"path": self.model, "sha256": self.model_sha256, "m": self.m, "layout": self.layout},
            "quantization": {"bits": self.bits, "scheme": self.scheme},
            "datapath": {
                "splitting": self.splitting,
                "alpha": self.alpha,
                "tolerance": self.tolerance,
                "max_iterations": self.max_iterations,
                "input_range": list(self.input_range) if self.input_range else None,
                "state_format": list(self.state_format) if self.state_format else None,
                "range": self.range_mode,
            },
            "hardware": {
                "target": self.target,
                "part": self.part,
                "clock_mhz": self.clock_mhz,
                "parallel": self.parallel,
                "synth": self.synth,
            },
            "vectors": {"count": self.vectors, "seed": self.seed, "data_dir": self.data_dir},
            "chosen_by_build": list(self.chosen),
        }
        header = "# mon2hls build configuration; rebuild with: mon2hls build --config mon2hls.yaml -o OUT\n"
        return header + yaml.safe_dump(document, sort_keys=False, default_flow_style=False)

    @classmethod
    def from_yaml(cls, text: str, source: str = "<config>") -> "BuildConfig":
        """Parse mon2hls.yaml; raises ConfigError naming the file and the missing or invalid key."""
        try:
            document = yaml.safe_load(text)
        except yaml.YAMLError as error:
            raise ConfigError(f"{source} is not valid YAML: {error}") from None
        if document is None:
            raise ConfigError(f"{source} is empty; pass the mon2hls.yaml that mon2hls build wrote")
        if not isinstance(document, dict):
            raise ConfigError(
                f"{source} must be a YAML mapping of sections (model, quantization, datapath, hardware) as "
                f"mon2hls build writes it, not a single {_yaml_kind(document)}"
            )
        model = _section(document, "model", source)
        quantization = _section(document, "quantization", source)
        datapath = _section(document, "datapath", source)
        hardware = _section(document, "hardware", source)
        vectors = _section(document, "vectors", source, required=False)
        for section, key, values in (("model", "path", model), ("quantization", "bits", quantization)):
            if values.get(key) is None:
                raise ConfigError(
                    f"{source} lacks the required key {section}.{key}; add it or rebuild from the model"
                )
        try:
            return cls(
                model=str(model["path"]),
                model_sha256=None if model.get("sha256") is None else str(model["sha256"]),
                m=model.get("m"),
                layout=model.get("layout", "auto"),
                bits=quantization["bits"],
                scheme=quantization.get("scheme"),
                splitting=datapath.get("splitting", "pr"),
                alpha=datapath.get("alpha"),
                tolerance=datapath.get("tolerance"),
                max_iterations=datapath.get("max_iterations"),
                input_range=tuple(datapath["input_range"]) if datapath.get("input_range") else None,
                state_format=tuple(datapath["state_format"]) if datapath.get("state_format") else None,
                range_mode=datapath.get("range", "worst-case"),
                target=hardware.get("target"),
                part=hardware.get("part"),
                clock_mhz=hardware.get("clock_mhz"),
                parallel=hardware.get("parallel"),
                synth=bool(hardware.get("synth", False)),
                vectors=int(vectors.get("count", DEFAULT_VECTORS)),
                seed=int(vectors.get("seed", DEFAULT_SEED)),
                data_dir=vectors.get("data_dir"),
                chosen=tuple(document.get("chosen_by_build") or ()),
            )
        except (TypeError, ValueError) as error:
            raise ConfigError(
                f"{source} has a value of the wrong type ({error}); compare it with a mon2hls.yaml that "
                "mon2hls build wrote"
            ) from None


def _yaml_kind(value: Any) -> str:
    """Name the YAML kind of a parsed value: list, string, number or boolean."""
    if isinstance(value, list):
        return "list"
    if isinstance(value, str):
        return "string"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    return "scalar value"


def _section(document: dict[str, Any], key: str, source: str, *, required: bool = True) -> dict[str, Any]:
    """Return the mapping `document[key]`; raise ConfigError if it is absent but required or not a mapping."""
    value = document.get(key)
    if value is None:
        if required:
            raise ConfigError(f"{source} lacks the required section {key}; add it or rebuild from the model")
        return {}
    if not isinstance(value, dict):
        raise ConfigError(f"{source}: section {key} must be a mapping of options, not a {_yaml_kind(value)}")
    return value


def read_config(path: str | Path) -> BuildConfig:
    """Read a mon2hls.yaml written by an earlier build."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as error:
        raise ConfigError(f"cannot read configuration file {path}: {error.strerror}") from None
    return BuildConfig.from_yaml(text, str(path))
