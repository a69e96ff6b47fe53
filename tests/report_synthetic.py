"""Hand-built StudyResults (no training): grids and ablation studies with known effects."""

from __future__ import annotations

import random

from newslab.config import ABLATIONS, BASELINE
from newslab.study import StudyResult, StudySpec, TrialRecord

N_TEST = 400
TEST_LABELS = [i % 4 for i in range(N_TEST)]


def predictions(accuracy: float, rng: random.Random) -> list[int]:
    """Test predictions that are right with probability `accuracy` (wrong ones: the next class)."""
    return [y if rng.random() < accuracy else (y + 1) % 4 for y in TEST_LABELS]


def history(acc: float, epochs: int = 3) -> list[dict]:
    return [
        {
            "epoch": e,
            "train_loss": 1.2 / e,
            "val_loss": 1.0 / e,
            "val_accuracy": acc * (0.8 + 0.2 * e / epochs),
            "val_macro_f1": acc,
            "lr": 1e-3,
            "grad_norm": 0.5,
        }
        for e in range(1, epochs + 1)
    ]


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
) -> StudyResult:
    """A finished study whose val accuracy is accuracy(point, nuisance) + Gaussian seed noise."""
    spec = StudySpec(
        name=name, fixed=fixed or {"epochs": 3}, scientific=scientific, nuisance=nuisance or {}, seeds=seeds
    )
    rng = random.Random(seed)
    trials = []
    for plan in spec.trials():
        acc = accuracy(plan.point, plan.nuisance) + rng.gauss(0, noise)
        trials.append(
            TrialRecord(
                number=len(trials),
                state="COMPLETE",
                point=plan.point,
                nuisance=plan.nuisance,
                seed=plan.seed,
                val_accuracy=acc,
                test_accuracy=acc - 0.01,
                test_macro_f1=acc - 0.02,
                best_epoch=3,
                params={"embedding": 500, "encoder": 400, "head": 100, "total": 1000},
                wall_time_s=2.0,
                history=history(acc),
                test_predictions=predictions(acc - 0.01, rng),
            )
        )
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
    return StudyResult(name, spec, trials, created=0.0)


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
