"""The conclusions' search sentence (report/search.py): what the sampler and pruner ran, the winner on its
selection run and its confirmation runs, and the parameter importances (descriptive, never a test)."""

from __future__ import annotations

from .claims import Claim, Writer
from .search import SearchAnalysis
from .stats import mean_interval

SEARCH: dict[str, tuple[str, str]] = {
    "ran": (
        "The search {study} ({sampler} sampler, {pruner} pruner) ran {n} of its {budget} trials: {complete} "
        "complete, {pruned} pruned, {failed} failed.",
        "搜索 {study}（{sampler} 采样器，{pruner} 剪枝器）运行了 {budget} 个试验中的 {n} 个：完成 {complete} 个，"
        "剪枝 {pruned} 个，失败 {failed} 个。",
    ),
    "winner": (" Its best: {point}, {val} on its selection run", "最佳：{point}，选择运行上为 {val}"),
    "confirmed": (
        "; on {n} fresh seeds and a fresh validation split {mean} [{low}, {high}] (95% interval).",
        "；在 {n} 个新种子和新的验证集上为 {mean} [{low}, {high}]（95% 区间）。",
    ),
    "unconfirmed": ("; not confirmed yet.", "；尚未确认。"),
    "importance": (
        " fANOVA importance over the completed trials (descriptive: what the accuracy varied with here): {items}.",
        "在已完成试验上的 fANOVA 重要性（描述性：本次搜索中准确率随哪些设置变化）：{items}。",
    ),
    "no_importance": (" No importance: {why}.", "没有重要性：{why}。"),
}


def search_claim(analysis: SearchAnalysis, lang: str) -> Claim:
    wr = Writer(lang, SEARCH)
    w, result = wr.w, analysis.study
    search = result.spec.search or {}
    states = analysis.states
    text = wr.t(
        "ran", study=result.name, sampler=w[f"sampler_{search.get('sampler', 'tpe')}"],
        pruner=w[f"pruner_{search.get('pruner', 'median')}"],
        n=states["COMPLETE"] + states["PRUNED"] + states["FAIL"], budget=search.get("trials"),
        complete=states["COMPLETE"], pruned=states["PRUNED"], failed=states["FAIL"],
    )  # fmt: skip
    winner = analysis.winner
    if winner is not None and analysis.pick is not None:
        text += wr.t("winner", point=w.point(winner.point), val=w.pct(winner.val_mean))
        confirmation = analysis.pick.confirmation
        iv = mean_interval(confirmation.val_accuracies, within=(0.0, 1.0)) if confirmation else None
        if confirmation is not None and iv is not None:
            low, high = (w.pct(x) if x is not None else "–" for x in (iv.low, iv.high))
            text += wr.t("confirmed", n=confirmation.n, mean=w.pct(iv.mean), low=low, high=high)
        else:
            text += wr.t("unconfirmed")
    if isinstance(analysis.importances, dict):
        ranked = sorted(analysis.importances.items(), key=lambda kv: -kv[1])
        text += wr.t("importance", items=wr.sep.join(f"{w.param(k)} {v:.2f}" for k, v in ranked))
    else:
        text += wr.t("no_importance", why=w.say(analysis.importances))
    return Claim("search", result.name, "info", text)
