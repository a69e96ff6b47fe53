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
    DataConfig,
    RunConfig,
    load_config_file,
    settable_in_studies,
)
from ..errors import ConfigError
from .presets import PRESETS

SPEC_FIELDS = (
    "name", "fixed", "scientific", "nuisance", "seeds", "confirm_seeds", "base_study", "max_retries", "search"
)  # fmt: skip
CONFIRM_SEED_BASE = 1000  # `confirm_seeds: N` means seeds 1000..1000+N-1, never a selection seed
# confirmation runs hold out another validation split (--split-seed + 1): the configuration was chosen
# for fitting the selection split's rows, and would keep that advantage on them
CONFIRM_SPLIT_OFFSET = 1
# fields added after studies were first recorded: left out of the digest at their default, so a study
# recorded before them resumes
LATER_FIELDS = {"confirm_seeds": 0, "search": None}
# `search`: Optuna's samplers choose each trial's point from ranges (a grid is `scientific` lists, queued once each)
SAMPLERS = ("tpe", "random", "cmaes")
PRUNERS = ("median", "hyperband", "none")
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
    search: dict[str, Any] | None = (
        None  # {space: {name: {low, high[, log, step]} | {choices}}, sampler, trials, pruner}
    )

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
        if self.search is not None:
            self._check_search(where, seen)
        elif not self.scientific and not self.nuisance:
            raise ConfigError(f"{where}: empty grid (no scientific or nuisance parameters)")

    def _check_search(self, where: str, seen: set[str]) -> None:
        search = self.search
        if not isinstance(search, dict):
            raise ConfigError(f"{where}: search must be a mapping of space, sampler, trials, pruner")
        unknown = sorted(set(search) - {"space", "sampler", "trials", "pruner"})
        if unknown:
            raise ConfigError(
                f"{where}: search: unknown field(s) {', '.join(unknown)}; it has space, sampler, trials, pruner"
            )
        if self.scientific or self.nuisance:
            raise ConfigError(f"{where}: a search has no scientific or nuisance lists: its sampler chooses every point")
        if self.seed_list != self.seed_list[:1]:
            raise ConfigError(
                f"{where}: a search runs each sampled point on one seed (seeds: 1); confirm_seeds confirm it"
            )
        sampler, pruner, trials = search.get("sampler", "tpe"), search.get("pruner", "median"), search.get("trials")
        if sampler not in SAMPLERS:
            raise ConfigError(
                f"{where}: search.sampler {sampler!r} is not one of: {' | '.join(SAMPLERS)} (a grid: scientific lists)"
            )
        if pruner not in PRUNERS:
            raise ConfigError(f"{where}: search.pruner {pruner!r} is not one of: {' | '.join(PRUNERS)}")
        if isinstance(trials, bool) or not isinstance(trials, int) or trials < 1:
            raise ConfigError(f"{where}: search.trials must be a positive count of trials, got {trials!r}")
        space = search.get("space")
        if not isinstance(space, dict) or not space:
            raise ConfigError(
                f"{where}: search.space must map settings to ranges, e.g. lr: {{low: 1e-4, high: 3e-3, log: true}}"
            )
        known = {*settable_in_studies(), "ablation"}
        for name, dist in space.items():
            at = f"{where}: search.space.{name}"
            if name not in known:
                raise ConfigError(f"{at}: unknown parameter")
            if name in seen:
                raise ConfigError(f"{at}: {name!r} is set twice (fixed and search)")
            if not isinstance(dist, dict):
                raise ConfigError(f"{at}: needs {{low, high}} or {{choices: [...]}}")
            if "choices" in dist:
                if set(dist) != {"choices"} or not isinstance(dist["choices"], list) or not dist["choices"]:
                    raise ConfigError(f"{at}: choices must be the only key and a non-empty list")
                values = dist["choices"]
            else:
                extra = sorted(set(dist) - {"low", "high", "log", "step"})
                low: Any = dist.get("low")
                high: Any = dist.get("high")
                if extra or not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in (low, high)):
                    raise ConfigError(f"{at}: a range is {{low, high}} numbers, optionally log: true or a step")
                if not low < high or dist.get("log") and low <= 0:
                    raise ConfigError(f"{at}: needs low < high (and low > 0 on a log scale), got {low!r}..{high!r}")
                if dist.get("log") and dist.get("step") is not None:
                    raise ConfigError(f"{at}: a log scale takes no step (Optuna samples one or the other)")
                values = [low, high]
            for value in values:  # each end of the range must make a valid run
                try:
                    self.config({name: value}, {}, self.seed_list[0])
                except ConfigError as exc:
                    raise ConfigError(f"{at}: {value!r}: {exc}") from None

    def sampler(self, seed: int):
        """The spec's Optuna sampler, seeded; TPE with a constant liar, so parallel workers spread out."""
        import optuna

        assert self.search is not None
        kind = self.search.get("sampler", "tpe")
        if kind == "random":
            return optuna.samplers.RandomSampler(seed=seed)
        if kind == "cmaes":  # categorical choices fall back to random sampling (Optuna warns once)
            return optuna.samplers.CmaEsSampler(seed=seed, warn_independent_sampling=False)
        return optuna.samplers.TPESampler(seed=seed, constant_liar=True, n_startup_trials=min(8, self.search["trials"]))

    def pruner(self):
        """The spec's Optuna pruner, fed the validation accuracy of every epoch."""
        import optuna

        kind = (self.search or {}).get("pruner", "median")
        epochs = self.fixed.get("epochs", RunConfig().optim.epochs)
        if kind == "hyperband":
            return optuna.pruners.HyperbandPruner(min_resource=1, max_resource=epochs)
        if kind == "median":  # not before 4 trials finished, nor before epoch 2 (steps are epochs, from 1)
            return optuna.pruners.MedianPruner(n_startup_trials=4, n_warmup_steps=2)
        return optuna.pruners.NopPruner()

    def suggest(self, trial) -> dict[str, Any]:
        """A search trial's point, drawn by the study's sampler from `search.space`."""
        assert self.search is not None
        point: dict[str, Any] = {}
        for name, dist in self.search["space"].items():
            if "choices" in dist:
                point[name] = trial.suggest_categorical(name, dist["choices"])
            elif (
                isinstance(dist["low"], int)
                and isinstance(dist["high"], int)
                and not isinstance(dist.get("step", 1), float)
            ):
                point[name] = trial.suggest_int(
                    name, dist["low"], dist["high"], step=dist.get("step", 1), log=bool(dist.get("log"))
                )
            else:
                point[name] = trial.suggest_float(
                    name, dist["low"], dist["high"], step=dist.get("step"), log=bool(dist.get("log"))
                )
        return point

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
        if section == "search":
            return list((self.search or {}).get("space", {}))
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
        """Every point x nuisance x seed, each validated as a RunConfig before anything runs; a search's
        `search.trials` slots, each a point its sampler chooses when a worker takes it."""
        if self.search is not None:
            return [TrialPlan({}, {}, self.seed_list[0], slot=i) for i in range(self.search["trials"])]
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
    slot: int | None = None  # a search trial's number among search.trials (its point is sampled later)

    @property
    def role(self) -> str:
        return "select" if self.stop_epoch is None else "confirm"

    @property
    def key(self) -> str:
        if self.slot is not None:
            return f"search={self.slot} | seed={self.seed}"
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
            "slot": self.slot,
        }


def _product(grid: dict[str, list]) -> list[dict]:
    axes = []
    for key, values in grid.items():
        names = key.split(",")
        axes.append([dict(zip(names, v if len(names) > 1 else [v])) for v in values])
    return [{k: v for part in combo for k, v in part.items()} for combo in itertools.product(*axes)]


def point_key(values: dict) -> str:
    return ",".join(f"{k}={v}" for k, v in values.items()) or "-"


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
