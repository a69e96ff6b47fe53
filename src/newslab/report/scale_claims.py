"""The conclusions' scale paragraph (report/scale.py): each (max_len, batch size) point against the reference
on the confirmation runs, the time a run takes, what truncation cuts, and the lr scaling rule the runs
measured — or the rules they cannot tell apart."""

from __future__ import annotations

from .claims import Claim, Writer
from .scale import MIN_FIT, RULES, Lengths, ScaleAnalysis

SCALE: dict[str, tuple[str, str]] = {
    "intro": (
        "Sequence length and batch size ({study}) against max_len {max_len} and batch {batch} ({base} on {n} "
        "confirmation runs, {seconds} s a run), each point at its own best lr:",
        "序列长度与批大小（{study}）相对 max_len {max_len}、批大小 {batch}（{n} 次确认运行上为 {base}，每次运行 {seconds} 秒），"
        "各点使用各自的最佳学习率：",
    ),
    "no_reference": (
        "Sequence length and batch size ({study}): the reference point (max_len {max_len}, batch {batch}) has no "
        "confirmation run, so no point is compared.",
        "序列长度与批大小（{study}）：参照点（max_len {max_len}、批大小 {batch}）没有确认运行，因此没有比较任何点。",
    ),
    "item": (
        "max_len {max_len}, batch {batch}: {diff}, {seconds} s a run; {outcome}.",
        "max_len {max_len}、批大小 {batch}：{diff}，每次运行 {seconds} 秒；{outcome}。",
    ),
    "lengths": (
        "The training rows have a median of {p50} tokens, 95% at most {p95}, the longest {longest}: {cuts}.",
        "训练样本的词元数中位数为 {p50}，95% 不超过 {p95}，最长 {longest}：{cuts}。",
    ),
    "cut": (
        "max_len {n} truncates {rows} of the rows ({tokens} of the tokens)",
        "max_len {n} 截断 {rows} 的样本（{tokens} 的词元）",
    ),
    "rule": (
        "The best lr scales as batch^k with k = {k} ({low} to {high}, 95% interval over {m} batch sizes): {verdict}",
        "最佳学习率按 批大小^k 变化，k = {k}（95% 区间 {low} 到 {high}，{m} 个批大小）：{verdict}",
    ),
    "rule_one": ("the {rule} rule is the one these runs support.", "这些运行支持{rule}规则。"),
    "rule_several": (
        "inconclusive between the {rules} rules (excluded: {excluded}).",
        "无法在{rules}规则之间定论（已排除：{excluded}）。",
    ),
    "rule_several_none_excluded": (
        "inconclusive: every rule ({rules}) is consistent with it.",
        "无法定论：所有规则（{rules}）都与之相符。",
    ),
    "rule_none": (
        "no rule (none, square root, linear) is consistent with it.",
        "没有规则（不缩放、平方根、线性）与之相符。",
    ),
    "rule_untested": (
        "The lr scaling rule is not measured: it needs {k} batch sizes or more at max_len {max_len} whose best lr "
        "lies inside the lr grid ({m} do).",
        "未测量学习率缩放规则：需要 max_len {max_len} 下至少 {k} 个最佳学习率位于网格之内的批大小（现有 {m} 个）。",
    ),
    "rule_no_interval": (
        "The best lr scales as batch^k with k = {k} over {m} batch sizes, fitted exactly: with no residual the "
        "interval cannot be sized, so no rule is decided (inconclusive).",
        "最佳学习率按 批大小^k 变化，k = {k}（{m} 个批大小，拟合无残差）：无法估计区间，因此不判定规则（无法定论）。",
    ),
    "rule_edge": (
        " The best lr of batch {batches} lies at the edge of the lr grid (its optimum may lie beyond it), so it is "
        "left out of the fit.",
        "批大小 {batches} 的最佳学习率位于学习率网格的边缘（最优值可能在网格之外），因此未纳入拟合。",
    ),
}


def _seconds(value: float | None) -> str:
    return "–" if value is None else f"{value:.1f}"


def scale_claims(analysis: ScaleAnalysis, lang: str) -> list[Claim]:
    wr = Writer(lang, SCALE)
    w, study = wr.w, analysis.study.name
    ref_len, ref_batch = analysis.reference
    base = next((p for p in analysis.points if (p.max_len, p.batch_size) == analysis.reference), None)
    claims: list[Claim] = []
    if base is None or base.confirmation is None:
        claims.append(
            Claim("scale", study, "untested", wr.t("no_reference", study=study, max_len=ref_len, batch=ref_batch))
        )
    else:
        confirmation = base.confirmation
        intro = wr.t(
            "intro", study=study, max_len=ref_len, batch=ref_batch, base=w.pct(confirmation.val_mean),
            n=confirmation.n, seconds=_seconds(base.seconds),
        )  # fmt: skip
        claims.append(Claim("scale", study, "info", intro))
        for p in analysis.points:
            if p.comparison is None:
                continue
            item = wr.t(
                "item", max_len=p.max_len, batch=p.batch_size, diff=w.pts(p.comparison.diff),
                seconds=_seconds(p.seconds), outcome=wr.outcome(p.comparison.test),
            )  # fmt: skip
            claims.append(Claim("scale", f"{p.max_len},{p.batch_size}", p.comparison.verdict, item, under=study))
    if isinstance(analysis.lengths, Lengths):
        lengths = analysis.lengths
        max_lens = sorted({p.max_len for p in analysis.points})
        cuts = wr.sep.join(
            wr.t("cut", n=n, rows=w.pct(lengths.rows_cut(n), 1), tokens=w.pct(lengths.tokens_cut(n), 1))
            for n in max_lens
        )
        text = wr.t(
            "lengths",
            p50=lengths.percentile(50),
            p95=lengths.percentile(95),
            longest=lengths.percentile(100),
            cuts=cuts,
        )
        claims.append(Claim("scale", f"{study}/lengths", "info", text))
    claims.append(_rule_claim(analysis, wr))
    return claims


def _rule_claim(analysis: ScaleAnalysis, wr: Writer) -> Claim:
    w, rule, study = wr.w, analysis.rule, analysis.study.name
    edges = [str(b) for b, inside in zip(rule.batch_sizes, rule.inside) if not inside]
    edge = wr.t("rule_edge", batches=wr.sep.join(edges)) if edges else ""
    if rule.exponent is None:
        text = wr.t("rule_untested", k=MIN_FIT, max_len=analysis.reference[0], m=rule.fitted)
        return Claim("scale", f"{study}/rule", "untested", text + edge)
    if rule.low is None or rule.high is None:
        text = wr.t("rule_no_interval", k=f"{rule.exponent:.2f}", m=rule.fitted)
        return Claim("scale", f"{study}/rule", "inconclusive", text + edge)
    named = lambda names: wr.sep.join(w[f"rule_{n}"] for n in names)
    consistent = rule.consistent()
    excluded = [n for n in RULES if n not in consistent]
    if len(consistent) == 1:
        verdict, outcome = wr.t("rule_one", rule=named(consistent)), "significant"
    elif not consistent:
        verdict, outcome = wr.t("rule_none"), "significant"
    elif excluded:
        verdict, outcome = wr.t("rule_several", rules=named(consistent), excluded=named(excluded)), "inconclusive"
    else:
        verdict, outcome = wr.t("rule_several_none_excluded", rules=named(consistent)), "inconclusive"
    text = wr.t(
        "rule", k=f"{rule.exponent:.2f}", low=f"{rule.low:.2f}", high=f"{rule.high:.2f}", m=rule.fitted,
        verdict=verdict,
    )  # fmt: skip
    return Claim("scale", f"{study}/rule", outcome, text + edge)
