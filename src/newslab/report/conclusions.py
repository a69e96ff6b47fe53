"""Conclusions written from the numbers: every sentence is generated from effects.py's objects,
and every claim of a difference carries its test and the verdict "significant", "within noise"
or "cannot be tested". Nothing here is typed in by hand about a particular result.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..study.results import StudyResult
from . import effects as fx
from .i18n import Words
from .stats import ALPHA, TestResult

TEMPLATES: dict[str, tuple[str, str]] = {
    "empty": (
        "Study {study} has no completed trial ({counts}){reason}: nothing can be concluded from it.",
        "研究 {study} 没有完成的试验（{counts}）{reason}：无法从中得出任何结论。",
    ),
    "one_seed": (
        "Study {study} ran one seed per configuration, so the seed-to-seed noise is unknown: "
        "differences between configurations cannot be tested over seeds{fallback}. Re-run with "
        "--seeds 3 to test them.",
        "研究 {study} 每个配置只运行了一个种子，种子间的噪声未知：配置之间的差异无法在种子间检验"
        "{fallback}。请用 --seeds 3 重新运行以进行检验。",
    ),
    "one_seed_fallback": (
        "; the test-set comparisons below use McNemar's test on single runs instead",
        "；下文改用单次运行在测试集上的 McNemar 检验",
    ),
    "best": (
        "Best configuration of {study}: {point} with {val} mean validation accuracy over {n} seed(s) "
        "(test accuracy {test}).",
        "{study} 的最佳配置：{point}，{n} 个种子的平均验证准确率为 {val}（测试准确率 {test}）。",
    ),
    "runner_up": (
        "Against the runner-up ({other}) it is {diff}: {verdict}.",
        "与第二名（{other}）相比差值为 {diff}：{verdict}。",
    ),
    "only_point": (
        "It is the only configuration with completed trials, so it is not compared.",
        "它是唯一有完成试验的配置，因此无法比较。",
    ),
    "joint": (
        "{factor} vary together in this grid ({values}), so the effect of each alone cannot be told "
        "apart; as one factor, {best} is best, {diff} over {worst}: {verdict}.",
        "本网格中{factor}同时变化（{values}），无法区分各自的作用；作为一个因素，{best} 最好，"
        "比 {worst} 高 {diff}：{verdict}。",
    ),
    "factor": (
        "{factor}: {best} is best, {diff} over {worst} (averaged over the other settings): {verdict}.",
        "{factor}：{best} 最好，比 {worst} 高 {diff}（对其他设置取平均）：{verdict}。",
    ),
    "dims_heads_joint": (
        "embed_dim and the number of heads were varied together in this grid ({values}), so their "
        "effects cannot be separated: whether the width or the head count matters cannot be told.",
        "本网格中嵌入维度和注意力头数同时变化（{values}），它们的作用无法分开：无法判断是宽度还是头数起作用。",
    ),
    "lr_at": (
        "At {size}: lr {best} is best, {diff} over lr {worst}: {verdict}.",
        "在{size}时：学习率 {best} 最好，比学习率 {worst} 高 {diff}：{verdict}。",
    ),
    "lr_same": ("The best lr is {lr} at every model size{caveat}.", "在所有模型规模下最佳学习率都是 {lr}{caveat}。"),
    "lr_same_caveat": (" ({verdict}: {why})", "（{verdict}：{why}）"),
    "lr_no_difference": ("no lr difference at any size is beyond the noise", "在任何规模下学习率的差异都未超出噪声"),
    "lr_shift": (
        "The best lr changes with model size ({pairs}){caveat}.",
        "最佳学习率随模型规模变化（{pairs}）{caveat}。",
    ),
    "lr_shift_noise": (
        "; but no lr difference at any size is beyond the noise, so this shift may be chance",
        "；但在任何规模下学习率的差异都未超出噪声，因此这种变化可能是偶然的",
    ),
    "no_baseline": (
        "Study {study} has no completed baseline (ablation none): the ablations cannot be compared.",
        "研究 {study} 没有完成的基线（ablation none）：无法比较各消融。",
    ),
    "no_variants": (
        "Study {study} has no completed ablation variant (only the baseline finished): no ablation can be compared.",
        "研究 {study} 没有完成的消融变体（只有基线完成了）：无法比较任何消融。",
    ),
    "missing_variant": (
        "{name}: no completed trial, so it is not compared: cannot be tested.",
        "{name}：没有完成的试验，因此未比较：无法检验。",
    ),
    "ranking": (
        "Components ranked by effect on validation accuracy against the baseline ({base}), each "
        "variant at its own best {nuisance} (tests Bonferroni-adjusted across the {k} compared ablations):",
        "各组件按对验证准确率的影响排序（相对基线 {base}，每个变体使用其最佳{nuisance}；检验经过 "
        "{k} 个被比较消融的 Bonferroni 校正）：",
    ),
    "rank_item": ("{name}: {rel} relative ({diff}): {verdict}.", "{name}：相对变化 {rel}（{diff}）：{verdict}。"),
    "ablation_summary": (
        "Removing or changing a component {hurts}{helps}{noise}{untested}.",
        "{hurts}{helps}{noise}{untested}。",
    ),
    "hurts": ("significantly hurts for: {names}", "显著降低准确率的：{names}"),
    "helps": ("; significantly helps for: {names}", "；显著提高准确率的：{names}"),
    "noise_list": ("; is within noise for: {names}", "；在噪声范围内的：{names}"),
    "untested_list": ("; cannot be tested for: {names}", "；无法检验的：{names}"),
    "ablations_untested": (
        "No ablation of {study} could be tested ({why}), so none is known to hurt or help: "
        "the relative changes above are point estimates only.",
        "研究 {study} 的消融都无法检验（{why}），因此不知道哪个降低或提高准确率：上面的相对变化只是点估计。",
    ),
    "none_list": ("nothing", "无"),
    "no_test": ("a test needs at least two seeds per configuration", "检验需要每个配置至少两个种子"),
    "alpha": (
        "A difference is called significant at the {alpha:.0%} level; otherwise it is within noise.",
        "显著性水平为 {alpha:.0%}；否则称为在噪声范围内。",
    ),
}

# embed_dim vs heads, by (embed_dim significant, heads significant)
DIMS_VS_HEADS: dict[tuple[bool, bool], tuple[str, str]] = {
    (True, False): (
        "embed_dim matters and the number of heads does not: only the width changes accuracy beyond the noise.",
        "嵌入维度有影响而注意力头数没有：只有模型宽度使准确率的变化超出噪声。",
    ),
    (False, True): (
        "The number of heads matters and embed_dim does not: only the head count changes accuracy beyond the noise.",
        "注意力头数有影响而嵌入维度没有：只有头数使准确率的变化超出噪声。",
    ),
    (True, True): (
        "Both embed_dim and the number of heads matter; {larger} has the larger point estimate "
        "({diffs}), a difference that was not itself tested.",
        "嵌入维度和注意力头数都有影响；{larger} 的点估计更大（{diffs}），但这一差别本身未经检验。",
    ),
    (False, False): (
        "Neither embed_dim nor the number of heads changes accuracy beyond the noise.",
        "嵌入维度和注意力头数都没有使准确率的变化超出噪声。",
    ),
}

TEST_NAMES = {
    "welch": ("Welch's t over seeds", "Welch t 检验（种子间）"),
    "mcnemar": ("McNemar on test predictions", "测试集 McNemar 检验"),
    "bootstrap": ("paired bootstrap on test predictions", "测试集配对自助法检验"),
}


@dataclass
class Claim:
    topic: str  # caveat | best | factor | relation | lr | ablation
    subject: str  # the study, factor key or ablation name the claim is about
    verdict: str  # significant | noise | untested | info
    text: str


class Writer:
    def __init__(self, lang: str):
        self.w = Words(lang)
        self.i = 0 if lang == "en" else 1

    def t(self, key: str, **values) -> str:
        return TEMPLATES[key][self.i].format(**values)

    def test(self, test: TestResult | None) -> str:
        if test is None:
            return ""
        adjusted = (
            (", Bonferroni-adjusted" if self.i == 0 else "，Bonferroni 校正") if test.p_adjusted is not None else ""
        )
        # a paired test's difference is in test accuracy, not the validation difference stated before it
        diff = "" if test.name == "welch" else f" {self.w.pts(test.diff)},"
        return f"{TEST_NAMES[test.name][self.i]}:{diff} {self.w.p(test.p_used)}{adjusted}"

    def verdict(self, verdict: str, *tests: TestResult | None) -> str:
        detail = "; ".join(self.test(t) for t in tests if t is not None) or self.t("no_test")
        return f"{self.w.verdict(verdict)} ({detail})"


def conclusions(results: list[StudyResult], labels: list[int] | None, lang: str = "en") -> list[Claim]:
    """All claims for the studies of a report, in reading order."""
    wr = Writer(lang)
    claims = [Claim("caveat", "alpha", "info", wr.t("alpha", alpha=ALPHA))]
    for result in results:
        claims += _study_claims(result, labels, wr)
    return claims


def _study_claims(result: StudyResult, labels: list[int] | None, wr: Writer) -> list[Claim]:
    name, w = result.name, wr.w
    points = result.points()
    if not points:
        reasons = sorted({t.fail_reason for t in result.trials if t.fail_reason})
        reason = f"; {reasons[0]}" if reasons else ""
        counts = w.counts(result.counts())
        return [Claim("caveat", name, "untested", wr.t("empty", study=name, counts=counts, reason=reason))]
    claims = []
    if max(s.n for s in result.summaries()) < 2:
        fallback = wr.t("one_seed_fallback") if labels is not None else ""
        claims.append(Claim("caveat", name, "untested", wr.t("one_seed", study=name, fallback=fallback)))
    if fx.is_ablation_study(result):
        return claims + _ablation_claims(result, labels, wr)
    best = points[0]
    text = wr.t(
        "best",
        study=name,
        point=w.point({**best.point, **best.nuisance}),
        val=w.pct(best.val_mean),
        n=best.n,
        test=w.pct(best.test_mean),
    )
    race = fx.runner_up(result, labels)
    space = " " if wr.i == 0 else ""  # Chinese sentences follow each other without a space
    if race is None:
        text += space + wr.t("only_point")
    else:
        text += space + wr.t(
            "runner_up",
            other=w.point(race.b.point),
            diff=w.pts(race.diff),
            verdict=wr.verdict(race.verdict, race.over_seeds, race.on_test),
        )
    claims.append(Claim("best", name, race.verdict if race else "info", text))
    claims += _factor_claims(result, wr)
    claims += _lr_claims(result, labels, wr)
    return claims


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
            verdict=wr.verdict(e.verdict, e.test),
            factor=w.factor(key),
        )
        if "," in key:
            listed = ", ".join(w.factor_value(key, v) for v in e.means)
            claims.append(Claim("factor", key, e.verdict, wr.t("joint", values=listed, **values)))
        else:
            claims.append(Claim("factor", key, e.verdict, wr.t("factor", **values)))
    if "embed_dim" in effects and "num_heads" in effects:
        dims, heads = effects["embed_dim"], effects["num_heads"]
        if "untested" not in (dims.verdict, heads.verdict):
            case = (dims.verdict == "significant", heads.verdict == "significant")
            larger = w.factor("embed_dim" if dims.diff >= heads.diff else "num_heads")
            diffs = f"{w.factor('embed_dim')} {w.pts(dims.diff)}, {w.factor('num_heads')} {w.pts(heads.diff)}"
            text = DIMS_VS_HEADS[case][wr.i].format(larger=larger, diffs=diffs)
            subject = {(True, False): "embed_dim", (False, True): "num_heads"}.get(
                case, "both" if all(case) else "neither"
            )
            claims.append(Claim("relation", subject, "info", text))
    joint = next((key for key in effects if {"embed_dim", "num_heads"} <= set(key.split(","))), None)
    if joint is not None:  # one factor in this grid: the data cannot say which of the two acts
        joint_values = ", ".join(w.factor_value(joint, v) for v in result.spec.scientific[joint])
        claims.append(Claim("relation", "joint", "untested", wr.t("dims_heads_joint", values=joint_values)))
    return claims


def _lr_claims(result: StudyResult, labels: list[int] | None, wr: Writer) -> list[Claim]:
    w, claims = wr.w, []
    per_size = fx.lr_per_size(result, labels)
    for e in per_size:
        c = e.comparison
        text = wr.t(
            "lr_at",
            size=w.point(e.context),
            best=w.value("lr", c.a.point["lr"]),
            worst=w.value("lr", c.b.point["lr"]),
            diff=w.pts(c.diff),
            verdict=wr.verdict(c.verdict, c.over_seeds, c.on_test),
        )
        claims.append(Claim("lr", w.point(e.context), c.verdict, text))
    if len(per_size) > 1:
        best_lrs = {e.best_lr for e in per_size}
        # the per-size tests together: some difference is real, all are within noise, or none was tested
        verdicts = {e.comparison.verdict for e in per_size}
        verdict = next(v for v in ("significant", "noise", "untested") if v in verdicts)
        if len(best_lrs) == 1:
            why = wr.t("lr_no_difference") if verdict == "noise" else wr.t("no_test")
            caveat = "" if verdict == "significant" else wr.t("lr_same_caveat", verdict=w.verdict(verdict), why=why)
            claims.append(
                Claim(
                    "lr",
                    "all",
                    "info" if verdict == "significant" else verdict,
                    wr.t("lr_same", lr=w.value("lr", best_lrs.pop()), caveat=caveat),
                )
            )
        else:
            pairs = ", ".join(f"{w.point(e.context)} → {w.value('lr', e.best_lr)}" for e in per_size)
            caveat = "" if verdict == "significant" else wr.t("lr_shift_noise")
            claims.append(Claim("lr", "all", "info", wr.t("lr_shift", pairs=pairs, caveat=caveat)))
    return claims


def _ablation_claims(result: StudyResult, labels: list[int] | None, wr: Writer) -> list[Claim]:
    w, name = wr.w, result.name
    ablations = fx.ablation_effects(result, labels)
    if ablations.base is None:
        return [Claim("caveat", name, "untested", wr.t("no_baseline", study=name))]
    missing = [Claim("ablation", m, "untested", wr.t("missing_variant", name=w.ablation(m))) for m in ablations.missing]
    effects = ablations.effects
    if not effects:
        return [Claim("caveat", name, "untested", wr.t("no_variants", study=name)), *missing]
    base = ablations.base
    nuisance = "/".join(w.param(k) for k in base.nuisance) or "-"
    claims = [
        Claim(
            "ablation", "ranking", "info", wr.t("ranking", base=w.pct(base.val_mean), nuisance=nuisance, k=len(effects))
        )
    ]
    for e in effects:
        c = e.comparison
        text = wr.t(
            "rank_item",
            name=w.ablation(e.name),
            rel=w.rel(e.relative, 1),
            diff=w.pts(c.diff),
            verdict=wr.verdict(c.verdict, c.over_seeds, c.on_test),
        )
        claims.append(Claim("ablation", e.name, c.verdict, text))
    claims += missing
    if all(e.comparison.verdict == "untested" for e in effects):  # "hurts for: nothing" would read as a finding
        return claims + [
            Claim("caveat", "summary", "untested", wr.t("ablations_untested", study=name, why=wr.t("no_test")))
        ]
    return claims + [Claim("ablation", "summary", "info", _ablation_summary(ablations, wr))]


def _ablation_summary(ablations: fx.AblationResults, wr: Writer) -> str:
    """What hurts, helps, is within noise, and could not be tested (variants without a trial included)."""
    w, sep = wr.w, "、" if wr.i else ", "

    def names(keep) -> list[str]:
        return [w.ablation(e.name) for e in ablations.effects if keep(e.comparison)]

    hurts = names(lambda c: c.verdict == "significant" and c.diff < 0)
    helps = names(lambda c: c.verdict == "significant" and c.diff > 0)
    noise = names(lambda c: c.verdict == "noise")
    untested = names(lambda c: c.verdict == "untested") + [w.ablation(m) for m in ablations.missing]
    listed = lambda key, items: wr.t(key, names=sep.join(items)) if items else ""
    return wr.t(
        "ablation_summary",
        hurts=wr.t("hurts", names=sep.join(hurts) or wr.t("none_list")),
        helps=listed("helps", helps),
        noise=listed("noise_list", noise),
        untested=listed("untested_list", untested),
    )
