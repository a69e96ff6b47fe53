"""The conclusions' pretraining paragraph (report/pretraining.py): each pretrained variant against training from
scratch on the confirmation runs, at the same fine-tuning budget, with what the pretraining cost."""

from __future__ import annotations

from .claims import Claim, Writer
from .pretraining import PretrainingAnalysis, Variant

PRETRAINING: dict[str, tuple[str, str]] = {
    "intro": (
        "Pretraining ({study}) against training from scratch ({base} on {n} confirmation runs, {seconds} s a run), "
        "each at its own best lr and the same fine-tuning budget:",
        "预训练（{study}）相对从头训练（{n} 次确认运行上为 {base}，每次运行 {seconds} 秒），各自使用最佳学习率和相同的微调预算：",
    ),
    "no_reference": (
        "Pretraining ({study}): training from scratch has no confirmation run, so no variant is compared.",
        "预训练（{study}）：从头训练没有确认运行，因此没有比较任何变体。",
    ),
    "item": (
        "{name}: {diff}; {outcome}; fine-tuning {seconds} s a run, after {pretraining} s of pretraining per encoder "
        "({encoders} encoder(s): one per data split; held-out masked-token accuracy {mlm}).",
        "{name}：{diff}；{outcome}；每次微调 {seconds} 秒，此前每个编码器预训练 {pretraining} 秒"
        "（{encoders} 个编码器：每个数据划分一个；留出文本上被遮盖词元的准确率 {mlm}）。",
    ),
}


def _seconds(value: float | None) -> str:
    return "–" if value is None else f"{value:.0f}"


def variant_name(variant: Variant, w) -> str:
    """ "pretrained, fine-tuning partial" / "from scratch"."""
    if not variant.pretrained:
        return w["from_scratch"]
    mode = variant.point.get("finetune", "full")
    return f"{w['pretrained']}{w.comma}{w.param('finetune')} {w.value('finetune', mode)}"


def pretraining_claims(analysis: PretrainingAnalysis, lang: str) -> list[Claim]:
    wr = Writer(lang, PRETRAINING)
    w, study = wr.w, analysis.study.name
    base = analysis.variants[0] if analysis.variants and not analysis.variants[0].pretrained else None
    if base is None or base.confirmation is None:
        return [Claim("pretraining", study, "untested", wr.t("no_reference", study=study))]
    confirmation = base.confirmation
    intro = wr.t(
        "intro", study=study, base=w.pct(confirmation.val_mean), n=confirmation.n, seconds=_seconds(base.seconds)
    )
    claims = [Claim("pretraining", study, "info", intro)]
    for v in analysis.variants:
        if v.comparison is None:
            continue
        accuracies = [e.held_out_accuracy for e in v.encoders if e.held_out_accuracy is not None]
        item = wr.t(
            "item",
            name=variant_name(v, w),
            diff=w.pts(v.comparison.diff),
            outcome=wr.outcome(v.comparison.test),
            seconds=_seconds(v.seconds),
            pretraining=_seconds(v.pretraining_seconds),
            encoders=len(v.encoders),
            mlm=wr.sep.join(w.pct(a, 1) for a in accuracies) or "–",
        )
        claims.append(Claim("pretraining", str(v.point), v.comparison.verdict, item, under=study))
    return claims
