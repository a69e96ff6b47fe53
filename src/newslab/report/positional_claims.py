"""The conclusions' positional-encoding paragraph (report/positional.py): each encoding against the reference
on the confirmation runs (the ablations' paired, Bonferroni-adjusted test), then what it does to the heads
(descriptive statistics of one model per encoding, never a test)."""

from __future__ import annotations

from .claims import Claim, Writer
from .positional import KEY, EncodingComparison, where
from .stats import TestResult

POSITIONAL: dict[str, tuple[str, str]] = {
    "ranking": (
        "Positional encodings ({study}) against {reference} ({base} on {n} confirmation runs), each at its own "
        "best {nuisance}:",
        "位置编码（{study}）相对{reference}（{n} 次确认运行上为 {base}），各自使用最佳{nuisance}：",
    ),
    "item": ("{name} ({where}): {diff}; {outcome}.", "{name}（{where}）：{diff}；{outcome}。"),
    "no_reference": (
        "Positional encodings ({study}): no confirmed {reference} run, so no encoding is compared.",
        "位置编码（{study}）：{reference}没有经确认的运行，因此没有比较任何编码。",
    ),
    "missing": ("{name}: not compared (no completed confirmation run).", "{name}：未比较（没有完成的确认运行）。"),
    "summary_better": ("Significantly better than {reference}: {names}.", "显著优于{reference}：{names}。"),
    "summary_none_better": ("No encoding is significantly better than {reference}.", "没有编码显著优于{reference}。"),
    "summary_worse": (" Significantly worse: {names}.", "显著更差：{names}。"),
    "inconclusive_spans": (" Inconclusive, with their intervals: {spans}.", "无法定论（括号内为区间）：{spans}。"),
    "span": ("{name} [{low}, {high}] pts", "{name} [{low}, {high}] 个百分点"),
    "heads": (
        "What each encoding does to the heads (one model each, {n} validation rows, means over the heads; 1 = "
        "uniform attention): {items}. {nearest} attends nearest (distance / uniform {d_low}), {farthest} farthest "
        "({d_high}).",
        "各编码对注意力头的影响（每种一个模型，{n} 个验证样本，各头均值；1 = 均匀注意力）：{items}。"
        "{nearest}关注的位置最近（距离 / 均匀分布距离 {d_low}），{farthest}最远（{d_high}）。",
    ),
    "head_item": (
        "{name} distance / uniform {d}, entropy / uniform {e} ({kinds})",
        "{name}距离 / 均匀分布距离 {d}、熵 / 均匀分布熵 {e}（{kinds}）",
    ),
    "kind_count": ("{k} {kind}", "{kind} {k} 个"),
}


def positional_claims(comparison: EncodingComparison, lang: str) -> list[Claim]:
    wr = Writer(lang, POSITIONAL)
    w, study = wr.w, comparison.study.name
    accuracy = comparison.accuracy
    reference = w.value(KEY, accuracy.reference)
    name = lambda e: w.value(KEY, e)
    claims: list[Claim] = []
    if accuracy.base is None:
        claims.append(Claim("positional", study, "untested", wr.t("no_reference", study=study, reference=reference)))
    else:
        base = accuracy.base
        nuisance = "/".join(w.param(k) for k in base.nuisance) or "-"
        text = wr.t("ranking", study=study, reference=reference, base=w.pct(base.val_mean), n=base.n, nuisance=nuisance)
        claims.append(Claim("positional", study, "info", text))
        for e in accuracy.effects:  # the spec's order: the encodings are compared, not ranked
            c = e.comparison
            item = wr.t(
                "item",
                name=name(e.name),
                where=w[f"where_{where(e.name)}"],
                diff=w.pts(c.diff),
                outcome=wr.outcome(c.test),
            )
            claims.append(Claim("positional", e.name, c.verdict, item, under=study))
        claims += [
            Claim("positional", m, "untested", wr.t("missing", name=name(m)), under=study) for m in accuracy.missing
        ]
        claims.append(Claim("positional", f"{study}/summary", "info", _summary(comparison, wr)))
    heads = [m for m in comparison.heads if m.heads is not None]
    if heads:
        means = {m.name: m.means() for m in heads}
        counts = lambda m: wr.sep.join(
            wr.t("kind_count", k=k, kind=w[f"kind_{kind}"]) for kind, k in m.kind_counts().items()
        )
        items = wr.sep.join(
            wr.t(
                "head_item",
                name=name(m.name),
                d=f"{means[m.name]['distance_rel']:.2f}",
                e=f"{means[m.name]['entropy_rel']:.2f}",
                kinds=counts(m),
            )
            for m in heads
        )
        distance = {n: v["distance_rel"] for n, v in means.items()}
        nearest, farthest = min(distance, key=distance.__getitem__), max(distance, key=distance.__getitem__)
        text = wr.t(
            "heads",
            n=heads[0].heads.samples if heads[0].heads is not None else 0,
            items=items,
            nearest=name(nearest),
            farthest=name(farthest),
            d_low=f"{distance[nearest]:.2f}",
            d_high=f"{distance[farthest]:.2f}",
        )
        claims.append(Claim("positional", f"{study}/heads", "info", text))
    return claims


def _summary(comparison: EncodingComparison, wr: Writer) -> str:
    w, accuracy = wr.w, comparison.accuracy
    reference = w.value(KEY, accuracy.reference)
    tested = [(e, e.comparison.test) for e in accuracy.effects if isinstance(e.comparison.test, TestResult)]
    better = [w.value(KEY, e.name) for e, t in tested if t.significant and e.comparison.diff > 0]
    worse = [w.value(KEY, e.name) for e, t in tested if t.significant and e.comparison.diff < 0]
    spans = [
        wr.t("span", name=w.value(KEY, e.name), low=f"{100 * t.low:+.2f}", high=f"{100 * t.high:+.2f}")
        for e, t in tested
        if not t.significant
    ]
    text = wr.t("summary_better", reference=reference, names=wr.sep.join(better)) if better else ""
    text = text or wr.t("summary_none_better", reference=reference)
    text += wr.t("summary_worse", names=wr.sep.join(worse)) if worse else ""
    return text + (wr.t("inconclusive_spans", spans=wr.sep.join(spans)) if spans else "")
