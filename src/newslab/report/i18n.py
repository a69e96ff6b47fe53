"""Words of the report in English and Chinese, and the number formats they share.

Every label a reader sees (section titles, table headers, axis labels, parameter and class
names, verdicts) is defined here once per language; the ablations' names come from their
registry (newslab.config.ABLATIONS: label, label_zh), and the generated sentences of the
conclusions live next to their logic in conclusions.py.
"""

from __future__ import annotations

import math
from typing import Any

from ..config import ABLATIONS, BASELINE
from ..errors import ConfigError
from .stats import MIN_SEEDS

LANGS = ("en", "zh")

WORDS: dict[str, tuple[str, str]] = {
    # section titles
    "title": ("newslab report", "newslab 实验报告"),
    "setup": ("Setup", "实验设置"),
    "method": ("Method", "方法"),
    "results": ("Results", "结果"),
    "impact": ("Hyperparameter impact", "超参数的影响"),
    "ablations": ("Ablations", "消融实验"),
    "best_model": ("Best model", "最佳模型"),
    "attention": ("Attention", "注意力"),
    "conclusions": ("Conclusions", "结论"),
    # setup
    "data": ("Data", "数据"),
    "file": ("file", "文件"),
    "rows": ("rows", "行数"),
    "tokenizer": ("Tokenizer", "分词器"),
    "hardware": ("Hardware and versions", "硬件与版本"),
    "reproduce": ("Reproduce", "复现命令"),
    "baseline_run": ("Baseline run", "基线运行"),
    "studies": ("Studies", "实验研究"),
    # table headers
    "config": ("configuration", "配置"),
    "val_acc": ("validation accuracy", "验证准确率"),
    "test_acc": ("test accuracy", "测试准确率"),
    "selection_val": ("selection val acc", "选择阶段验证准确率"),
    "confirm_val": ("confirmation val acc", "确认阶段验证准确率"),
    "mean_std": ("mean ± std", "均值 ± 标准差"),
    "mean": ("mean", "均值"),
    "ci": ("{level} CI", "{level} 置信区间"),
    "rel_ci": ("relative {level} CI", "相对变化的 {level} 置信区间"),
    "n_select": ("n (selection)", "n（选择）"),
    "n_confirm": ("n (confirmation)", "n（确认）"),
    "chosen_epoch": ("chosen epoch", "选定轮次"),
    "sealed": ("sealed", "封存"),
    "params": ("parameters", "参数量"),
    "time": ("time (s)", "时间 (秒)"),
    "rel_change": ("relative change", "相对变化"),
    "diff": ("difference", "差值"),
    "p_adjusted": ("p (Bonferroni-adjusted)", "p（Bonferroni 校正后）"),
    "detectable": ("smallest detectable (80% power)", "最小可检测差异（80% 功效）"),
    "verdict": ("verdict", "判断"),
    "class": ("class", "类别"),
    "precision": ("precision", "精确率"),
    "recall": ("recall", "召回率"),
    "f1": ("F1", "F1"),
    "support": ("support", "样本数"),
    "text": ("text", "文本"),
    "true": ("true", "真实"),
    "predicted": ("predicted", "预测"),
    "layer": ("layer", "层"),
    "head": ("head", "头"),
    "entropy": ("attention entropy (nats)", "注意力熵 (奈特)"),
    "entropy_rel": ("entropy / uniform", "熵 / 均匀分布熵"),
    "distance": ("mean attended distance (tokens)", "平均注意距离 (词元)"),
    "epoch": ("epoch", "轮次"),
    "val_loss": ("validation loss", "验证损失"),
    "trial": ("trial", "试验"),
    "query": ("query token", "查询词元"),
    "key": ("key token", "键词元"),
    "selected": ("selected", "选中"),
    # explanations
    "results_intro": (
        "Every configuration on the selection runs, sorted by their mean validation accuracy (which chose); "
        "next to each chosen configuration, its confirmation runs on fresh seeds at the chosen epoch, with a "
        "t-based 95% confidence interval over those seeds (none with one seed). Test accuracy is sealed except "
        "for the selected configuration.",
        "每个配置在选择运行上的结果，按其平均验证准确率排序（选择依据于此）；每个被选中的配置旁列出其在新种子上、"
        "按选定轮次训练的确认运行，以及这些种子间基于 t 分布的 95% 置信区间（只有一个种子时无法给出）。"
        "除选中的配置外，测试准确率均封存。",
    ),
    "impact_intro": (
        "Validation accuracy of each point on its confirmation runs (fresh seeds, each point at its chosen "
        "settings and epoch; the selection runs where a study has none); error bars are 95% confidence "
        "intervals over seeds.",
        "每个点在其确认运行上的验证准确率（新种子，每个点使用其选定的设置和轮次；没有确认运行的研究使用选择运行）；"
        "误差线为种子间的 95% 置信区间。",
    ),
    "ablation_intro": (
        "Each variant at its own best learning rate (chosen on the selection runs), compared with the baseline "
        "on their confirmation runs: per validation row, paired by seed and row, with an interval that covers "
        "both seeds and the finite validation set, Bonferroni-adjusted across the ablations. The smallest "
        "detectable difference says how large an effect these runs could have missed.",
        "每个变体使用其在选择运行上选出的最佳学习率，在确认运行上与基线比较：逐个验证样本按种子和样本配对，"
        "区间同时涵盖种子与有限的验证集，并在各消融之间做 Bonferroni 校正。最小可检测差异说明这些运行可能漏掉多大的效应。",
    ),
    "no_ablation_study": ("No ablation study in this report.", "本报告不包含消融研究。"),
    "no_grid_study": ("No grid study with completed trials in this report.", "本报告没有包含已完成试验的网格研究。"),
    "no_completed": ("No completed trial", "没有完成的试验"),
    "no_completed_baseline": (
        "No confirmed baseline (ablation none without a completed confirmation run), so no ablation can be compared",
        "没有经确认的基线（ablation none 没有完成的确认运行），因此无法比较任何消融",
    ),
    "no_completed_variant": (
        "No confirmed ablation variant: only the baseline has completed confirmation runs",
        "没有经确认的消融变体：只有基线有完成的确认运行",
    ),
    "ablation_ci": (
        "Differences against the baseline on the confirmation runs with {level} confidence intervals, "
        "Bonferroni-adjusted over the {k} compared ablations (each p multiplied by {k}): an interval excludes 0 "
        "exactly when the verdict is significant.",
        "在确认运行上相对基线的差异及其 {level} 置信区间，经 {k} 个被比较消融的 Bonferroni 校正（每个 p 值乘以 {k}）："
        "区间不含 0 当且仅当判断为显著。",
    ),
    "best_intro": (
        "The selected configuration's run with the best validation accuracy (a confirmation run where there "
        "is one), on the test set.",
        "选中配置中验证准确率最高的运行（有确认运行时取确认运行）在测试集上的表现。",
    ),
    "misclassified": ("Misclassified test examples", "被错误分类的测试样本"),
    "attention_intro": (
        "Layer 1 / head 1 of the selected model on one validation sample (padding excluded: each row "
        "is a query token's attention over the real tokens and sums to 1), then every layer and head "
        "for the same sample.",
        "选中模型在一个验证样本上的第 1 层第 1 个头（已排除填充：每一行是一个查询"
        "词元对真实词元的注意力，和为 1），以及同一样本的所有层和头。",
    ),
    "heads_intro": (
        "Per head, over {n} validation samples: entropy of a query's attention (low = focused on few "
        "tokens; uniform attention over a sample would average {u:.2f} nats) and the mean distance in "
        "tokens between a query and what it attends to.",
        "每个头在 {n} 个验证样本上的统计：查询注意力的熵"
        "（越低越集中于少数词元；均匀注意力的平均熵为 {u:.2f} 奈特）以及查询与其关注词元之间的平均距离。",
    ),
    "sample": ("Sample", "样本"),
    "unavailable": ("Not available", "不可用"),
    # trial states and study settings
    "complete": ("complete", "完成"),
    "running": ("running", "运行中"),
    "failed": ("failed", "失败"),
    "waiting": ("waiting", "等待"),
    "selection_seeds": ("selection seeds", "选择种子"),
    "confirmation_seeds": ("confirmation seeds", "确认种子"),
    "fixed": ("fixed", "固定设置"),
    # verdicts, and why a comparison was not tested
    "significant": ("significant", "显著"),
    "inconclusive": ("inconclusive", "无定论"),
    "untested": ("untested", "未检验"),
    "not_run": ("not confirmed", "未经确认"),
    "reason_too_few_seeds": ("a test needs at least {n} {stage} seeds", "检验需要至少 {n} 个{stage}种子"),
    "reason_zero_variance": (
        "the paired differences do not vary (zero variance), so no interval can be computed",
        "配对差值没有任何变化（方差为零），无法计算区间",
    ),
    "reason_no_predictions": (
        "no per-row validation predictions were recorded (a study from an older newslab)",
        "没有记录逐行的验证预测（由较早版本的 newslab 运行的研究）",
    ),
    "reason_no_confirmation": (
        "not confirmed: no completed confirmation runs on fresh seeds",
        "未经确认：没有在新种子上完成的确认运行",
    ),
    "stage_confirm": ("confirmation", "确认"),
    "stage_select": ("selection", "选择"),
    "runs_confirm": ("confirmation runs", "确认运行"),
    "runs_select": ("selection runs", "选择运行"),
    # parameters
    "embed_dim": ("embed_dim", "嵌入维度"),
    "num_heads": ("heads", "注意力头数"),
    "lr": ("lr", "学习率"),
    "ablation": ("ablation", "消融"),
    "num_layers": ("layers", "层数"),
    "dropout": ("dropout", "丢弃率"),
    "batch_size": ("batch size", "批大小"),
    "epochs": ("epochs", "训练轮数"),
}

BASELINE_NAME = ("baseline", "基线")  # the unmodified model (ablation "none"); the ablations name themselves

CLASS_NAMES_ZH = {"World": "世界", "Sports": "体育", "Business": "商业", "Sci/Tech": "科技"}


def check_lang(lang: str) -> str:
    if lang not in LANGS:
        raise ConfigError(f"--lang {lang!r} is not one of: {' | '.join(LANGS)}")
    return lang


class Words:
    """Labels and number formats for one language: `w = Words("zh"); w["val_acc"]`."""

    def __init__(self, lang: str = "en"):
        self.lang = check_lang(lang)
        self._i = LANGS.index(lang)

    def __getitem__(self, key: str) -> str:
        return WORDS[key][self._i] if key in WORDS else key

    def param(self, name: str) -> str:
        return self[name]

    def ablation(self, name: str) -> str:
        """An ablation's display name, from the registry (newslab.config.ABLATIONS); unknown names as given."""
        if name == BASELINE:
            return BASELINE_NAME[self._i]
        ablation = ABLATIONS.get(name)
        if ablation is None:
            return name
        return (ablation.label, ablation.label_zh)[self._i]

    def class_name(self, name: str) -> str:
        return CLASS_NAMES_ZH.get(name, name) if self.lang == "zh" else name

    def value(self, name: str, value: Any) -> str:
        if name == "ablation":
            return self.ablation(value)
        return f"{value:g}" if isinstance(value, float) else str(value)

    def point(self, values: dict) -> str:
        """A configuration in words: "embed_dim 64, heads 2, lr 0.001"."""
        sep = "，" if self.lang == "zh" else ", "
        if set(values) == {"ablation"}:
            return self.ablation(values["ablation"])
        return sep.join(f"{self.param(k)} {self.value(k, v)}" for k, v in values.items()) or "-"

    def factor(self, key: str) -> str:
        """A factor's name; joint factors read "embed_dim/heads"."""
        return "/".join(self.param(n) for n in key.split(","))

    def factor_value(self, key: str, value: tuple) -> str:
        return "/".join(self.value(n, v) for n, v in zip(key.split(","), value))

    @staticmethod
    def pct(x: float | None, digits: int = 2) -> str:
        return "–" if x is None or not math.isfinite(x) else f"{100 * x:.{digits}f}%"

    def pts(self, diff: float | None, signed: bool = True) -> str:
        """A difference of accuracies in percentage points, signed unless `signed` is False."""
        if diff is None or not math.isfinite(diff):
            return "–"
        number = f"{100 * diff:+.2f}" if signed else f"{100 * diff:.2f}"
        return f"{number} " + ("个百分点" if self.lang == "zh" else "pts")

    def span(self, low: float, high: float) -> str:
        """An interval of differences in words: "between -3.10 and +0.80 pts"."""
        if self.lang == "zh":
            return f"在 {100 * low:+.2f} 到 {100 * high:+.2f} 个百分点之间"
        return f"between {100 * low:+.2f} and {100 * high:+.2f} pts"

    @staticmethod
    def bracket(low: float | None, high: float | None, relative: bool = False) -> str:
        """An interval in a table cell: "[-3.10, +0.80]" (points) or "[-3.62%, +0.94%]" (relative)."""
        if low is None or high is None or not (math.isfinite(low) and math.isfinite(high)):
            return "–"
        unit = "%" if relative else ""
        return f"[{100 * low:+.2f}{unit}, {100 * high:+.2f}{unit}]"

    @staticmethod
    def rel(x: float | None, digits: int = 2) -> str:
        """A relative change, signed: "+1.25%"."""
        return "–" if x is None or not math.isfinite(x) else f"{100 * x:+.{digits}f}%"

    @staticmethod
    def level(level: float) -> str:
        """A confidence level: "95%", "99.17%" in a Bonferroni family."""
        return f"{100 * level:.4g}%"

    def ci(self, level: float) -> str:
        """The header of a confidence interval: "95% CI"."""
        return self["ci"].format(level=self.level(level))

    @staticmethod
    def p(p: float | None) -> str:
        if p is None or not math.isfinite(p):
            return "–"
        return "p < 0.001" if p < 0.001 else f"p = {p:.3f}"

    def counts(self, counts: dict[str, int]) -> str:
        """Trial counts by state: "complete 12, running 0, failed 1, waiting 0"."""
        return ", ".join(f"{self[state]} {n}" for state, n in counts.items())

    def verdict(self, verdict: str) -> str:
        return self[verdict]

    def reason(self, reason: str, stage: str = "confirm") -> str:
        """Why a comparison was not tested (stats.Untested.reason), in words."""
        return self[f"reason_{reason}"].format(n=MIN_SEEDS, stage=self[f"stage_{stage}"])
