"""The conclusions' line on the classical baselines (report/classical.py): where the selected Transformer
stands against the best of them on the same validation rows, worded as every other comparison.
"""

from __future__ import annotations

from .claims import Claim, Writer
from .classical import Standing

CLASSICAL: dict[str, tuple[str, str]] = {
    "classical": (
        "Against the best classical baseline on the same rows, {baseline} (C chosen on the selection split; "
        "{base_val} on the confirmation validation rows, {base_test} test), the selected Transformer ({point}: "
        "{val} over {n} confirmation seeds, {test} test) differs by {diff} (Transformer − baseline, paired by "
        "validation row): {outcome}.",
        "与同一数据上最好的经典基线 {baseline}（C 在选择划分上选定；确认验证集上 {base_val}，测试集 {base_test}）相比，"
        "选中的 Transformer（{point}：{n} 个确认种子上 {val}，测试集 {test}）相差 {diff}"
        "（Transformer − 基线，按验证样本配对）：{outcome}。",
    ),
    "classical_unconfirmed": (
        "Against the best classical baseline, {baseline} ({base_val} on the selection validation rows), the "
        "selected Transformer ({point}: {val} on the selection runs, which chose it and are optimistic) differs "
        "by {diff} (Transformer − baseline): {outcome}.",
        "与最好的经典基线 {baseline}（选择验证集上 {base_val}）相比，选中的 Transformer（{point}：选择运行上 {val}，"
        "这些运行做出了选择，偏乐观）相差 {diff}（Transformer − 基线）：{outcome}。",
    ),
}


def classical_claim(standing: Standing, lang: str) -> Claim:
    """Where the selected Transformer stands against the best classical baseline, on the same validation rows."""
    wr = Writer(lang, CLASSICAL)
    w, c, best = wr.w, standing.comparison, standing.best
    confirmed = c.stage == "confirm"
    text = wr.t(
        "classical" if confirmed else "classical_unconfirmed",
        baseline=f"{w[best.model]} (C={best.C:g})",
        base_val=w.pct(best.val_accuracy if confirmed else best.selection_accuracy),
        base_test=w.pct(best.test_accuracy),
        point=w.point({**c.a.point, **c.a.nuisance}),
        val=w.pct(c.a.val_mean),
        n=c.a.n,
        test=w.pct(c.a.test_mean),
        diff=w.pts(c.diff),
        outcome=wr.outcome(c.test, c.stage),
    )
    return Claim("baseline", best.model, c.verdict, text)
