"""What the numbers ask for next: warnings about a study's design and a ready follow-up spec.

The original manual's TODO ("try more combinations") made automatic: each warning names what
limits a conclusion — the chosen value at the edge of its grid, the chosen epoch the last one
trained (a curve still rising), a verdict too imprecise for its seeds — and `next_spec` widens,
lengthens or repeats the study accordingly, as a spec `newslab study run FILE` accepts as it is.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from typing import Any

from ..config import BASELINE, OptimConfig
from ..errors import ConfigError
from ..study.results import StudyResult, chosen_epoch
from ..study.spec import StudySpec
from . import effects as fx
from .stats import MIN_SEEDS, TestResult, Untested

MAX_SEEDS = 10  # more confirmation seeds than this are not proposed: a larger validation split helps more


@dataclass(frozen=True)
class Warning:
    """One limit of a study's conclusions and the change that lifts it."""

    kind: str  # "edge" | "last_epoch" | "seeds"
    study: str
    values: dict[str, Any] = field(default_factory=dict)  # what the sentence states (param, value, ...)


def _grid_values(spec: StudySpec, name: str) -> list | None:
    """The ordered numeric values a single (not joint) scientific or nuisance parameter took."""
    for key, values in {**spec.scientific, **spec.nuisance}.items():
        if key == name and len(values) >= 2 and all(isinstance(v, int | float) for v in values):
            return sorted(values)
    return None


def find_warnings(result: StudyResult) -> list[Warning]:
    points = result.points()
    if not points:
        return []
    spec, found = result.spec, []
    # the configuration the study's conclusions rest on: the best point, or an ablation study's baseline
    best = next((s for s in points if s.point.get("ablation") == BASELINE), points[0])
    chosen = {**best.point, **best.nuisance}
    for name, value in chosen.items():
        values = _grid_values(spec, name)
        if values is not None and value in (values[0], values[-1]):
            side = "high" if value == values[-1] else "low"
            found.append(Warning("edge", result.name, {"param": name, "value": value, "side": side}))
    epochs = {**spec.fixed, **chosen}.get("epochs", OptimConfig.epochs)  # fixed, or varied and chosen
    if chosen_epoch(best) >= epochs:
        found.append(Warning("last_epoch", result.name, {"epoch": chosen_epoch(best), "epochs": epochs}))
    seeds = _seeds_wanted(result)
    if seeds is not None:
        found.append(Warning("seeds", result.name, seeds))
    return found


def _tests(result: StudyResult) -> list[fx.Comparison | fx.FactorEffect]:
    if fx.is_ablation_study(result):
        return [e.comparison for e in fx.ablation_effects(result).effects]
    race = fx.runner_up(result)
    return ([race] if race else []) + list(fx.factor_effects(result))


def _seeds_wanted(result: StudyResult) -> dict[str, Any] | None:
    """Confirmation seeds that would make the largest inconclusive (or seed-starved) comparison
    decidable at its observed size: the detectable effect shrinks as 1 / sqrt(seeds)."""
    confirmed = len(result.spec.confirm_seed_list)
    wanted = 0
    for c in _tests(result):
        t = c.test
        if isinstance(t, Untested) and t.reason == "too_few_seeds":
            wanted = max(wanted, MIN_SEEDS)
        elif isinstance(t, TestResult) and not t.significant and t.diff and t.detectable > abs(t.diff):
            wanted = max(wanted, math.ceil(t.seeds * (t.detectable / abs(t.diff)) ** 2))
    if min(wanted, MAX_SEEDS) <= confirmed:
        return None  # more seeds than this design already has would not be proposed
    return {"seeds": confirmed, "wanted": min(wanted, MAX_SEEDS), "capped": wanted > MAX_SEEDS}


def _widened(values: list, side: str) -> list:
    """One more value beyond the edge, at the grid's own spacing (a ratio for positive values)."""
    ordered = sorted(values)
    lo, hi = (ordered[0], ordered[1]) if side == "low" else (ordered[-2], ordered[-1])
    if lo > 0 and hi > 0:
        ratio = hi / lo
        new = ordered[0] / ratio if side == "low" else ordered[-1] * ratio
        new = float(f"{new:.3g}")
    else:
        step = hi - lo
        new = ordered[0] - step if side == "low" else ordered[-1] + step
    if all(isinstance(v, int) for v in values):
        new = max(1, round(new))
    return [new, *ordered] if side == "low" else [*ordered, new]


def next_spec(result: StudyResult, warnings: list[Warning]) -> dict[str, Any] | None:
    """The follow-up spec the warnings call for (None without warnings): the edge values widened,
    twice the epochs, more confirmation seeds. Self-contained: an ablation study's inherited base
    configuration is written out as fixed settings."""
    if not warnings:
        return None
    spec = result.spec.to_dict()
    spec.update(name=f"{result.name}-next", base_study=None)
    for w in warnings:
        changed = json.loads(json.dumps(spec))
        if w.kind == "edge":
            section = "scientific" if w.values["param"] in spec["scientific"] else "nuisance"
            changed[section][w.values["param"]] = _widened(spec[section][w.values["param"]], w.values["side"])
        elif (
            w.kind == "last_epoch"
            and "epochs" in changed["fixed"]
            or w.kind == "last_epoch"
            and not any("epochs" in key.split(",") for key in {**changed["scientific"], **changed["nuisance"]})
        ):
            changed["fixed"]["epochs"] = 2 * w.values["epochs"]
        elif w.kind == "seeds":
            changed["confirm_seeds"] = w.values["wanted"]
        try:
            StudySpec(**changed).trials()  # what is written must run as it is
        except ConfigError:
            continue  # e.g. a widened embed_dim that no head count divides: that change is left out
        spec = changed
    return spec
