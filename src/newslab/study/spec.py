"""Study specs: which settings are fixed, which vary (scientific, nuisance) and over which seeds.

A spec names, in the tuning playbook's terms, `fixed` settings, `scientific` parameters (the
grid), `nuisance` parameters (tuned per scientific point), `seeds` and `confirm_seeds`.

A study runs in two stages, so that no verdict rests on the runs that chose:
  selection     every point x nuisance x seed; per point the nuisance value (lr) and the epoch
                with the best mean validation accuracy are chosen, and the best point overall;
  confirmation  every point at its chosen nuisance value and epoch (`--stop-epoch`) on fresh
                seeds (`confirm_seeds`, disjoint from `seeds`) and a fresh validation split
                (`--split-seed` + 1); the report's estimates and verdicts are computed on these
                runs only, so neither the seeds' luck nor the selection rows' luck is in them.
`StudySpec.config` turns one trial into the RunConfig it trains.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from ..config import (
    ABLATIONS,
    BASELINE,
    DataConfig,
    RunConfig,
    load_config_file,
    settable_in_studies,
)
from ..errors import ConfigError

SPEC_FIELDS = ("name", "fixed", "scientific", "nuisance", "seeds", "confirm_seeds", "base_study", "max_retries")
CONFIRM_SEED_BASE = 1000  # `confirm_seeds: N` means seeds 1000..1000+N-1, never a selection seed
# confirmation runs hold out another validation split (--split-seed + 1): the configuration was chosen
# for fitting the selection split's rows, and would keep that advantage on them
CONFIRM_SPLIT_OFFSET = 1
# fields added after studies were first recorded: left out of the digest at their default, so a study
# recorded before them resumes
LATER_FIELDS = {"confirm_seeds": 0}
SCALARS = (str, int, float, bool, type(None))  # the values a scientific or nuisance parameter takes


@dataclass
class StudySpec:
    """A study: the Cartesian product of scientific x nuisance values x seeds.

    `scientific`/`nuisance` map a RunConfig field to its values; a key naming several fields
    joined by commas ("embed_dim,num_heads") takes tuples that vary together. `base_study`
    starts `fixed` from the best configuration (mean validation accuracy) of that finished study.
    """

    name: str
    fixed: dict[str, Any] = field(default_factory=dict)
    scientific: dict[str, list] = field(default_factory=dict)
    nuisance: dict[str, list] = field(default_factory=dict)
    seeds: int | list[int] = 3
    confirm_seeds: int | list[int] = 0
    base_study: str | None = None
    max_retries: int = 2

    def __post_init__(self) -> None:
        where = f"study spec {self.name!r}"
        if not isinstance(self.name, str) or not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]*", self.name):
            raise ConfigError(f"{where}: name must be letters, digits, '-', '_' or '.'")
        if isinstance(self.seeds, bool) or not (
            isinstance(self.seeds, int)
            and self.seeds > 0
            or isinstance(self.seeds, list)
            and self.seeds
            and all(isinstance(s, int) for s in self.seeds)
        ):
            raise ConfigError(f"{where}: seeds must be a positive count or a non-empty list of integers")
        if isinstance(self.confirm_seeds, bool) or not (
            isinstance(self.confirm_seeds, int)
            and self.confirm_seeds >= 0
            or isinstance(self.confirm_seeds, list)
            and all(isinstance(s, int) and not isinstance(s, bool) for s in self.confirm_seeds)
        ):
            raise ConfigError(f"{where}: confirm_seeds must be a count >= 0 or a list of integers")
        shared = sorted(set(self.seed_list) & set(self.confirm_seed_list))
        if shared:
            raise ConfigError(
                f"{where}: confirm_seeds {shared} are also selection seeds; confirmation needs fresh seeds"
            )
        if not isinstance(self.max_retries, int) or self.max_retries < 0:
            raise ConfigError(f"{where}: max_retries must be an integer >= 0")
        for section in ("fixed", "scientific", "nuisance"):
            if not isinstance(getattr(self, section), dict):
                raise ConfigError(f"{where}: {section} must be a mapping")
        known = {*settable_in_studies(), "ablation"}  # the seed comes from `seeds`, placement from the runner
        seen: set[str] = set(self.fixed)
        for name in set(self.fixed) - known:
            raise ConfigError(f"{where}: fixed: unknown parameter {name!r}")
        for section in ("scientific", "nuisance"):
            for key, values in getattr(self, section).items():
                names = key.split(",")
                for name in names:
                    if name not in known:
                        raise ConfigError(f"{where}: {section}: unknown parameter {name!r}")
                    if name in seen:
                        raise ConfigError(f"{where}: {section}: {name!r} is set twice (fixed/scientific/nuisance)")
                    seen.add(name)
                if not isinstance(values, list) or not values:
                    raise ConfigError(f"{where}: {section}.{key}: needs a non-empty list of values")
                if len(names) > 1 and not all(isinstance(v, list) and len(v) == len(names) for v in values):
                    raise ConfigError(f"{where}: {section}.{key}: each value must be a list of {len(names)}")
                # one setting per name: a list or mapping here would reach the trial's settings unhashable
                for value in values if len(names) == 1 else [x for v in values for x in v]:
                    if not isinstance(value, SCALARS):
                        raise ConfigError(
                            f"{where}: {section}.{key}: {value!r} is not a single value (a string, number, "
                            f"true/false or null); an ablation combination is one string, e.g. 'no_pe+no_ffn'"
                        )
        if not self.scientific and not self.nuisance:
            raise ConfigError(f"{where}: empty grid (no scientific or nuisance parameters)")

    @property
    def seed_list(self) -> list[int]:
        return list(range(self.seeds)) if isinstance(self.seeds, int) else list(self.seeds)

    @property
    def confirm_seed_list(self) -> list[int]:
        n = self.confirm_seeds
        return list(range(CONFIRM_SEED_BASE, CONFIRM_SEED_BASE + n)) if isinstance(n, int) else list(n)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @property
    def digest(self) -> str:
        values = {k: v for k, v in self.to_dict().items() if k not in LATER_FIELDS or v != LATER_FIELDS[k]}
        return hashlib.sha256(json.dumps(values, sort_keys=True).encode()).hexdigest()[:16]

    def choices(self, name: str) -> list:
        """Every value a scientific or nuisance parameter takes in this spec."""
        for key, values in {**self.scientific, **self.nuisance}.items():
            names = key.split(",")
            if name in names:
                i = names.index(name)
                return list(dict.fromkeys(v[i] if len(names) > 1 else v for v in values))
        raise KeyError(name)

    def parameter_names(self, section: str) -> list[str]:
        return [n for key in getattr(self, section) for n in key.split(",")]

    def config(
        self, point: dict, nuisance: dict, seed: int, stop_epoch: int | None = None, **placement: Any
    ) -> RunConfig:
        """The RunConfig of one trial; `stop_epoch` makes it a confirmation run (that epoch, no early
        stopping); `placement` adds where and how it runs (out_dir, threads)."""
        # a placement left unset (None) keeps what the spec fixes
        values = {
            **self.fixed,
            **point,
            **nuisance,
            "seed": seed,
            **{k: v for k, v in placement.items() if v is not None},
        }
        if stop_epoch is not None:  # confirmation: the chosen epoch, on validation rows that did not choose
            split = values.get("split_seed", DataConfig.split_seed) + CONFIRM_SPLIT_OFFSET
            values.update(stop_epoch=stop_epoch, patience=None, split_seed=split)
        # a varied ablation overrides what the spec fixes or inherits (single_head over num_heads=8)
        return RunConfig.create(values, source=f"study {self.name}", explicit=())

    def trials(self) -> list[TrialPlan]:
        """Every point x nuisance x seed, each validated as a RunConfig before anything runs."""
        plans = []
        for point in _product(self.scientific):
            for nuisance in _product(self.nuisance):
                for seed in self.seed_list:
                    try:
                        self.config(point, nuisance, seed)
                    except ConfigError as exc:
                        raise ConfigError(f"study spec {self.name!r}: point {point_key(point)}: {exc}") from None
                    plans.append(TrialPlan(point, nuisance, seed))
        return plans


@dataclass(frozen=True)
class TrialPlan:
    point: dict
    nuisance: dict
    seed: int
    stop_epoch: int | None = None  # set on confirmation trials: the epoch chosen on the selection runs

    @property
    def role(self) -> str:
        return "select" if self.stop_epoch is None else "confirm"

    @property
    def key(self) -> str:
        key = f"{point_key(self.point)} | {point_key(self.nuisance)} | seed={self.seed}"
        return key if self.stop_epoch is None else f"{key} | epoch={self.stop_epoch}"

    def attrs(self) -> dict[str, Any]:
        """What a queued trial records of its plan (study_results reads it back)."""
        return {
            "key": self.key,
            "point": self.point,
            "nuisance": self.nuisance,
            "seed": self.seed,
            "role": self.role,
            "stop_epoch": self.stop_epoch,
        }


def _product(grid: dict[str, list]) -> list[dict]:
    axes = []
    for key, values in grid.items():
        names = key.split(",")
        axes.append([dict(zip(names, v if len(names) > 1 else [v])) for v in values])
    return [{k: v for part in combo for k, v in part.items()} for combo in itertools.product(*axes)]


def point_key(values: dict) -> str:
    return ",".join(f"{k}={v}" for k, v in values.items()) or "-"


# ---------------------------------------------------------------------------- presets
def _ablations(base: str, name: str, **fixed: Any) -> dict:
    # every registered ablation against the baseline, so a new ablation joins the presets by itself
    return {
        "name": name,
        "base_study": base,
        "fixed": fixed,
        "scientific": {"ablation": [BASELINE, *ABLATIONS]},
    }


# The quick preset: the whole training split, small one-layer models trained to a plateau (early
# stopping on validation), a vocabulary large enough that few validation tokens are [UNK], few
# selection seeds and three confirmation seeds: fewer, better trials than a wide grid of short runs.
_QUICK = {"num_layers": 1, "max_len": 64, "vocab_size": 12000, "batch_size": 64, "epochs": 8, "patience": 2}
PRESETS: dict[str, dict] = {
    "seed-grid": {
        "name": "seed-grid",
        "fixed": {"epochs": 3, "batch_size": 64},
        "scientific": {"embed_dim,num_heads": [[64, 2], [128, 4], [256, 8]]},
        "nuisance": {"lr": [5e-4, 1e-3]},  # each size at its own best lr (the tuning playbook)
        "seeds": 2,
        "confirm_seeds": 3,
    },
    # five confirmation seeds: with three, a Bonferroni-adjusted test over six ablations has about two
    # degrees of freedom for the seed noise (docs/statistics.md)
    "seed-ablations": {
        **_ablations("seed-grid", "seed-ablations", epochs=3),
        "nuisance": {"lr": [5e-4, 1e-3]},
        "seeds": 2,
        "confirm_seeds": 5,
    },
    "quick-grid": {
        "name": "quick-grid",
        "fixed": _QUICK,
        "scientific": {"embed_dim,num_heads": [[64, 4], [128, 4]]},
        # a decade apart: too slow, about right and unstable for both sizes, so the pick lies inside
        "nuisance": {"lr": [3e-4, 3e-3, 3e-2]},
        "seeds": 2,
        "confirm_seeds": 3,
    },
    "quick-ablations": {
        **_ablations("quick-grid", "quick-ablations", **_QUICK),
        "nuisance": {"lr": [1e-3, 3e-3, 1e-2]},
        "seeds": 1,
        "confirm_seeds": 3,
    },
}


def load_spec(source: str | Path, seeds: int | None = None, name: str | None = None) -> StudySpec:
    """A spec from a preset name or a YAML/JSON file; `seeds` and `name` override it."""
    if str(source) in PRESETS:
        values = json.loads(json.dumps(PRESETS[str(source)]))  # a deep copy: the preset stays as it is
        where = f"preset {source}"
    elif Path(source).is_file():
        values = load_config_file(source)
        where = str(source)
        values.setdefault("name", Path(source).stem)
    else:
        raise ConfigError(f"{source}: neither a spec file nor a preset ({', '.join(PRESETS)})")
    unknown = sorted(set(values) - set(SPEC_FIELDS))
    if unknown:
        raise ConfigError(f"{where}: unknown field(s) {', '.join(unknown)}; a spec has {', '.join(SPEC_FIELDS)}")
    if seeds is not None:
        values["seeds"] = seeds
    if name is not None:
        values["name"] = name
    try:
        return StudySpec(**values)
    except TypeError as exc:
        raise ConfigError(f"{where}: {exc}") from None
