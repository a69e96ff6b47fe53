"""Hand-built StudyResults (no training): grids and ablation studies with known effects, in both stages.

A study is built the way the runner records one: selection trials (role "select", every point x
nuisance x selection seed), then, per point at the nuisance value its selection chose, confirmation
trials (role "confirm", the spec's confirmation seeds, `stop_epoch` = the epoch chosen on the selection
runs) on a validation split of their own (the runner's `--split-seed` + 1). Every trial carries
`val_correct`, its per-row correctness on its stage's validation split, drawn so that a run's accuracy
is `accuracy(point, nuisance)` plus Gaussian seed noise:

    row r is right iff Phi(a z_r + b e_{seed, r} + c f_{run, r}) < accuracy of the run

with z the row's difficulty (shared by every run: the finite validation set), e the seed's (shared by
the configurations trained on that seed: pairing by seed) and f the run's own. The latent is N(0, 1),
so each row is right with the run's accuracy; its val_accuracy is the mean of its val_correct.
Test accuracies are `accuracy + TEST_OFFSET`: far from every validation number, so a test accuracy
printed where it is sealed cannot hide among them.
"""

from __future__ import annotations

import random

import numpy as np
from scipy.special import ndtr

from newslab.config import ABLATIONS, BASELINE
from newslab.study import StudyResult, StudySpec, TrialRecord
from newslab.study.results import chosen_epoch

N_TEST = 400
N_VAL = 4000  # about the size of the real validation split (5% of 120,000 rows: 6,000)
TEST_LABELS = [i % 4 for i in range(N_TEST)]
TEST_OFFSET = -0.3
ROW, SEED, RUN = 0.8, 0.3, float(np.sqrt(1 - 0.8**2 - 0.3**2))  # weights of the latent's parts


def predictions(accuracy: float, rng: random.Random) -> list[int]:
    """Test predictions that are right with probability `accuracy` (wrong ones: the next class)."""
    return [y if rng.random() < accuracy else (y + 1) % 4 for y in TEST_LABELS]


def history(acc: float, epochs: int = 3, peak: int = 2) -> list[dict]:
    """A validation curve rising to `acc` at epoch `peak`, then slightly falling."""
    return [
        {
            "epoch": e,
            "train_loss": 1.2 / e,
            "val_loss": 1.0 / e,
            "val_accuracy": acc * (1 - 0.05 * (peak - e)) if e <= peak else acc * (1 - 0.01 * (e - peak)),
            "val_macro_f1": acc,
            "lr": 1e-3,
            "grad_norm": 0.5,
        }
        for e in range(1, epochs + 1)
    ]


class _Rows:
    """The shared validation set: row difficulties, and each seed's part of the latent."""

    def __init__(self, seed: int, n: int):
        self.rng = np.random.default_rng(seed)
        self.seed, self.n = seed, n
        self.z = self.rng.standard_normal(n)
        self._seeds: dict[int, np.ndarray] = {}

    def correct(self, accuracy: float, seed: int) -> str:
        if seed not in self._seeds:
            # a stream of its own: default_rng([s, 0]) would repeat default_rng(s), the rows' difficulties
            self._seeds[seed] = np.random.default_rng([self.seed, seed, 1]).standard_normal(self.n)
        latent = ROW * self.z + SEED * self._seeds[seed] + RUN * self.rng.standard_normal(self.n)
        return "".join("1" if right else "0" for right in ndtr(latent) < accuracy)


def study(
    name: str,
    scientific: dict,
    accuracy,
    seeds: int = 3,
    noise: float = 0.004,
    nuisance: dict | None = None,
    fixed: dict | None = None,
    failed: int = 0,
    seed: int = 0,
    confirm: int = 5,
    peak: int = 2,
    rows: int = N_VAL,
    predictions_recorded: bool = True,
) -> StudyResult:
    """A finished two-stage study whose runs' val accuracy is accuracy(point, nuisance) + Gaussian seed
    noise; `confirm` confirmation seeds (0: no confirmation stage); the validation curves peak at epoch
    `peak`; `predictions_recorded` False makes an older study (no val_correct)."""
    fixed = fixed or {"epochs": 3}
    spec = StudySpec(
        name=name,
        fixed=fixed,
        scientific=scientific,
        nuisance=nuisance or {},
        seeds=seeds,
        confirm_seeds=confirm,
    )
    rng = random.Random(seed)
    splits = {"select": _Rows(seed, rows), "confirm": _Rows(seed + 1_000_003, rows)}  # fresh rows confirm
    epochs = fixed.get("epochs", 3)
    trials: list[TrialRecord] = []

    def trial(point: dict, nuisance: dict, run_seed: int, stop_epoch: int | None = None) -> TrialRecord:
        role = "select" if stop_epoch is None else "confirm"
        correct = splits[role].correct(accuracy(point, nuisance) + rng.gauss(0, noise), run_seed)
        acc = correct.count("1") / len(correct)
        curve = history(acc, epochs, peak)
        return TrialRecord(
            number=len(trials),
            state="COMPLETE",
            point=point,
            nuisance=nuisance,
            seed=run_seed,
            val_accuracy=acc,
            test_accuracy=acc + TEST_OFFSET,
            test_macro_f1=acc + TEST_OFFSET - 0.01,
            best_epoch=stop_epoch or min(peak, epochs),
            params={"embedding": 500, "encoder": 400, "head": 100, "total": 1000},
            wall_time_s=2.0,
            history=curve[:stop_epoch] if stop_epoch else curve,
            role=role,
            stop_epoch=stop_epoch,
            val_correct=correct if predictions_recorded else None,
        )

    for plan in spec.trials():
        trials.append(trial(plan.point, plan.nuisance, plan.seed))
    result = StudyResult(name, spec, trials, created=0.0)
    for s in result.points():
        for confirm_seed in spec.confirm_seed_list:
            trials.append(trial(s.point, s.nuisance, confirm_seed, chosen_epoch(s)))
    best = result.best()
    for t in trials:  # the test predictions of the selected point's runs (the best model section's)
        if t.point == best.point and t.nuisance == best.nuisance:
            t.test_predictions = predictions(t.test_accuracy or 0.0, rng)
    for i in range(failed):
        plan = spec.trials()[i]
        trials.append(
            TrialRecord(
                number=len(trials),
                state="FAIL",
                point=plan.point,
                nuisance=plan.nuisance,
                seed=plan.seed,
                fail_reason="TrainingDiverged: loss became nan at epoch 1",
            )
        )
    return result


def grid(name: str, accuracy, seeds: int = 3, **kw) -> StudyResult:
    """embed_dim x heads varied independently, lr in {1e-3, 3e-3}."""
    return study(name, {"embed_dim": [32, 64], "num_heads": [2, 4], "lr": [1e-3, 3e-3]}, accuracy, seeds, **kw)


def ablations(name: str, drops: dict[str, float], seeds: int = 3, **kw) -> StudyResult:
    names = [BASELINE, *ABLATIONS]
    return study(
        name,
        {"ablation": names},
        lambda p, n: 0.85 - drops.get(p["ablation"], 0.0) + (0.005 if n["lr"] == 1e-3 else 0.0),
        seeds,
        nuisance={"lr": [1e-3, 3e-3]},
        fixed={"epochs": 3, "embed_dim": 64, "num_heads": 4},
        **kw,
    )
