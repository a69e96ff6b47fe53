"""Simulated studies (no training): the selection/confirmation protocol's estimates are unbiased and
its tests keep their level, a real effect is found, and what cannot be tested says so.

A run is simulated as per-row correctness: row r of a validation split is right with probability
sigmoid(difficulty_r + preference_{config, r} + shift_{config, seed} + noise), so configurations differ
in which rows they get right (their preference on these rows), seeds shift whole runs, and every
run is deterministic in (configuration, seed, split), as training is. Configurations "identical in
distribution" draw their preferences from one distribution: no one of them is better on average.
"""

from __future__ import annotations

import dataclasses
import zlib

import numpy as np
from scipy.special import expit

from newslab.config import ABLATIONS, BASELINE
from newslab.report import effects as fx
from newslab.report.stats import ALPHA, TestResult, Untested, crossed_test
from newslab.study import StudyResult, StudySpec, TrialRecord

ROWS = 300  # the stand-in's validation split
SIZES = [[16, 2], [32, 4], [64, 4], [128, 4]]  # four configurations identical in distribution
VARIANTS = [BASELINE, *ABLATIONS]


class World:
    """Validation rows of two splits (selection, confirmation) and per-configuration row preferences."""

    def __init__(self, seed: int, preference: float = 0.8, shift: float = 0.15, noise: float = 1.0):
        self.seed, self.shift, self.noise, self.preference = seed, shift, noise, preference
        rng = np.random.default_rng(seed)
        self.difficulty = {split: rng.normal(3.0, 4.0, ROWS) for split in (0, 1)}
        self.preferences: dict[tuple[str, int], np.ndarray] = {}

    def run(self, config: str, seed: int, split: int, effect: float = 0.0) -> np.ndarray:
        """One training run's correctness on a split: the same (config, seed, split) gives the same run."""
        if (config, split) not in self.preferences:
            rng = np.random.default_rng(zlib.crc32(f"{self.seed}/{config}/{split}".encode()))
            self.preferences[config, split] = rng.normal(0, self.preference, ROWS)
        rng = np.random.default_rng(zlib.crc32(f"{self.seed}/{config}/{seed}/{split}".encode()))
        logit = self.difficulty[split] + self.preferences[config, split] + effect
        logit = logit + rng.normal(0, self.shift) + rng.normal(0, self.noise, ROWS)
        return rng.random(ROWS) < expit(logit)


def record(number: int, point: dict, seed: int, correct: np.ndarray, role: str = "select") -> TrialRecord:
    return TrialRecord(
        number,
        "COMPLETE",
        point,
        {},
        seed,
        val_accuracy=float(correct.mean()),
        best_epoch=3,  # selection runs peak at the last of 3 epochs: the confirmations are kept there
        role=role,
        stop_epoch=3 if role == "confirm" else None,
        val_correct="".join("1" if c else "0" for c in correct),
    )


def simulated_studies(world: World, effects: dict[str, float] | None = None) -> tuple[StudyResult, StudyResult]:
    """A grid of four equally good sizes, then an ablation study of its winner, as newslab's seed preset
    runs them: selection on seeds 0-1 of split 0, confirmation on fresh seeds (3 for the grid, 5 for the
    ablations) of a fresh split 1. The ablation study's baseline re-runs the winner on the grid's
    selection seeds: the very same runs."""
    effects = effects or {}
    grid_spec = StudySpec(
        name="grid", fixed={"epochs": 3}, scientific={"embed_dim,num_heads": SIZES}, seeds=2, confirm_seeds=3
    )
    size = lambda p: f"size{p['embed_dim']}"
    trials = [
        record(len(trials), p, s, world.run(size(p), s, 0))
        for trials in [[]]
        for p in ({"embed_dim": e, "num_heads": h} for e, h in SIZES)
        for s in grid_spec.seed_list
    ]
    trials = [record(i, t.point, t.seed, world.run(size(t.point), t.seed, 0)) for i, t in enumerate(trials)]
    grid = StudyResult("grid", grid_spec, trials)
    winner = size(grid.best().point)
    abl_spec = StudySpec(
        name="ablations", fixed={"epochs": 3}, scientific={"ablation": VARIANTS}, seeds=2, confirm_seeds=5
    )
    config = lambda v: winner if v == BASELINE else f"{winner}+{v}"  # a variant: its own row preferences
    runs = [
        record(0, {"ablation": v}, s, world.run(config(v), s, split, effects.get(v, 0.0)), role)
        for v in VARIANTS
        for role, split, seeds in (("select", 0, abl_spec.seed_list), ("confirm", 1, abl_spec.confirm_seed_list))
        for s in seeds
    ]
    return grid, StudyResult("ablations", abl_spec, runs)


def test_the_simulated_baseline_is_the_grid_winner_rerun() -> None:
    grid, ablations = simulated_studies(World(0))
    base = next(s for s in ablations.summaries() if s.point["ablation"] == BASELINE)
    assert base.val_accuracies == grid.best().val_accuracies  # deterministic: the winner's own numbers
    confirmation = ablations.confirmation(base)
    assert confirmation is not None and {t.seed for t in confirmation.trials} == set(range(1000, 1005))


def test_under_the_null_ablation_effects_are_unbiased_and_keep_the_level() -> None:
    """Six ablations that change nothing, over many simulated grid + ablation studies: the protocol's
    estimates centre on 0 and it calls one significant less often than ALPHA; the same studies judged on
    the selection runs (the winner's numbers as the baseline) come out biased against the ablations."""
    confirmed, naive, false_positives, studies_with_one = [], [], 0, 0
    for i in range(150):
        _, ablations = simulated_studies(World(i))
        found = fx.ablation_effects(ablations)
        confirmed += [e.comparison.diff for e in found.effects]
        hits = [e.comparison.verdict == "significant" for e in found.effects]
        false_positives += sum(hits)
        studies_with_one += any(hits)
        base = next(s for s in ablations.points() if s.point["ablation"] == BASELINE)
        naive += [s.val_mean - base.val_mean for s in ablations.points() if s.point["ablation"] != BASELINE]
    confirmed_mean, naive_mean = np.mean(confirmed), np.mean(naive)
    se = np.std(confirmed) / np.sqrt(len(confirmed))
    assert abs(confirmed_mean) < 3 * se, (confirmed_mean, se)  # unbiased
    assert naive_mean < -3 * np.std(naive) / np.sqrt(len(naive))  # the winner's curse this protocol removes
    assert false_positives / len(confirmed) <= ALPHA / 6 + 0.01  # Bonferroni: each test at ALPHA / 6
    assert studies_with_one / 150 <= ALPHA + 0.03  # family-wise


def test_the_paired_test_keeps_its_level_on_null_pairs() -> None:
    """Two configurations identical in distribution, 3 seeds, one split: p < ALPHA about ALPHA of the time
    (the seed shift is large here, where pooling it with the row noise would err twice as often)."""
    world = World(1, shift=0.4)
    rejections = 0
    n = 600
    for i in range(n):
        a = np.stack([world.run(f"a{i}", s, 0) for s in range(3)]).astype(float)
        b = np.stack([world.run(f"b{i}", s, 0) for s in range(3)]).astype(float)
        result = crossed_test(a - b)
        assert isinstance(result, TestResult)
        rejections += result.significant
    assert rejections / n <= ALPHA + 3 * np.sqrt(ALPHA * (1 - ALPHA) / n)


def expected(world: World, config: str, effect: float) -> float:
    """A configuration's accuracy on the confirmation split, averaged over many seeds."""
    return float(np.mean([world.run(config, s, 1, effect).mean() for s in range(2000, 2060)]))


def test_a_real_effect_is_detected_and_its_size_recovered() -> None:
    """freeze_emb costing about 10 points, every other ablation nothing: found in most studies, and
    the estimates centre on the true cost."""
    detected, sizes, truth = 0, [], []
    for i in range(30):
        world = World(1000 + i)
        grid, ablations = simulated_studies(world, {"freeze_emb": -1.3})
        effect = next(e for e in fx.ablation_effects(ablations).effects if e.name == "freeze_emb")
        detected += effect.comparison.verdict == "significant" and effect.comparison.diff < 0
        sizes.append(effect.comparison.diff)
        assert isinstance(effect.comparison.test, TestResult) and effect.comparison.test.detectable > 0
        # the true cost on the confirmation split: the expectation over many seeds
        winner = f"size{grid.best().point['embed_dim']}"
        truth.append(expected(world, f"{winner}+freeze_emb", -1.3) - expected(world, winner, 0.0))
    assert detected >= 24  # 80%: five confirmation seeds, Bonferroni over six ablations
    assert abs(np.mean(sizes) - np.mean(truth)) < 3 * np.std(np.subtract(sizes, truth)) / np.sqrt(len(sizes))


def test_zero_variance_and_too_few_seeds_are_untested_with_their_reason() -> None:
    same = np.zeros((3, ROWS))
    assert crossed_test(same) == Untested("zero_variance")
    assert crossed_test(np.ones((2, ROWS))) == Untested("too_few_seeds")
    # two variants that predict identically on every confirmation run: no noise to judge a difference by
    _, ablations = simulated_studies(World(7))
    base = [t for t in ablations.trials if t.point["ablation"] == BASELINE]
    clone = [dataclasses.replace(t, point={"ablation": "no_dropout"}) for t in base]
    ablations.trials = [t for t in ablations.trials if t.point["ablation"] != "no_dropout"] + clone
    effect = next(e for e in fx.ablation_effects(ablations).effects if e.name == "no_dropout")
    assert effect.comparison.verdict == "untested" and effect.comparison.test == Untested("zero_variance")


def calibration(sims: int = 2000) -> None:
    """The table in docs/statistics.md: false-positive rate (at ALPHA and at ALPHA / 6, a Bonferroni
    family of six) and power of the paired crossed test and of Welch's t on per-seed accuracies."""
    from scipy import stats as sps

    print("seeds  seed shift  effect (logit)  test     p<0.05  p<0.05/6")
    for seeds, shift, effect in [(3, 0.15, 0.0), (3, 0.4, 0.0), (5, 0.15, 0.0), (3, 0.15, -0.4), (5, 0.15, -0.4)]:
        world = World(11, shift=shift)
        p = {"crossed": [], "welch": []}
        for i in range(sims):
            a = np.stack([world.run(f"a{i}", s, 0) for s in range(seeds)]).astype(float)
            b = np.stack([world.run(f"b{i}", s, 0, effect) for s in range(seeds)]).astype(float)
            result = crossed_test(a - b)
            p["crossed"].append(result.p if isinstance(result, TestResult) else 1.0)
            p["welch"].append(sps.ttest_ind(a.mean(1), b.mean(1), equal_var=False).pvalue)
        for name, values in p.items():
            v = np.asarray(values)
            print(
                f"{seeds:>5}  {shift:>10}  {effect:>14}  {name:<7}  {np.mean(v < ALPHA):>6.3f}  {np.mean(v < ALPHA / 6):>8.4f}"
            )


if __name__ == "__main__":  # python tests/test_report_simulation.py
    calibration()
