"""Conclusions written from the numbers: every sentence is generated from effects.py's and
followup.py's objects. Nothing here is typed in by hand about a particular result.

Every claim of a difference carries its verdict with what backs it: "significant" with its interval
and p, "inconclusive" with its interval and the smallest difference the runs could have detected (an
inconclusive comparison is never read as "no effect"), or "untested" with the reason. Estimates come
from the confirmation runs (fresh seeds); a claim resting on the selection runs says so.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..study.results import StudyResult
from . import effects as fx
from . import followup
from .attention import AttentionAnalysis
from .attention_claims import attention_claim
from .claims import Claim, Writer
from .classical import Standing
from .classical_claims import classical_claim
from .positional import EncodingComparison
from .positional_claims import positional_claims
from .pretraining import PretrainingAnalysis
from .pretraining_claims import pretraining_claims
from .render import Bullets
from .scale import ScaleAnalysis
from .scale_claims import scale_claims
from .search import SearchAnalysis
from .search_claims import search_claim
from .stats import ALPHA, TestResult, Untested, mean_interval

TEMPLATES: dict[str, tuple[str, str]] = {
    "alpha": (
        "How to read the verdicts: a comparison is significant when its interval excludes 0 (at the "
        "{alpha:.0%} level, Bonferroni-adjusted within its family), inconclusive when it does not (the interval "
        "then bounds how large the difference may be, and an inconclusive result is not evidence that it is "
        "absent), and untested when no test was possible (the reason is given). Estimates and verdicts come "
        "from the confirmation runs on fresh seeds unless a claim says otherwise.",
        "判断的含义：区间不含 0 时为显著（{alpha:.0%} 水平，在所属比较族内做 Bonferroni 校正）；区间含 0 时为无定论"
        "（区间给出差异可能的大小范围，无定论并不说明差异不存在）；无法检验时为未检验（并说明原因）。"
        "除非另有说明，估计和判断都来自在新种子上的确认运行。",
    ),
    # a study as a whole
    "empty": (
        "Study {study} has no completed trial ({counts}){reason}: nothing can be concluded from it.",
        "研究 {study} 没有完成的试验（{counts}）{reason}：无法从中得出任何结论。",
    ),
    "no_confirm_stage": (
        "Study {study} has no confirmation stage (confirm_seeds: 0): its accuracies come from the runs that "
        "chose them and are optimistic, and none of its comparisons can be tested. Set confirm_seeds: 3 (or "
        "more) in its spec and run it again: the selection runs are kept.",
        "研究 {study} 没有确认阶段（confirm_seeds: 0）：其准确率来自做出选择的那些运行，偏乐观，且无法检验任何比较。"
        "请在其配置中设置 confirm_seeds: 3（或更多）并重新运行：已有的选择运行会被保留。",
    ),
    "no_confirm_runs": (
        "Study {study} has no completed confirmation run yet (seeds {seeds}): its accuracies come from the "
        "runs that chose them and are optimistic, and none of its comparisons can be tested. Run "
        "`newslab study run` on it again to finish the confirmation.",
        "研究 {study} 还没有完成的确认运行（种子 {seeds}）：其准确率来自做出选择的那些运行，偏乐观，且无法检验任何比较。"
        "请再次对其运行 `newslab study run` 以完成确认。",
    ),
    # grids
    "best": (
        "Best configuration of {study}: {point}, chosen on the selection runs ({val} mean validation accuracy "
        "over seeds {seeds}).",
        "{study} 的最佳配置：{point}，在选择运行上选出（种子 {seeds} 上的平均验证准确率 {val}）。",
    ),
    "best_confirmed": (
        "On {n} fresh confirmation seeds ({seeds}), trained to epoch {epoch}, it reaches {val} validation "
        "accuracy (95% CI {ci}), the estimate free of the selection's optimism, and {test} test accuracy.",
        "在 {n} 个新的确认种子（{seeds}）上训练到第 {epoch} 轮，其验证准确率为 {val}（95% 置信区间 {ci}），"
        "这是不受选择乐观偏差影响的估计；测试准确率为 {test}。",
    ),
    "best_unconfirmed": (
        "It has no confirmation run, so {val} is optimistic (the best of the configurations tried); its test "
        "accuracy on the selection runs is {test}.",
        "它没有确认运行，因此 {val} 偏乐观（是所试配置中的最大值）；其在选择运行上的测试准确率为 {test}。",
    ),
    "runner_up": (
        "Against the runner-up ({other}) on the confirmation runs it is {diff}: {outcome}.",
        "在确认运行上与第二名（{other}）相比差值为 {diff}：{outcome}。",
    ),
    "runner_up_unconfirmed": (
        "Against the runner-up ({other}) it is {diff} on the selection runs, which chose it and overstate the "
        "difference: {outcome}.",
        "在选择运行上与第二名（{other}）相比差值为 {diff}（这些运行做出了选择，会夸大差值）：{outcome}。",
    ),
    "only_point": (
        "It is the only configuration with completed trials, so it is not compared.",
        "它是唯一有完成试验的配置，因此无法比较。",
    ),
    "joint": (
        "{together} vary together in this grid ({values}), so the effect of each alone cannot be told apart; as "
        "one factor ({factor}), {best} (best on the selection runs) against {worst} (worst there) is {diff} on "
        "the confirmation runs: {outcome}.",
        "本网格中{together}同时变化（{values}），无法区分各自的作用；作为一个因素（{factor}），{best}（选择运行上最好）对 "
        "{worst}（选择运行上最差）在确认运行上相差 {diff}：{outcome}。",
    ),
    "factor": (
        "{factor}: {best} (best on the selection runs) against {worst} (worst there) is {diff} on the "
        "confirmation runs (paired within equal other settings): {outcome}.",
        "{factor}：{best}（选择运行上最好）对 {worst}（选择运行上最差）在确认运行上相差 {diff}"
        "（在其他设置相同的配置之间配对）：{outcome}。",
    ),
    "lr_at": (
        "At {size}: lr {best} is best, {diff} over lr {worst} {where}: {outcome}.",
        "在{size}时：学习率 {best} 最好，{where}比学习率 {worst} 高 {diff}：{outcome}。",
    ),
    "lr_where_select": (
        "on the selection runs (the runs that chose lr: a test among the choices)",
        "在选择运行上（即选出学习率的那些运行：在候选值之间的检验）",
    ),
    "lr_where_confirm": ("on the confirmation runs", "在确认运行上"),
    "lr_same": ("The best lr is {lr} in every configuration{caveat}.", "在所有配置下最佳学习率都是 {lr}{caveat}。"),
    "lr_same_caveat": (" ({why})", "（{why}）"),
    "lr_none_significant": (
        "inconclusive: no lr difference at any size is significant, so whether lr matters here is not decided",
        "无定论：在任何规模下学习率的差异都不显著，因此无法确定学习率在此是否重要",
    ),
    "lr_shift": (
        "The best lr changes from one configuration to another ({pairs}){caveat}.",
        "最佳学习率随配置而变化（{pairs}）{caveat}。",
    ),
    "lr_shift_untested": (
        "; but no lr difference was tested ({why}), so this shift may be chance",
        "；但学习率的差异未经检验（{why}），因此这种变化可能是偶然的",
    ),
    "lr_shift_inconclusive": (
        "; but no lr difference at any size is significant, so this shift may be chance",
        "；但在任何规模下学习率的差异都不显著，因此这种变化可能是偶然的",
    ),
    # ablations
    "no_baseline": (
        "Study {study} has no confirmed baseline (ablation none: no completed confirmation run): the ablations "
        "cannot be compared.",
        "研究 {study} 没有经确认的基线（ablation none 没有完成的确认运行）：无法比较各消融。",
    ),
    "no_variants": (
        "Study {study} has no confirmed ablation variant (only the baseline has completed confirmation runs): "
        "no ablation can be compared.",
        "研究 {study} 没有经确认的消融变体（只有基线有完成的确认运行）：无法比较任何消融。",
    ),
    "missing_variant": (
        "{name}: no completed confirmation run, so it is not compared: untested.",
        "{name}：没有完成的确认运行，因此未比较：未检验。",
    ),
    "ranking": (
        "Components ranked by effect on validation accuracy against the baseline ({base} over {n} confirmation "
        "seeds), each variant at its own best {nuisance} chosen on the selection runs and compared on the "
        "confirmation runs (tests Bonferroni-adjusted across the study's {k} ablations):",
        "各组件按对验证准确率的影响排序（相对基线：{n} 个确认种子上为 {base}；每个变体使用在选择运行上选出的最佳"
        "{nuisance}，在确认运行上比较；检验经过本研究 {k} 个消融的 Bonferroni 校正）：",
    ),
    "rank_item": ("{name}: {rel} relative ({diff}): {outcome}.", "{name}：相对变化 {rel}（{diff}）：{outcome}。"),
    "ablation_summary": (
        "Removing or changing a component {hurts}{helps}{inconclusive}{untested}.",
        "{hurts}{helps}{inconclusive}{untested}。",
    ),
    "hurts": ("significantly hurts for: {names}", "显著降低准确率的：{names}"),
    "helps": ("; significantly helps for: {names}", "；显著提高准确率的：{names}"),
    "inconclusive_list": ("; is inconclusive for: {names}", "；无定论的：{names}"),
    "untested_list": ("; is untested for: {names}", "；未检验的：{names}"),
    "with_span": ("{name} ({low} to {high} pts)", "{name}（{low} 到 {high} 个百分点）"),
    "ablations_untested": (
        "No ablation of {study} could be tested ({why}), so none is known to hurt or help: the relative "
        "changes above are point estimates only.",
        "研究 {study} 的消融都无法检验（{why}），因此不知道哪个降低或提高准确率：上面的相对变化只是点估计。",
    ),
    "none_list": ("nothing", "无"),
    # warnings: what limits a study's conclusions, and the follow-up that lifts it
    "warn_edge": (
        "{study}: the chosen {param} ({value}) is at the {side} end of the values tried ({values}), so a better "
        "value may lie beyond it: widen the grid towards {direction} values.",
        "{study}：选中的{param}（{value}）位于所试取值（{values}）的{side}端，更好的取值可能在范围之外："
        "请向{direction}的方向扩展网格。",
    ),
    "side_low": ("low", "低"),
    "side_high": ("high", "高"),
    "direction_low": ("lower", "更小"),
    "direction_high": ("higher", "更大"),
    "warn_last_epoch": (
        "{study}: the chosen epoch ({epoch}) is the last one trained (`epochs: {epochs}`), so the validation "
        "curve may still be rising: train longer.",
        "{study}：选定的轮次（{epoch}）是训练的最后一轮（`epochs: {epochs}`），验证曲线可能仍在上升：请训练更多轮。",
    ),
    "warn_seeds": (
        "{study}: {seeds} confirmation seed(s) leave its comparisons inconclusive or untested; about {wanted} "
        "would decide effects of the observed size{capped}.",
        "{study}：{seeds} 个确认种子使其比较无定论或未检验；约 {wanted} 个种子可以判定观察到的大小的效应{capped}。",
    ),
    "warn_seeds_capped": (
        " (more than {wanted} are not proposed: beyond that a larger validation split helps more)",
        "（不建议超过 {wanted} 个：再多不如扩大验证集）",
    ),
    "next_specs": (
        "Follow-up specs that lift these limits are written beside this report: {files}. Run {commands}.",
        "解除这些限制的后续研究配置已写在本报告旁：{files}。运行 {commands}。",
    ),
    "next_file": ("{file} (from {study})", "{file}（来自 {study}）"),
}

# Which of embed_dim and the number of heads changes accuracy more: the outcome of the test of the
# difference of their effects (effects.factor_difference), keyed "embed_dim", "num_heads" (significant,
# that one larger), "inconclusive" or "untested".
DIMS_VS_HEADS: dict[str, tuple[str, str]] = {
    "embed_dim": (
        "embed_dim changes accuracy more than the number of heads (effects {dims} and {heads}); the difference "
        "of the two effects, tested: {outcome}.",
        "嵌入维度对准确率的影响大于注意力头数（效应分别为 {dims} 和 {heads}）；两者效应之差经检验：{outcome}。",
    ),
    "num_heads": (
        "The number of heads changes accuracy more than embed_dim (effects {heads} and {dims}); the difference "
        "of the two effects, tested: {outcome}.",
        "注意力头数对准确率的影响大于嵌入维度（效应分别为 {heads} 和 {dims}）；两者效应之差经检验：{outcome}。",
    ),
    "inconclusive": (
        "Whether embed_dim or the number of heads changes accuracy more is not decided (effects {dims} and "
        "{heads}); the difference of the two effects, tested: {outcome}.",
        "无法确定嵌入维度和注意力头数哪个对准确率影响更大（效应分别为 {dims} 和 {heads}）；两者效应之差经检验：{outcome}。",
    ),
    "untested": (
        "Whether embed_dim or the number of heads changes accuracy more (effects {dims} and {heads}) is untested: "
        "{outcome}.",
        "嵌入维度和注意力头数哪个对准确率影响更大（效应分别为 {dims} 和 {heads}）未检验：{outcome}。",
    ),
}


@dataclass(frozen=True)
class FollowUp:
    """A follow-up spec written beside the report (build.py): which study it continues, and how to run it."""

    study: str
    path: Path
    command: str  # `newslab study run PATH ...`


def claim_bullets(claims: list[Claim]) -> Bullets:
    """The claims as a list to read: a claim that details another (`under`) is nested under it."""
    items: list[str | list[str]] = []  # a list: the claims nested under the item before it
    parent: str | None = None
    for claim in claims:
        if claim.under is None or claim.under != parent:
            items.append(claim.text)
            parent = claim.subject
        elif isinstance(items[-1], list):
            items[-1].append(claim.text)
        else:
            items.append([claim.text])
    return Bullets([Bullets(item) if isinstance(item, list) else item for item in items])


def conclusions(
    results: list[StudyResult],
    lang: str = "en",
    followups: list[FollowUp] | None = None,
    attention: AttentionAnalysis | None = None,
    classical: Standing | None = None,
    encodings: list[EncodingComparison] | None = None,
    scales: list[ScaleAnalysis] | None = None,
    pretrainings: list[PretrainingAnalysis] | None = None,
    searches: list[SearchAnalysis] | None = None,
) -> list[Claim]:
    """All claims for the studies of a report, in reading order; `followups` are the follow-up specs
    written beside the report (their sentence closes the warnings); `attention`, the selected model's
    attention analysis, adds the attention paragraph; `classical`, a grid's classical baselines, a line after
    that study's best configuration; `encodings`, `scales` and `pretrainings`, the chapter studies' analyses
    (positional encodings, sequence length and batch size, pretraining) and `searches`, their paragraph after each
    such study's claims."""
    wr = Writer(lang, TEMPLATES)
    claims = [Claim("caveat", "alpha", "info", wr.t("alpha", alpha=ALPHA))]
    for result in results:
        claims += _study_claims(result, wr)
        claims += [classical_claim(classical, lang)] if classical is not None and classical.study == result.name else []
        claims += [c for e in encodings or [] if e.study.name == result.name for c in positional_claims(e, lang)]
        claims += [c for a in scales or [] if a.study.name == result.name for c in scale_claims(a, lang)]
        claims += [c for a in pretrainings or [] if a.study.name == result.name for c in pretraining_claims(a, lang)]
        claims += [search_claim(a, lang) for a in searches or [] if a.study.name == result.name]
    claims += [attention_claim(attention, lang)] if attention is not None else []
    warnings = [_warning(warning, result, wr) for result in results for warning in followup.find_warnings(result)]
    if warnings and followups:
        files = wr.sep.join(wr.t("next_file", file=f.path.name, study=f.study) for f in followups)
        commands = (" 和 " if wr.i else " and ").join(f"`{f.command}`" for f in followups)
        warnings.append(Claim("warning", "next-specs", "info", wr.t("next_specs", files=files, commands=commands)))
    return claims + warnings


def _warning(warning: followup.Warning, result: StudyResult, wr: Writer) -> Claim:
    w, v = wr.w, warning.values
    if warning.kind == "edge":
        param = v["param"]
        text = wr.t(
            "warn_edge",
            study=warning.study,
            param=w.param(param),
            value=w.value(param, v["value"]),
            side=wr.t(f"side_{v['side']}"),
            values=wr.sep.join(w.value(param, x) for x in result.spec.choices(param)),
            direction=wr.t(f"direction_{v['side']}"),
        )
        return Claim("warning", f"{warning.study}/edge/{param}", "info", text)
    if warning.kind == "last_epoch":
        text = wr.t("warn_last_epoch", study=warning.study, epoch=v["epoch"], epochs=v["epochs"])
    else:
        capped = wr.t("warn_seeds_capped", wanted=v["wanted"]) if v.get("capped") else ""
        text = wr.t("warn_seeds", study=warning.study, seeds=v["seeds"], wanted=v["wanted"], capped=capped)
    return Claim("warning", f"{warning.study}/{warning.kind}", "info", text)


def _study_claims(result: StudyResult, wr: Writer) -> list[Claim]:
    name, w = result.name, wr.w
    if not result.points():
        reasons = sorted({t.fail_reason for t in result.trials if t.fail_reason})
        reason = f"; {reasons[0]}" if reasons else ""
        counts = w.counts(result.counts())
        return [Claim("caveat", name, "untested", wr.t("empty", study=name, counts=counts, reason=reason))]
    claims = []
    if not result.confirmed():
        seeds = result.spec.confirm_seed_list
        text = wr.t("no_confirm_runs", study=name, seeds=seeds) if seeds else wr.t("no_confirm_stage", study=name)
        claims.append(Claim("caveat", name, "untested", text))
    if fx.is_ablation_study(result):
        return claims + _ablation_claims(result, wr)
    return claims + [_best_claim(result, wr), *_factor_claims(result, wr), *_lr_claims(result, wr)]


def _best_claim(result: StudyResult, wr: Writer) -> Claim:
    w = wr.w
    pick = fx.selected(result)
    assert pick is not None, "a study with completed trials has a selected point"
    chosen, confirmation = pick.selection, pick.confirmation
    space = " " if wr.i == 0 else ""  # Chinese sentences follow each other without a space
    text = wr.t(
        "best",
        study=result.name,
        point=w.point({**chosen.point, **chosen.nuisance}),
        val=w.pct(chosen.val_mean),
        seeds=sorted(t.seed for t in chosen.trials),
    )
    if confirmation is not None:
        iv = mean_interval(confirmation.val_accuracies)
        ci = "–" if iv is None or iv.low is None or iv.high is None else f"[{w.pct(iv.low)}, {w.pct(iv.high)}]"
        text += space + wr.t(
            "best_confirmed",
            n=confirmation.n,
            seeds=sorted(t.seed for t in confirmation.trials),
            epoch=confirmation.trials[0].stop_epoch,
            val=w.pct(confirmation.val_mean),
            ci=ci,
            test=w.pct(confirmation.test_mean) if result.unseals_test else w["sealed"],
        )
    else:
        test = w.pct(chosen.test_mean) if result.unseals_test else w["sealed"]
        text += space + wr.t("best_unconfirmed", val=w.pct(chosen.val_mean), test=test)
    race = fx.runner_up(result)
    if race is None:
        text += space + wr.t("only_point")
    else:
        text += space + wr.t(
            "runner_up" if race.stage == "confirm" else "runner_up_unconfirmed",
            other=w.point({**race.b.point, **race.b.nuisance}),
            diff=w.pts(race.diff),
            outcome=wr.outcome(race.test),
        )
    return Claim("best", result.name, race.verdict if race else "info", text)


def _factor_claims(result: StudyResult, wr: Writer) -> list[Claim]:
    w, claims = wr.w, []
    effects = {e.key: e for e in fx.factor_effects(result)}
    for key, e in effects.items():
        if key == "lr" and len(effects) > 1:
            continue  # lr is described per model size below
        values = dict(
            best=w.factor_value(key, e.best),
            worst=w.factor_value(key, e.worst),
            diff=w.pts(e.diff),
            outcome=wr.outcome(e.test),
            factor=w.factor(key),
        )
        if "," in key:  # varied together: said once, with the test of the factor they form
            listed = wr.sep.join(w.factor_value(key, v) for v in e.means)
            together = ("和" if wr.i else " and ").join(w.param(n) for n in key.split(","))
            claims.append(Claim("factor", key, e.verdict, wr.t("joint", values=listed, together=together, **values)))
        else:
            claims.append(Claim("factor", key, e.verdict, wr.t("factor", **values)))
    if "embed_dim" in effects and "num_heads" in effects:
        dims, heads = effects["embed_dim"], effects["num_heads"]
        test = fx.factor_difference(dims, heads)
        if isinstance(test, TestResult) and test.significant:
            case = "embed_dim" if test.diff > 0 else "num_heads"
        else:
            case = test.verdict if isinstance(test, TestResult) else "untested"
        outcome = w.reason(test.reason) if isinstance(test, Untested) else wr.outcome(test)
        text = DIMS_VS_HEADS[case][wr.i].format(dims=w.pts(dims.diff), heads=w.pts(heads.diff), outcome=outcome)
        verdict = test.verdict if isinstance(test, TestResult) else "untested"
        claims.append(Claim("relation", "dims_vs_heads", verdict, text))
    return claims


def _lr_claims(result: StudyResult, wr: Writer) -> list[Claim]:
    w, claims = wr.w, []
    per_size = fx.lr_per_size(result)
    lr_of = lambda s: s.point.get("lr", s.nuisance.get("lr"))
    for e in per_size:
        c = e.comparison
        text = wr.t(
            "lr_at",
            size=w.point(e.context),
            best=w.value("lr", lr_of(c.a)),
            worst=w.value("lr", lr_of(c.b)),
            diff=w.pts(c.diff),
            where=wr.t(f"lr_where_{c.stage}"),
            outcome=wr.outcome(c.test, c.stage),
        )
        claims.append(Claim("lr", w.point(e.context), c.verdict, text))
    if len(per_size) > 1:
        best_lrs = {e.best_lr for e in per_size}
        # the per-size tests together: some difference is significant, none is, or none was tested
        verdicts = {e.comparison.verdict for e in per_size}
        verdict = next(v for v in ("significant", "inconclusive", "untested") if v in verdicts)
        first = per_size[0].comparison
        untested_why = wr.outcome(first.test, first.stage) if verdict == "untested" else ""
        reason = first.test.reason if isinstance(first.test, Untested) else "no_predictions"  # read when untested
        if len(best_lrs) == 1:
            why = wr.t("lr_none_significant") if verdict == "inconclusive" else untested_why
            caveat = "" if verdict == "significant" else wr.t("lr_same_caveat", why=why)
            text = wr.t("lr_same", lr=w.value("lr", best_lrs.pop()), caveat=caveat)
            claims.append(Claim("lr", "all", "info" if verdict == "significant" else verdict, text))
        else:
            pairs = wr.sep.join(f"{w.point(e.context)} → {w.value('lr', e.best_lr)}" for e in per_size)
            caveat = {
                "significant": "",
                "inconclusive": wr.t("lr_shift_inconclusive"),
                "untested": wr.t("lr_shift_untested", why=w.reason(reason, first.stage)),
            }[verdict]
            claims.append(Claim("lr", "all", "info", wr.t("lr_shift", pairs=pairs, caveat=caveat)))
    return claims


def _ablation_claims(result: StudyResult, wr: Writer) -> list[Claim]:
    w, name = wr.w, result.name
    if not result.confirmed():
        return []  # the caveat above says why nothing is compared
    ablations = fx.ablation_effects(result)
    if ablations.base is None:
        return [Claim("caveat", name, "untested", wr.t("no_baseline", study=name))]
    missing = [
        Claim("ablation", m, "untested", wr.t("missing_variant", name=w.ablation(m)), under="ranking")
        for m in ablations.missing
    ]
    effects = ablations.effects
    if not effects:
        return [Claim("caveat", name, "untested", wr.t("no_variants", study=name)), *missing]
    base = ablations.base
    nuisance = "/".join(w.param(k) for k in base.nuisance) or "-"
    ranking = wr.t("ranking", base=w.pct(base.val_mean), n=base.n, nuisance=nuisance, k=ablations.family)
    claims = [Claim("ablation", "ranking", "info", ranking)]
    for e in sorted(effects, key=lambda e: e.comparison.diff):  # most harmful first
        c = e.comparison
        text = wr.t(
            "rank_item",
            name=w.ablation(e.name),
            rel=w.rel(e.relative, 1),
            diff=w.pts(c.diff),
            outcome=wr.outcome(c.test),
        )
        claims.append(Claim("ablation", e.name, c.verdict, text, under="ranking"))
    claims += missing
    if all(e.comparison.verdict == "untested" for e in effects):  # "hurts for: nothing" would read as a finding
        test = effects[0].comparison.test
        why = w.reason(test.reason) if isinstance(test, Untested) else ""
        return claims + [Claim("caveat", "summary", "untested", wr.t("ablations_untested", study=name, why=why))]
    return claims + [Claim("ablation", "summary", "info", _ablation_summary(ablations, wr))]


def _ablation_summary(ablations: fx.VariantResults, wr: Writer) -> str:
    """What significantly hurts or helps, what is inconclusive (with its interval), and what was not tested
    (variants without a confirmation run included)."""
    w, sep = wr.w, wr.sep

    ranked = sorted(ablations.effects, key=lambda e: e.comparison.diff)  # most harmful first, as the ranking

    def names(keep) -> list[str]:
        return [w.ablation(e.name) for e in ranked if keep(e.comparison)]

    hurts = names(lambda c: c.verdict == "significant" and c.diff < 0)
    helps = names(lambda c: c.verdict == "significant" and c.diff > 0)
    inconclusive = [
        wr.t("with_span", name=w.ablation(e.name), low=f"{100 * t.low:+.2f}", high=f"{100 * t.high:+.2f}")
        for e in ranked
        if isinstance(t := e.comparison.test, TestResult) and not t.significant
    ]
    untested = names(lambda c: c.verdict == "untested") + [w.ablation(m) for m in ablations.missing]
    listed = lambda key, items: wr.t(key, names=sep.join(items)) if items else ""
    return wr.t(
        "ablation_summary",
        hurts=wr.t("hurts", names=sep.join(hurts) or wr.t("none_list")),
        helps=listed("helps", helps),
        inconclusive=listed("inconclusive_list", inconclusive),
        untested=listed("untested_list", untested),
    )
