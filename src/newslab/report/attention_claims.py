"""The conclusions' attention paragraph: descriptive statistics of one model's heads (report/attention.py's
HeadSummary), never a test: each head's kind (HEAD_KINDS), the ranges of entropy and distance over uniform
attention's, and how the heads of the model without positional encoding differ.
"""

from __future__ import annotations

from .attention import COMPARED_ABLATION, HEAD_KINDS, KIND_RULES, AttentionAnalysis, mean_sd
from .claims import Claim, Writer

ATTENTION: dict[str, tuple[str, str]] = {
    "intro": (
        "Attention, as descriptive statistics over {n} validation rows of one model (the selected one: not a "
        "test, and a model of another seed may differ). Each head LxHy (layer x, head y) is given as (self share, "
        "entropy / uniform, distance / uniform), its means over the rows. ",
        "注意力（对一个模型——选中模型——在 {n} 个验证样本上的描述性统计：不是检验，另一种子的模型可能不同）。"
        "每个头 LxHy（第 x 层第 y 个头）记为（自身占比，熵 / 均匀分布熵，距离 / 均匀分布距离），即其在各样本上的均值。",
    ),
    "kind": ("{Kind} heads ({rule}): {heads}. ", "{Kind}头（{rule}）：{heads}。"),
    "no_kind": ("No head is {kind} ({rule}). ", "没有{kind}头（{rule}）。"),
    "rest": ("The other {k} are {mixed}. ", "其余 {k} 个为{mixed}。"),
    "ranges": (
        "Entropy / uniform ranges from {e_low} ({e_low_head}) to {e_high} ({e_high_head}), by layer {layers}; "
        "distance / uniform from {d_low} to {d_high}.",
        "熵 / 均匀分布熵从 {e_low}（{e_low_head}）到 {e_high}（{e_high_head}），按层平均为 {layers}；"
        "距离 / 均匀分布距离从 {d_low} 到 {d_high}。",
    ),
    "compared": (
        " The ablation variant {name} (on {rows}): entropy / uniform {e_low}–{e_high}, "
        "distance / uniform {d_low}–{d_high}, heads {kinds} (the selected model: {before}); its "
        "distances lie {closer} uniform attention's (mean |distance / uniform − 1| over the heads {after_gap}, "
        "the selected model's {before_gap}).",
        "消融变体“{name}”（统计于{rows}）：熵 / 均匀分布熵 {e_low}–{e_high}，距离 / 均匀分布距离 "
        "{d_low}–{d_high}，头的类型为{kinds}（选中模型为{before}）；其距离{closer}均匀注意力的距离"
        "（各头 |距离 / 均匀分布距离 − 1| 的平均为 {after_gap}，选中模型为 {before_gap}）。",
    ),
    "count": ("{k} {kind}", "{kind} {k} 个"),
    "closer": ("closer to", "更接近"),
    "farther": ("farther from", "更远离"),
    "compared_missing": (
        " The heads of the variant {name} could not be analysed: {why}",
        "无法分析变体“{name}”的头：{why}",
    ),
    "no_compared": (
        " No ablation study in this report has the variant {name}, so how positions shape the heads is not measured.",
        "本报告中没有包含变体“{name}”的消融研究，因此没有衡量位置信息如何影响这些头。",
    ),
}


def attention_claim(analysis: AttentionAnalysis, lang: str) -> Claim:
    """Which heads are of which kind (HEAD_KINDS), the ranges of entropy and distance over uniform, and how
    the COMPARED_ABLATION model's heads differ; every number from attention.py's HeadSummary."""
    wr = Writer(lang, ATTENTION)
    w, t = wr.w, wr.t
    heads, name = analysis.heads, w.ablation(COMPARED_ABLATION)
    entropy, distance = mean_sd(heads.entropy_ratio)[0], mean_sd(heads.distance_ratio)[0]  # (layers, heads)
    layers, per_layer = heads.shape
    labels = [f"L{i // per_layer + 1}H{i % per_layer + 1}" for i in range(layers * per_layer)]
    kinds = [kind for row in heads.kinds() for kind in row]
    e, d, s = (m.flatten().tolist() for m in (entropy, distance, mean_sd(heads.self_share)[0]))
    text = t("intro", n=heads.samples)
    for kind, (measure, comparison, threshold) in KIND_RULES.items():
        listed = [f"{label} ({s[i]:.2f}, {e[i]:.2f}, {d[i]:.2f})" for i, label in enumerate(labels) if kinds[i] == kind]
        shown, rule = w[f"kind_{kind}"], f"{w[measure]} {comparison} {threshold}"
        values = dict(kind=shown, Kind=shown[:1].upper() + shown[1:], rule=rule, heads=wr.sep.join(listed))
        text += t("kind" if listed else "no_kind", **values)
    if "mixed" in kinds and len(set(kinds)) > 1:
        text += t("rest", k=kinds.count("mixed"), mixed=w["kind_mixed"])
    low, high = min(range(len(e)), key=e.__getitem__), max(range(len(e)), key=e.__getitem__)
    by_layer = wr.sep.join(f"L{i + 1} {m:.2f}" for i, m in enumerate(entropy.mean(1).tolist()))
    text += t(
        "ranges", e_low=f"{e[low]:.2f}", e_low_head=labels[low], e_high=f"{e[high]:.2f}", e_high_head=labels[high],
        layers=by_layer, d_low=f"{min(d):.2f}", d_high=f"{max(d):.2f}",
    )  # fmt: skip
    compared = analysis.compared
    if compared is not None:
        ce, cd = mean_sd(compared.entropy_ratio)[0], mean_sd(compared.distance_ratio)[0]
        gap_before, gap_after = float((distance - 1).abs().mean()), float((cd - 1).abs().mean())
        rows = w["rows_same" if analysis.same_rows else "rows_own"].format(n=compared.samples)
        counts = lambda found: wr.sep.join(t("count", k=found.count(k), kind=w[f"kind_{k}"]) for k in HEAD_KINDS)
        text += t(
            "compared", name=name, rows=rows, e_low=f"{ce.min():.2f}", e_high=f"{ce.max():.2f}",
            d_low=f"{cd.min():.2f}", d_high=f"{cd.max():.2f}", kinds=counts([k for r in compared.kinds() for k in r]),
            before=counts(kinds), closer=t("closer" if gap_after <= gap_before else "farther"),
            after_gap=f"{gap_after:.2f}", before_gap=f"{gap_before:.2f}",
        )  # fmt: skip
    elif analysis.compared_note:
        text += t("compared_missing", name=name, why=w.say(analysis.compared_note))
    else:
        text += t("no_compared", name=name)
    return Claim("attention", "heads", "info", text.strip())
