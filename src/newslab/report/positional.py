"""The positional-encoding chapter: a study that varies `pos_encoding` alone (the `pos-enc` presets) read
against its reference encoding — accuracy by the same paired, Bonferroni-adjusted test as the ablations
(effects.variant_effects), and what each encoding does to the heads (attention.HeadSummary of one model per
encoding: its confirmation run of the lowest seed, on the same validation rows).

The reference is sinusoidal, newslab's default and the original manual's encoding, when the study ran it;
otherwise the spec's first encoding.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..config import ModelConfig
from ..errors import NewslabError
from ..positions import POSITIONAL_ENCODINGS, AddedPositions
from ..study.results import StudyResult
from .attention import HEAD_KINDS, HEAD_ROWS, HeadSummary, mean_sd, summarise_run
from .effects import Selected, VariantResults, variant_effects
from .i18n import Reason

KEY = "pos_encoding"
REFERENCE = ModelConfig().pos_encoding  # "sinusoidal"


def where(name: str) -> str:
    """Where the encoding puts position: "added" to the embeddings, "attention" (in every layer) or "none"."""
    encoding = POSITIONAL_ENCODINGS.get(name)
    return "none" if encoding is None else "added" if issubclass(encoding, AddedPositions) else "attention"


def encoding_studies(results: list[StudyResult]) -> list[StudyResult]:
    """The studies with completed trials whose only scientific factor is the positional encoding."""
    return [r for r in results if r.points() and list(r.spec.scientific) == [KEY]]


@dataclass
class EncodingHeads:
    """One encoding's model, its heads summarised (or why they could not be)."""

    name: str
    heads: HeadSummary | None
    note: Reason | None = None

    def means(self) -> dict[str, float]:
        """Over the heads, the mean of each head's mean over the rows: self share and entropy / distance over
        uniform attention's."""
        assert self.heads is not None
        measures = {
            "self_share": self.heads.self_share,
            "entropy_rel": self.heads.entropy_ratio,
            "distance_rel": self.heads.distance_ratio,
        }
        return {key: float(mean_sd(values)[0].mean()) for key, values in measures.items()}

    def kind_counts(self) -> dict[str, int]:
        """How many heads are of each kind (HEAD_KINDS' order, kinds with no head left out)."""
        assert self.heads is not None
        kinds = [kind for layer in self.heads.kinds() for kind in layer]
        return {kind: kinds.count(kind) for kind in HEAD_KINDS if kind in kinds}


@dataclass
class EncodingComparison:
    study: StudyResult
    accuracy: VariantResults  # every encoding against the reference, on the confirmation runs
    heads: list[EncodingHeads]  # the spec's order; an encoding without a completed run is left out


def reference_of(result: StudyResult) -> str:
    choices = result.spec.choices(KEY)
    return REFERENCE if REFERENCE in choices else choices[0]


def compare_encodings(
    result: StudyResult, data_dir: str | Path | None = None, samples: int = HEAD_ROWS
) -> EncodingComparison:
    """Accuracy against the reference and every encoding's heads (summarise_run; a run that cannot be read is
    kept with its reason, as the attention section does)."""
    accuracy = variant_effects(result, KEY, reference_of(result))
    points = {s.point[KEY]: s for s in result.points()}
    heads = []
    for name in result.spec.choices(KEY):
        if name not in points:
            continue
        estimate = Selected(points[name], result.confirmation(points[name])).estimate
        trial = min(estimate.trials, key=lambda t: t.seed)  # as the selected model's: no choice among seeds
        if not trial.run_dir:
            heads.append(EncodingHeads(name, None, Reason("why_no_run_folder", study=result.name, trial=trial.number)))
            continue
        try:
            heads.append(EncodingHeads(name, summarise_run(trial.run_dir, data_dir, samples)))
        except NewslabError as exc:
            heads.append(EncodingHeads(name, None, Reason("compared_unreadable", run=trial.run_dir, why=exc)))
    return EncodingComparison(result, accuracy, heads)
