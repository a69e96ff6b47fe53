"""Words of the report in English and Chinese, and the number formats they share.

Every label a reader sees (section titles, table headers, axis labels, verdicts) is defined here
once per language; what parameters, ablations, classes and trial states are called comes from
newslab.names, which `newslab study results` reads too, and the generated sentences of the
conclusions live next to their logic (conclusions.py, attention_claims.py, classical_claims.py).
"""

from __future__ import annotations

import math
from typing import Any

from .. import names
from .stats import MIN_SEEDS

LANGS = names.LANGS

WORDS: dict[str, tuple[str, str]] = {
    # section titles
    "title": ("newslab report", "newslab 实验报告"),
    "setup": ("Setup", "实验设置"),
    "method": ("Method", "方法"),
    "results": ("Results", "结果"),
    "impact": ("Hyperparameter impact", "超参数的影响"),
    "ablations": ("Ablations", "消融实验"),
    "positional": ("Positional encodings", "位置编码"),
    "selected_sealed": (
        "Best configuration on the selection runs: {label}; this study compares at {base}'s pick, so its test "
        "accuracy stays sealed.",
        "选择运行上的最佳配置：{label}；本研究在 {base} 的选定配置上做比较，因此其测试准确率保持封存。",
    ),
    "scale": ("Sequence length and batch size", "序列长度与批大小"),
    "pretraining": ("Pretraining and fine-tuning", "预训练与微调"),
    "search": ("Search beyond the grid", "网格之外的搜索"),
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
    "class_precision": ("precision", "精确率"),  # the metric; "precision" is the setting (names.py)
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
    "distance": ("mean distance to the other tokens (tokens)", "到其他词元的平均距离 (词元)"),
    "epoch": ("epoch", "轮次"),
    "val_loss": ("validation loss", "验证损失"),
    "trial": ("trial", "试验"),
    "fail_reason": ("reason", "原因"),
    "query": ("query token", "查询词元"),
    "key": ("key token", "键词元"),
    "selected": ("selected", "选中"),
    # classical baselines (report/classical.py): reference rows of the results table
    "tfidf_svm": ("TF-IDF + linear SVM", "TF-IDF + 线性 SVM"),
    "tfidf_logreg": ("TF-IDF + logistic regression", "TF-IDF + 逻辑回归"),
    "reference": ("reference", "参照"),
    "classical_caption": (
        "Rows marked reference are classical baselines on the same rows, not ranked among the configurations: "
        "TF-IDF of word 1–2-grams fitted on the training rows, C chosen on the selection split's validation rows "
        "(selection column), then refitted on the confirmation split's training rows and scored on its validation "
        "rows (confirmation column: the rows the Transformer confirmation runs predicted) and on the test set; "
        "deterministic, so one fit and no interval; time: TF-IDF and that refit.",
        "标为参照的行是在相同数据上的经典基线，不参与配置排名：在训练样本上拟合词 1–2 元组的 TF-IDF，"
        "C 在选择划分的验证样本上选定（选择列），再在确认划分的训练样本上重新拟合，并在其验证样本"
        "（确认列：与 Transformer 确认运行预测的样本相同）和测试集上评分；结果是确定性的，因此只拟合一次、没有区间；"
        "时间：TF-IDF 与该次重新拟合。",
    ),
    "classical_unavailable": ("Classical baselines: not available ({why}).", "经典基线：不可用（{why}）。"),
    "why_classical_no_data_dir": (
        "study {study!r}: its data folder is not known here; pass --data-dir",
        "研究 {study} 的数据目录在此未知；请传入 --data-dir",
    ),
    "why_classical_rows": (
        "study {study!r}: its confirmation runs predicted {runs} validation rows, the classical baselines saw "
        "{rows}: not the data the study ran on",
        "研究 {study} 的确认运行预测了 {runs} 个验证样本，而经典基线看到的是 {rows} 个：不是该研究所用的数据",
    ),
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
    "no_positional_study": (
        "No positional-encoding study in this report (`newslab study run pos-enc` or `quick-pos-enc` runs one).",
        "本报告不包含位置编码研究（`newslab study run pos-enc` 或 `quick-pos-enc` 可运行）。",
    ),
    "positional_intro": (
        "Every positional encoding at the grid's best configuration, each at its own best learning rate, compared "
        "with the reference encoding on their confirmation runs by the ablations' paired test (Bonferroni-adjusted "
        "across the encodings). Sinusoidal and learned absolute positions are added to the token embeddings; RoPE "
        "turns each head's queries and keys by their position, ALiBi subtracts a per-head slope times the distance "
        "|j − i| from the scores, and the learned relative bias adds one trained value per head and offset j − i: "
        "these three see only how far apart two tokens are.",
        "每种位置编码都在网格的最佳配置上、使用各自的最佳学习率训练，并在确认运行上以消融实验的配对检验与参照编码比较"
        "（对各编码做 Bonferroni 校正）。正弦与可学习绝对位置编码加到词嵌入上；RoPE 按位置旋转每个头的查询和键，"
        "ALiBi 从注意力分数中减去每个头的斜率乘以距离 |j − i|，可学习相对偏置为每个头和每个偏移 j − i 加一个训练得到的值："
        "这三种只看两个词元相距多远。",
    ),
    "positional_heads_intro": (
        "The heads of one model per encoding (its confirmation run of the lowest seed), over the same validation "
        "rows: descriptive statistics, not a test.",
        "每种编码取一个模型（其最小种子的确认运行），在相同的验证样本上统计各头：描述性统计，不是检验。",
    ),
    "no_reference_encoding": (
        "No confirmed run of the reference encoding {reference}, so no encoding can be compared",
        "参照编码{reference}没有经确认的运行，因此无法比较任何编码",
    ),
    "no_scale_study": (
        "No sequence-length and batch-size study in this report (`newslab study run scale` or `quick-scale` runs one).",
        "本报告不包含序列长度与批大小研究（`newslab study run scale` 或 `quick-scale` 可运行）。",
    ),
    "scale_intro": (
        "One factor at a time around a reference point: longer and shorter sequences (max_len) at its batch size, "
        "then smaller and larger batches at its max_len, each point at its own best learning rate, compared with "
        "the reference on the confirmation runs (the paired test, Bonferroni-adjusted across the points) beside "
        "the time a run takes.",
        "围绕一个参照点每次只改变一个因素：在其批大小下改变序列长度（max_len），再在其 max_len 下改变批大小；"
        "每个点使用各自的最佳学习率，在确认运行上与参照点比较（配对检验，对各点做 Bonferroni 校正），并给出每次运行的时间。",
    ),
    "lr_rule_intro": (
        "The learning-rate scaling rule: each batch size's best lr (at the reference max_len), interpolated on the "
        "selection runs' accuracy over log lr, fitted as lr* ∝ batch^k with a 95% interval for k. A rule (none: k = "
        "0, square root: 0.5, linear: 1) is consistent when its k lies in the interval.",
        "学习率缩放规则：参照 max_len 下每个批大小的最佳学习率（在选择运行的准确率对 log 学习率曲线上插值得到），"
        "拟合为 lr* ∝ 批大小^k 并给出 k 的 95% 区间。某规则（不缩放：k = 0，平方根：0.5，线性：1）的 k 落在区间内即为相符。",
    ),
    "no_search_study": (
        "No search study in this report (`newslab study run search` or `quick-search` runs one).",
        "本报告不包含搜索研究（`newslab study run search` 或 `quick-search` 可运行）。",
    ),
    "search_intro": (
        "A search draws each trial's settings from ranges with one of Optuna's samplers (TPE, random, CMA-ES), "
        "each trial on one seed; a pruner (median, Hyperband) stops a trial whose validation accuracy falls behind "
        "the others' at the same epoch. Its best trial is then confirmed on fresh seeds and a fresh validation split, "
        "like every pick of this report.",
        "搜索用 Optuna 的采样器（TPE、随机、CMA-ES）从取值范围中为每个试验抽取设置，每个试验一个种子；剪枝器（中位数、"
        "Hyperband）会停止在同一轮次验证准确率落后于其他试验的试验。随后在新种子和新的验证集上确认最佳试验，与本报告中每次选择一样。",
    ),
    "sampler_tpe": ("TPE", "TPE"),
    "sampler_random": ("random", "随机"),
    "sampler_cmaes": ("CMA-ES", "CMA-ES"),
    "pruner_median": ("median", "中位数"),
    "pruner_hyperband": ("Hyperband", "Hyperband"),
    "pruner_none": ("no", "无"),
    "state_complete": ("complete", "完成"),
    "state_pruned": ("pruned (best before it stopped)", "剪枝（停止前的最佳值）"),
    "best_so_far": ("best so far", "目前最佳"),
    "search_trial": ("trial, in the order created", "试验（按创建顺序）"),
    "search_history": ("search history", "搜索历史"),
    "search_history_caption": (
        "each search trial's validation accuracy (one seed) in the order the trials were created, and the best so far",
        "每个搜索试验的验证准确率（一个种子），按试验创建顺序排列，以及目前最佳",
    ),
    "importance": ("parameter importance (fANOVA)", "参数重要性（fANOVA）"),
    "importance_caption": (
        "fANOVA importance of each searched setting over the completed trials (they sum to 1; descriptive)",
        "各搜索设置在已完成试验上的 fANOVA 重要性（总和为 1；描述性）",
    ),
    "why_few_search_trials": (
        "{n} completed search trial(s) with different accuracies; fANOVA needs {k} or more",
        "只有 {n} 个准确率不同的已完成搜索试验；fANOVA 至少需要 {k} 个",
    ),
    "no_pretraining_study": (
        "No pretraining study in this report (`newslab study run pretraining` or `quick-pretraining` runs one).",
        "本报告不包含预训练研究（`newslab study run pretraining` 或 `quick-pretraining` 可运行）。",
    ),
    "pretraining_intro": (
        "The encoder pretrained as a masked language model (15% of the tokens hidden, BERT's corruption) on the "
        "training split's texts only — never a validation or test text —, then fine-tuned on the labels, against "
        "the same model trained from scratch, each at its own best learning rate and the same fine-tuning budget, "
        "compared on the confirmation runs (the paired test, Bonferroni-adjusted over the variants). Each data "
        "split (selection, confirmation) has an encoder of its own, pretrained once and cached; its cost is in the "
        "last column.",
        "编码器先以遮盖语言模型（遮盖 15% 的词元，BERT 的做法）在训练集文本上预训练——从不使用验证或测试文本——再在标签上微调，"
        "与从头训练的同一模型比较；各自使用最佳学习率和相同的微调预算，在确认运行上比较（配对检验，对各变体做 Bonferroni 校正）。"
        "每个数据划分（选择、确认）有自己的编码器，只预训练一次并缓存；其代价见最后一列。",
    ),
    "initialisation": ("initialisation", "初始化"),
    "from_scratch": ("from scratch", "从头训练"),
    "pretrained": ("pretrained", "预训练"),
    "chosen_lr": ("chosen lr", "选定学习率"),
    "finetune_seconds": ("fine-tuning s per run", "每次微调秒数"),
    "pretrain_seconds": ("pretraining s × encoders", "预训练秒数 × 编码器数"),
    "pretraining_ci": (
        "Differences against training from scratch on the confirmation runs with {level} confidence intervals, "
        "Bonferroni-adjusted over the study's {k} variants.",
        "在确认运行上相对从头训练的差异及其 {level} 置信区间，经本研究 {k} 个变体的 Bonferroni 校正。",
    ),
    "lengths_unavailable": ("The training rows' lengths are unavailable", "无法读取训练样本的长度"),
    "lengths_caption": (
        "Token counts of the {n} training rows (before truncation).",
        "{n} 个训练样本的词元数（截断前）。",
    ),
    "longest": ("longest", "最长"),
    "rows_cut": ("of the rows cut", "的样本被截断"),
    "tokens_cut": ("of the tokens cut", "的词元被截断"),
    "tokens_per_row": ("tokens per row", "每个样本的词元数"),
    "length_distribution": ("training rows by length", "训练样本的长度分布"),
    "lr_grid": ("best lr (grid)", "最佳学习率（网格）"),
    "lr_interpolated": ("best lr (interpolated)", "最佳学习率（插值）"),
    "at_edge": ("at the grid's edge", "位于网格边缘"),
    "seconds_per_run": ("s per run", "每次运行秒数"),
    "scale_ci": (
        "Differences against the reference point on the confirmation runs with {level} confidence intervals, "
        "Bonferroni-adjusted over the study's {k} other points.",
        "在确认运行上相对参照点的差异及其 {level} 置信区间，经本研究其余 {k} 个点的 Bonferroni 校正。",
    ),
    "varying": ("varying", "改变"),
    "accuracy_vs_time": ("accuracy against time", "准确率与时间"),
    "accuracy_vs_time_caption": (
        "validation accuracy of the confirmation runs (mean, 95% interval over seeds) against the mean time per run; "
        "labels give the varied value",
        "确认运行的验证准确率（均值与种子间 95% 区间）与每次运行的平均时间；标注为所改变的取值",
    ),
    "best_lr": ("best lr", "最佳学习率"),
    "fitted": ("fitted", "拟合"),
    "rule_none": ("none (k = 0)", "不缩放 (k = 0)"),
    "rule_sqrt": ("square root (k = 0.5)", "平方根 (k = 0.5)"),
    "rule_linear": ("linear (k = 1)", "线性 (k = 1)"),
    "lr_rule": ("learning-rate scaling rule", "学习率缩放规则"),
    "lr_rule_caption": (
        "each batch size's best lr (filled: inside the lr grid; open: at its edge), the fitted line and each rule "
        "through the points' centre",
        "每个批大小的最佳学习率（实心：在网格内；空心：在边缘），拟合直线以及经过各点中心的各规则",
    ),
    "encoding_where": ("position enters", "位置信息的加入方式"),
    "where_added": ("added to the embeddings", "加到词嵌入上"),
    "where_attention": ("in every attention layer", "作用于每个注意力层"),
    "where_none": ("nowhere", "无"),
    "head_kinds": ("heads by kind", "各类型头数"),
    "encoding_heads_table": (
        "Means over the heads of each head's mean over {n} validation rows; 1 = as uniform attention.",
        "各头在 {n} 个验证样本上的均值再对各头取平均；1 = 与均匀注意力相同。",
    ),
    "mean_of_heads": ("mean of the heads", "各头均值"),
    "uniform": ("uniform attention", "均匀注意力"),
    "encoding_heads_caption": (
        "each encoding's heads against uniform attention (dots: heads, coloured by layer; bar: their mean; dotted: "
        "the head kinds' thresholds)",
        "各编码的注意力头与均匀注意力的对比（点：各头，颜色表示层；横线：均值；虚线：头类型的阈值）",
    ),
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
        "Differences against the {reference} on the confirmation runs with {level} confidence intervals, "
        "Bonferroni-adjusted over the study's {k} variants (each p multiplied by {k}): an interval excludes 0 "
        "exactly when the verdict is significant.",
        "在确认运行上相对{reference}的差异及其 {level} 置信区间，经本研究 {k} 个变体的 Bonferroni 校正（每个 p 值乘以 {k}）："
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
        "Per head, over {n} validation rows of the selected model ([UNK] share of their tokens: {unk}): the "
        "share of a query's attention on its own token, the entropy of its attention (low = focused on few tokens) and "
        "the mean distance in tokens to the other tokens it attends to, each averaged over the row's queries. Descriptive statistics of one "
        "model, not a test.",
        "选中模型每个头在 {n} 个验证样本上的统计（这些样本词元中 [UNK] 占比 {unk}）：查询放在自身词元上的注意力占比、"
        "查询注意力的熵（越低越集中于少数词元）以及查询到其关注的其他词元的平均距离（词元数），均先在样本内对查询取平均。"
        "这是一个模型的描述性统计，而非检验。",
    ),
    "sample": ("Sample", "样本"),
    "unavailable": ("Not available", "不可用"),
    # study settings
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
    # study figures (report/plots.py)
    "errorbar_ci": ("error bars: 95% t interval over seeds", "误差线：种子间 95% t 区间"),
    "at_chosen": ("each point at its chosen {what}", "每个点使用其选定的{what}"),
    "curves": ("learning curves", "学习曲线"),
    "band_sd": ("mean over {n} seed(s), band ±1 sd", "{n} 个种子的均值，阴影为 ±1 标准差"),
    "ablation_curves_note": (
        "each variant at its chosen settings, against the baseline in grey",
        "每个变体使用其选定的设置，灰色为基线",
    ),
    "loss": ("loss (nats)", "损失 (奈特)"),
    "train_loss": ("training loss", "训练损失"),
    "train_loss_smoothed": ("training loss (label-smoothed)", "训练损失（标签平滑）"),
    "baseline_val": ("{reference} val {acc}", "{reference}验证准确率 {acc}"),
    "examples": ("test examples", "测试样本数"),
    # attention (report/attention.py; figures attention_head, attention_grid, head_summary; head_table)
    "head_kind": ("kind", "类型"),
    "kind_self": ("self", "自身型"),
    "kind_positional": ("positional", "位置型"),
    "kind_broad": ("broad", "广泛型"),
    "kind_focused": ("focused", "聚焦型"),
    "kind_mixed": ("mixed", "混合型"),
    "distance_rel": ("distance / uniform", "距离 / 均匀分布距离"),
    "self_share": ("self share", "自身占比"),
    "ratio_uniform": ("÷ uniform attention (1 = uniform)", "÷ 均匀注意力（1 = 均匀）"),
    "attention_weight": ("attention weight", "注意力权重"),
    "attention_weight_sqrt": ("attention weight (square-root colours)", "注意力权重（平方根色标）"),
    "grid_caption": (
        "every layer and head on the sample, on one colour scale",
        "该样本上的每一层和每个头，共用一个色标",
    ),
    "heads_caption": (
        "Every head against uniform attention (1 = uniform): mean ± sd over the rows",
        "每个头与均匀注意力的对比（1 = 均匀）：各样本的均值 ± 标准差",
    ),
    "selected_model": ("selected model", "选中模型"),
    "unknown_share": ("[UNK] share", "[UNK] 占比"),
    "sample_chosen_index": ("chosen with --attention-sample", "由 --attention-sample 指定"),
    "sample_chosen_class": (
        "--attention-class: of the rows of class {name} with {low}–{high} tokens, classified correctly where "
        "one is, the first with the fewest [UNK]",
        "--attention-class：在类别 {name} 中长 {low}–{high} 个词元的样本里（有被正确分类的则只取这些），[UNK] 最少的第一个",
    ),
    "sample_chosen_default": (
        "of the rows with {low}–{high} tokens, classified correctly where one is, the first with the fewest "
        "[UNK]; choose another with --attention-sample INDEX or --attention-class NAME",
        "在长 {low}–{high} 个词元的样本里（有被正确分类的则只取这些），[UNK] 最少的第一个；可用 "
        "--attention-sample INDEX 或 --attention-class NAME 另选",
    ),
    "heads_kinds": (
        "Each head is read against uniform attention over the same row of L tokens, per query and then "
        "averaged over the row's queries: self share is the weight a query puts on its own token (uniform: 1 / L); "
        "entropy / uniform is 1 when a query spreads its attention evenly (entropy log L) and 0 when it takes one "
        "token; distance / uniform measures how far away the other tokens it attends to lie (its weights "
        "renormalised over the other tokens), 1 at uniform attention's mean distance ((L + 1) / 3 tokens). A token "
        "can pick itself by content alone, so attending to itself counts in the self share, never as nearness. "
        "Cells and table give the mean ± sd over the rows. Kinds, on these means, the first rule met: self (self "
        "share > {self}: its own token outweighs all others together), positional (distance / uniform ≤ "
        "{positional}: the other tokens it attends to lie near it), broad (entropy / uniform ≥ {broad}), focused "
        "(entropy / uniform ≤ {focused}: a few tokens, chosen by content), else mixed.",
        "每个头都与同一样本（L 个词元）上的均匀注意力对照，先按查询计算，再在样本内对查询取平均：自身占比是查询放在自身词元上的"
        "权重（均匀时为 1 / L）；查询把注意力平均分给各词元时（熵为 log L），熵 / 均匀分布熵为 1，只关注一个词元时为 0；"
        "距离 / 均匀分布距离衡量它所关注的其他词元离它多远（权重在其他词元上重新归一化），在均匀注意力的平均距离"
        "（(L + 1) / 3 个词元）处为 1。词元仅凭内容就能选中自身，因此关注自身只计入自身占比，不算作“邻近”。"
        "图中各格与表中给出各样本的均值 ± 标准差。按这些均值分类，取第一个满足的规则：自身型（自身占比 > {self}："
        "自身词元的权重超过其他词元之和），位置型（距离 / 均匀分布距离 ≤ {positional}：所关注的其他词元离它较近），"
        "广泛型（熵 / 均匀分布熵 ≥ {broad}），聚焦型（熵 / 均匀分布熵 ≤ {focused}：按内容选出的少数词元），"
        "否则为混合型。",
    ),
    "heads_compared": (
        "Beside it, the ablation study's variant {name} (its run of the lowest seed: {run}) on {rows} ([UNK] "
        "share {unk}): without positions, a head can tell tokens apart only by content, so any nearness it shows "
        "comes through content (such as a word repeated nearby), not through position.",
        "旁边是消融研究的变体“{name}”（种子最小的运行：{run}），统计于{rows}（[UNK] 占比 {unk}）："
        "没有位置信息，头只能按内容区分词元，因此它表现出的任何“邻近”都只能来自内容（例如附近重复的词），而非位置。",
    ),
    "rows_same": ("the same {n} validation rows", "同样的 {n} 个验证样本"),
    "rows_own": ("{n} rows of its own validation split", "其自身验证集中的 {n} 个样本"),
    "heads_compared_missing": (
        "The heads of the variant {name} are not shown: {why}",
        "未显示变体“{name}”的头：{why}",
    ),
    "compared_unreadable": ("its run {run} gave an error: {why}", "其运行 {run} 出错"),
    "attention_failed": ("the run {run} could not be analysed ({why})", "无法分析运行 {run}"),
    # parameters, ablations, classes and trial states: newslab.names (the command line reads them too)
    # setup and best model: the data, the machine, and why a part is missing (names and zh part)
    "split_train": ("train", "训练集"),
    "split_val": ("val", "验证集"),
    "split_test": ("test", "测试集"),
    "vocab_size_actual": ("vocabulary size (actual)", "实际词表大小"),
    "env_platform": ("platform", "平台"),
    "env_cpu": ("CPU", "CPU"),
    "env_cores": ("{n} cores available", "可用 {n} 个核心"),
    "env_gpu": ("GPU", "GPU"),
    "env_python": ("Python", "Python"),
    "env_trained_on": ("trained on", "训练设备"),
    "none": ("none", "无"),
    "not_installed": ("not installed", "未安装"),
    "run_folder": ("run folder", "运行目录"),
    "why_no_trial": ("no study has a completed trial", "没有任何研究有完成的试验"),
    "why_no_run_folder": (
        "study {study!r} trial {trial} recorded no run folder",
        "研究 {study} 的试验 {trial} 没有记录运行目录",
    ),
    "why_not_here": (
        "run folder {folder} of study {study!r} trial {trial} is not on this machine (no {file})",
        "研究 {study} 的试验 {trial} 的运行目录 {folder} 不在这台机器上（缺少 {file}）",
    ),
    "why_data_missing": (
        "{folder} lacks {files}; pass --data-dir or set NEWSLAB_DATA_DIR",
        "{folder} 缺少 {files}；请传入 --data-dir 或设置 NEWSLAB_DATA_DIR",
    ),
    "why_data_mismatch": (
        "{folder}/test.csv has {rows} rows but the run predicted {predicted}: not the data it was trained on",
        "{folder}/test.csv 有 {rows} 行，而该运行预测了 {predicted} 行：不是它训练时所用的数据",
    ),
    "why_no_data": ("no data", "没有数据"),
    # the manual (manual.py): why the attention analysis cannot run
    "attention_needs_texts": ("attention analysis needs the validation texts", "注意力分析需要验证集文本"),
}


class Reason(str):
    """Why part of the report is missing, as a WORDS entry and its values: it reads as the English text
    (an error message, a log line), and `Words.say` words it in the report's language."""

    key: str
    values: dict[str, Any]

    def __new__(cls, key: str, **values: Any) -> Reason:
        reason = super().__new__(cls, WORDS[key][0].format(**values))
        reason.key, reason.values = key, values
        return reason

    def __getnewargs_ex__(self) -> tuple[tuple[str], dict[str, Any]]:
        """Copies and pickles rebuild it from its key and values (str's own would pass the English text)."""
        return (self.key,), self.values


def check_lang(lang: str) -> str:
    names.lang_index(lang)  # ConfigError naming --lang
    return lang


class Words:
    """Labels and number formats for one language: `w = Words("zh"); w["val_acc"]`."""

    def __init__(self, lang: str = "en"):
        self.lang = check_lang(lang)
        self._i = LANGS.index(lang)

    def __getitem__(self, key: str) -> str:
        """A label; a setting's name (newslab.names) is one too; an unknown key as given."""
        return WORDS[key][self._i] if key in WORDS else names.parameter(key, self.lang)

    @property
    def colon(self) -> str:
        return "：" if self.lang == "zh" else ": "

    @property
    def comma(self) -> str:
        return "，" if self.lang == "zh" else ", "

    @property
    def semicolon(self) -> str:
        return "；" if self.lang == "zh" else "; "

    def say(self, text: str) -> str:
        """A Reason in this language; any other text as given."""
        return self[text.key].format(**text.values) if isinstance(text, Reason) else text

    def param(self, name: str) -> str:
        """A setting's name (newslab.names), or another named value of the report (WORDS)."""
        return names.parameter(name, self.lang) if name in names.PARAMETERS else self[name]

    def ablation(self, name: str) -> str:
        return names.ablation(name, self.lang)

    def class_name(self, name: str) -> str:
        return names.class_name(name, self.lang)

    def value(self, name: str, value: Any) -> str:
        return names.value(name, value, self.lang)

    def point(self, values: dict) -> str:
        """A configuration in words: "embed_dim 64, heads 2, lr 0.001"."""
        if set(values) == {"ablation"}:
            return self.ablation(values["ablation"])
        return self.comma.join(f"{self.param(k)} {self.value(k, v)}" for k, v in values.items()) or "-"

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
        return self.comma.join(f"{names.state(state, self.lang)} {n}" for state, n in counts.items())

    def verdict(self, verdict: str) -> str:
        return self[verdict]

    def reason(self, reason: str, stage: str = "confirm") -> str:
        """Why a comparison was not tested (stats.Untested.reason), in words."""
        return self[f"reason_{reason}"].format(n=MIN_SEEDS, stage=self[f"stage_{stage}"])
