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

LANGS = ("en", "zh")

WORDS: dict[str, tuple[str, str]] = {
    # section titles
    "title": ("newslab report", "newslab 实验报告"),
    "setup": ("Setup", "实验设置"),
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
    "mean_std": ("mean ± std", "均值 ± 标准差"),
    "ci": ("{level} CI", "{level} 置信区间"),
    "n": ("n", "n"),
    "params": ("parameters", "参数量"),
    "time": ("time (s)", "时间 (秒)"),
    "best_epoch": ("best epoch", "最佳轮次"),
    "rel_change": ("relative change", "相对变化"),
    "diff": ("difference", "差值"),
    "test_diff": ("test difference", "测试集差值"),
    "p_seeds": ("p (Welch, seeds)", "p (Welch, 种子)"),
    "p_test": ("p (test set)", "p (测试集)"),
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
        "Every configuration over its seeds, sorted by mean validation accuracy; the 95% "
        "confidence interval is t-based over seeds (none with one seed). Selection never looks at "
        "the test set.",
        "每个配置在其所有种子上的结果，按平均验证准确率排序；95% 置信区间基于种子间的 "
        "t 分布（只有一个种子时无法给出）。选择配置时从不使用测试集。",
    ),
    "impact_intro": ("Error bars are 95% confidence intervals over seeds.", "误差线为种子间的 95% 置信区间。"),
    "ablation_intro": (
        "Each variant at its own best learning rate, compared with the baseline on validation accuracy "
        "by Welch's t over seeds (Bonferroni-adjusted across the ablations); the verdict rests on it. The "
        "paired test on the test predictions compares these particular trained models row by row: it "
        "ignores seed-to-seed variation, so it calls smaller differences significant, and only decides "
        "the verdict when there is a single seed.",
        "每个变体使用其最佳学习率，按种子间 Welch t 检验（经 Bonferroni 校正）与基线比较验证准确率，判断以此为准。"
        "测试集预测的配对检验逐行比较这些具体训练出的模型：它忽略种子间的差异，因此会把更小的差异判为显著，"
        "只有在只有一个种子时才决定判断结果。",
    ),
    "no_ablation_study": ("No ablation study in this report.", "本报告不包含消融研究。"),
    "no_grid_study": ("No grid study with completed trials in this report.", "本报告没有包含已完成试验的网格研究。"),
    "no_completed": ("No completed trial", "没有完成的试验"),
    "no_completed_baseline": (
        "No completed baseline (ablation none), so no ablation can be compared",
        "没有完成的基线（ablation none），因此无法比较任何消融",
    ),
    "no_completed_variant": (
        "No completed ablation variant: only the baseline finished",
        "没有完成的消融变体：只有基线完成了",
    ),
    "ablation_ci": (
        "Relative change against the baseline with {level} confidence intervals, Bonferroni-adjusted "
        "over the {k} compared ablations (each p multiplied by {k}): an interval excludes 0 exactly "
        "when the verdict is significant.",
        "相对基线的变化及其 {level} 置信区间，经 {k} 个被比较消融的 Bonferroni 校正（每个 p 值乘以 {k}）："
        "区间不含 0 当且仅当判断为显著。",
    ),
    "best_intro": (
        "The selected configuration's best seed, on the test set.",
        "选中配置中验证准确率最高的种子在测试集上的表现。",
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
    "seeds": ("seeds", "种子"),
    "fixed": ("fixed", "固定设置"),
    # verdicts
    "significant": ("significant", "显著"),
    "noise": ("within noise", "在噪声范围内"),
    "untested": ("cannot be tested", "无法检验"),
    "not_run": ("no completed trial", "没有完成的试验"),
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

    def pts(self, diff: float | None) -> str:
        """A difference of accuracies in percentage points, signed."""
        if diff is None or not math.isfinite(diff):
            return "–"
        return f"{100 * diff:+.2f} " + ("个百分点" if self.lang == "zh" else "pts")

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
