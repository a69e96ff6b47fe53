"""The study presets `newslab study run NAME` knows: the original manual's grid and ablations (seed-*), the quick
handbook's (quick-*), and the chapters of the original manual's TODO list — positional encodings, sequence length
and batch size, pretraining, search — each at its grid's best configuration (`base_study`)."""

from __future__ import annotations

from typing import Any

from ..config import ABLATIONS, BASELINE
from ..positions import POSITIONAL_ENCODINGS


def _ablations(base: str, name: str, **fixed: Any) -> dict:
    # every registered ablation against the baseline, so a new ablation joins the presets by itself
    return {
        "name": name,
        "base_study": base,
        "fixed": fixed,
        "scientific": {"ablation": [BASELINE, *ABLATIONS]},
    }


def _pos_enc(base: str, name: str, **fixed: Any) -> dict:
    # every registered encoding at the base study's best configuration; sinusoidal (the default) first, the
    # reference the others are compared with (report/positional.py)
    return {
        "name": name,
        "base_study": base,
        "fixed": fixed,
        "scientific": {"pos_encoding": list(POSITIONAL_ENCODINGS)},
    }


def _scale(base: str, name: str, center: tuple[int, int], lengths: list[int], batches: list[int], **fixed) -> dict:
    # one factor at a time around `center` (max_len, batch_size), the reference every other point is compared
    # with (report/scale.py): longer and shorter sequences at the center's batch, then batch sizes at its length
    max_len, batch = center
    levels = [
        list(center),
        *([n, batch] for n in lengths if n != max_len),
        *([max_len, b] for b in batches if b != batch),
    ]
    return {"name": name, "base_study": base, "fixed": fixed, "scientific": {"max_len,batch_size": levels}}


def _pretraining(base: str, name: str, **fixed: Any) -> dict:
    # from scratch first: the reference the pretrained variants are compared with (report/pretraining.py)
    levels = [[None, "full"], ["pretrain", "full"], ["pretrain", "partial"]]
    return {"name": name, "base_study": base, "fixed": fixed, "scientific": {"init_from,finetune": levels}}


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
    # the original manual's TODO "other positional encodings": each at its own best lr, five confirmation
    # seeds as the ablations (a family of five tests against sinusoidal)
    "pos-enc": {
        **_pos_enc("seed-grid", "pos-enc", epochs=3),
        "nuisance": {"lr": [5e-4, 1e-3]},
        "seeds": 2,
        "confirm_seeds": 5,
    },
    # the original manual's TODO "longer sequences and bigger batches": max_len up to 512 and batches of 16-256,
    # each at its own best lr over a grid wide enough for every batch size (the lr scaling rule is measured on it)
    "scale": {
        **_scale("seed-grid", "scale", (128, 64), [64, 256, 512], [16, 32, 128, 256], epochs=3),
        "nuisance": {"lr": [2.5e-4, 5e-4, 1e-3, 2e-3, 4e-3]},
        "seeds": 2,
        "confirm_seeds": 3,
    },
    "quick-scale": {
        **_scale(
            "quick-grid",
            "quick-scale",
            (64, 64),
            [32, 128, 256],
            [16, 32, 128, 256],
            **{k: v for k, v in _QUICK.items() if k not in ("max_len", "batch_size")},
        ),
        "nuisance": {"lr": [3e-4, 1e-3, 3e-3, 1e-2, 3e-2]},  # batch 16's best lies low, batch 256's high
        "seeds": 1,
        "confirm_seeds": 3,
    },
    # the original manual's TODO "pretraining + fine-tuning": from scratch against a masked-language-model encoder
    # pretrained on the same training texts, fine-tuned in full or with its embeddings frozen, at equal budget
    "pretraining": {
        **_pretraining("seed-grid", "pretraining", epochs=3, pretrain_epochs=40),
        "nuisance": {"lr": [2.5e-4, 5e-4, 1e-3, 2e-3]},
        "seeds": 2,
        "confirm_seeds": 3,
    },
    "quick-pretraining": {
        **_pretraining("quick-grid", "quick-pretraining", **_QUICK, pretrain_epochs=40),
        "nuisance": {"lr": [3e-4, 1e-3, 3e-3, 1e-2]},
        "seeds": 1,
        "confirm_seeds": 3,
    },
    # search beyond the grid: TPE draws the optimiser's settings from ranges, a median pruner stops laggards
    "search": {
        "name": "search",
        "base_study": "seed-grid",
        "fixed": {"epochs": 3},
        "search": {
            "space": {
                "lr": {"low": 2e-4, "high": 4e-3, "log": True},
                "dropout": {"low": 0.0, "high": 0.3},
                "weight_decay": {"low": 1e-3, "high": 0.3, "log": True},
                "label_smoothing": {"low": 0.0, "high": 0.2},
            },
            "sampler": "tpe",
            "trials": 30,
            "pruner": "median",
        },
        "seeds": 1,
        "confirm_seeds": 3,
    },
    "quick-search": {
        "name": "quick-search",
        "base_study": "quick-grid",
        "fixed": _QUICK,
        "search": {
            "space": {
                "lr": {"low": 3e-4, "high": 3e-2, "log": True},
                "dropout": {"low": 0.0, "high": 0.4},
                "weight_decay": {"low": 1e-3, "high": 0.3, "log": True},
            },
            "sampler": "tpe",
            "trials": 16,
            "pruner": "median",
        },
        "seeds": 1,
        "confirm_seeds": 3,
    },
    "quick-pos-enc": {
        **_pos_enc("quick-grid", "quick-pos-enc", **_QUICK),
        "nuisance": {"lr": [1e-3, 3e-3, 1e-2, 3e-2]},  # a position-free model took the highest of the ablations' three
        "seeds": 1,
        "confirm_seeds": 3,
    },
}
