"""Names for people, in English and Chinese: what a parameter, an ablation, a class or a trial state
is called wherever a person reads it (`newslab study results`, the report, the notebook).

The raw names (`embed_dim`, `no_ffn`) stay in specs, files and the machine formats (`--format csv/json`);
everything printed for a reader goes through this one registry, so the command line and the report
never call one thing two names. The ablations' names live with their overrides (config.ABLATIONS).
"""

from __future__ import annotations

from typing import Any

from .config import ABLATIONS, BASELINE
from .errors import ConfigError

LANGS = ("en", "zh")

# every setting a study may vary (config.settable_in_studies()), the seed and the ablation
PARAMETERS: dict[str, tuple[str, str]] = {
    "ablation": ("ablation", "消融"),
    "seed": ("seed", "种子"),
    # model
    "embed_dim": ("embed_dim", "嵌入维度"),
    "num_heads": ("heads", "注意力头数"),
    "num_layers": ("layers", "层数"),
    "ffn_dim": ("FFN width", "前馈网络宽度"),
    "ffn": ("FFN", "前馈网络"),
    "dropout": ("dropout", "丢弃率"),
    "pos_encoding": ("positional encoding", "位置编码"),
    "max_len": ("max length", "最大长度"),
    "token_dropout": ("word dropout", "词丢弃率"),
    "freeze_embedding": ("frozen embedding", "冻结词嵌入"),
    # data
    "data_dir": ("data folder", "数据目录"),
    "tokenizer": ("tokenizer", "分词器"),
    "vocab_size": ("vocabulary size", "词表大小"),
    "min_freq": ("min frequency", "最小词频"),
    "normalize": ("normalize", "文本规范化"),
    "val_fraction": ("validation fraction", "验证集比例"),
    "split_seed": ("split seed", "划分种子"),
    "train_limit": ("training rows", "训练行数"),
    "tokenizer_file": ("tokenizer file", "分词器文件"),
    # optimisation
    "epochs": ("epochs", "训练轮数"),
    "batch_size": ("batch size", "批大小"),
    "lr": ("lr", "学习率"),
    "weight_decay": ("weight decay", "权重衰减"),
    "warmup": ("warm-up", "预热比例"),
    "label_smoothing": ("label smoothing", "标签平滑"),
    "clip_grad": ("gradient clipping", "梯度裁剪"),
    "max_grad_norm": ("max gradient norm", "最大梯度范数"),
    "patience": ("patience", "早停耐心"),
    "stop_epoch": ("stop epoch", "停止轮次"),
    "precision": ("precision", "数值精度"),
    "init_from": ("initialisation", "初始化"),
    "pretrain_epochs": ("pretraining epochs", "预训练轮数"),
    "finetune": ("fine-tuning", "微调方式"),
    "layer_lr_decay": ("layer lr decay", "逐层学习率衰减"),
    "distill": ("distillation weight", "蒸馏权重"),
    # execution
    "device": ("device", "设备"),
    "threads": ("threads", "线程数"),
    "eval_batch_size": ("eval batch size", "评估批大小"),
    "micro_batch_size": ("micro-batch size", "微批大小"),
    "compile": ("compile", "编译"),
}

BASELINE_NAME = ("baseline", "基线")  # the unmodified model: ablation "none"

ENCODINGS: dict[str, tuple[str, str]] = {  # every entry of positions.POSITIONAL_ENCODINGS
    "sinusoidal": ("sinusoidal", "正弦"),
    "learned": ("learned absolute", "可学习绝对位置"),
    "rope": ("RoPE", "RoPE 旋转位置"),
    "alibi": ("ALiBi", "ALiBi 线性偏置"),
    "relative": ("learned relative bias", "可学习相对偏置"),
    "none": ("none", "无位置编码"),
}

CLASSES: dict[str, tuple[str, str]] = {
    "World": ("World", "世界"),
    "Sports": ("Sports", "体育"),
    "Business": ("Business", "商业"),
    "Sci/Tech": ("Sci/Tech", "科技"),
}

STATES: dict[str, tuple[str, str]] = {  # StudyResult.counts()'s keys, then a run's other states (final.json)
    "complete": ("complete", "完成"),
    "running": ("running", "运行中"),
    "failed": ("failed", "失败"),
    "waiting": ("waiting", "等待"),
    "pruned": ("pruned", "已剪枝"),
    "created": ("created", "已创建"),
    "completed": ("completed", "已完成"),
    "interrupted": ("interrupted", "已中断"),
}

INITIALISATIONS = {None: ("from scratch", "从头训练"), "pretrain": ("pretrained here", "此处预训练")}  # else a folder
FINETUNING = {
    "full": ("full", "全部参数"),
    "partial": ("partial (embeddings frozen)", "部分（冻结嵌入）"),
    "frozen": ("frozen (head only)", "冻结（仅分类头）"),
}

SWITCH = {True: ("on", "开"), False: ("off", "关")}  # a boolean setting's value


def lang_index(lang: str) -> int:
    if lang not in LANGS:
        raise ConfigError(f"--lang {lang!r} is not one of: {' | '.join(LANGS)}")
    return LANGS.index(lang)


def parameter(name: str, lang: str = "en") -> str:
    """A setting's name: "heads" for num_heads; an unknown name as given."""
    return PARAMETERS[name][lang_index(lang)] if name in PARAMETERS else name


def ablation(name: str, lang: str = "en") -> str:
    """An ablation's name ("none" is the baseline); a combination "a+b" joins its parts' names."""
    i = lang_index(lang)
    if name == BASELINE:
        return BASELINE_NAME[i]
    if name in ABLATIONS:
        return (ABLATIONS[name].label, ABLATIONS[name].label_zh)[i]
    if "+" in name:
        return " + ".join(ablation(part, lang) for part in name.split("+"))
    return name


def class_name(name: str, lang: str = "en") -> str:
    return CLASSES[name][lang_index(lang)] if name in CLASSES else name


def state(name: str, lang: str = "en") -> str:
    return STATES[name][lang_index(lang)] if name in STATES else name


def value(name: str, value: Any, lang: str = "en") -> str:
    """A setting's value for a reader: an ablation or a positional encoding by its name, a float without
    trailing zeros."""
    if name == "ablation":
        return ablation("+".join(value) if isinstance(value, (list, tuple)) else str(value), lang)
    if name == "pos_encoding" and value in ENCODINGS:
        return ENCODINGS[value][lang_index(lang)]
    if name == "init_from" and value in INITIALISATIONS:
        return INITIALISATIONS[value][lang_index(lang)]
    if name == "finetune" and value in FINETUNING:
        return FINETUNING[value][lang_index(lang)]
    if isinstance(value, bool):
        return SWITCH[value][lang_index(lang)]
    if value is None:
        return "–"
    return f"{value:g}" if isinstance(value, float) else str(value)
