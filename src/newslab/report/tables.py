"""The report's tables, as rows of strings. Every number passes through i18n.Words' formats,
which print "–" for a missing value: a table never shows NaN.
"""

from __future__ import annotations

from ..study.results import StudyResult
from .attention import HeadSummary, relative_entropy
from .bestmodel import BestRun
from .effects import AblationResults
from .i18n import Words
from .render import Table
from .stats import LEVEL, mean_interval


def _mean_std(values: list[float], w: Words) -> str:
    iv = mean_interval(values)
    if iv is None:
        return "–"
    return w.pct(iv.mean) + (f" ± {100 * iv.std:.2f}" if iv.std is not None else "")


def _ci(values: list[float], w: Words) -> str:
    iv = mean_interval(values)
    if iv is None or iv.low is None or iv.high is None:
        return "–"
    return f"[{100 * iv.low:.2f}, {100 * iv.high:.2f}]"


def results_table(result: StudyResult, w: Words) -> Table:
    """Every configuration (point x nuisance) over its seeds, best validation accuracy first;
    the selected configuration is marked. Test accuracy is shown for it alone (below the table)."""
    summaries = sorted(result.summaries(), key=lambda s: -s.val_mean)
    selected = result.best() if summaries else None
    names = [*result.spec.parameter_names("scientific"), *result.spec.parameter_names("nuisance")]
    headers = [w.param(n) for n in names] + [
        f"{w['val_acc']} ({w['mean_std']})",
        w.ci(LEVEL),
        w["n"],
        w["best_epoch"],
        w["params"],
        w["time"],
        w["selected"],
    ]
    rows = []
    for s in summaries:
        values = {**s.point, **s.nuisance}
        row = s.row()
        rows.append(
            [w.value(n, values[n]) for n in names]
            + [
                _mean_std(s.val_accuracies, w),
                _ci(s.val_accuracies, w),
                str(s.n),
                "–" if row["best_epoch"] is None else f"{row['best_epoch']:g}",
                "–" if row["params"] is None else f"{row['params']:,}",
                "–" if row["time_s"] is None else f"{row['time_s']:.0f}",
                "★" if selected is not None and s.key == selected.key else "",
            ]
        )  # summaries() makes new objects
    return Table(headers, rows)


def selected_line(result: StudyResult, w: Words) -> str:
    best = result.best()
    label = w.point({**best.point, **best.nuisance})
    if w.lang == "zh":
        return (
            f"选中的配置（按平均验证准确率）：{label}；其测试准确率 {_mean_std(best.test_accuracies, w)}"
            f"（{best.n} 个种子，95% 置信区间 {_ci(best.test_accuracies, w)}）。"
        )
    return (
        f"Selected configuration (by mean validation accuracy): {label}; its test accuracy is "
        f"{_mean_std(best.test_accuracies, w)} over {best.n} seed(s) (95% CI {_ci(best.test_accuracies, w)})."
    )


def failures_table(result: StudyResult, w: Words) -> Table | None:
    failed = [t for t in result.trials if t.state == "FAIL"]
    if not failed:
        return None
    return Table(
        [w["trial"], w["config"], "seed", "reason"],
        [[str(t.number), w.point({**t.point, **t.nuisance}), str(t.seed), t.fail_reason or "–"] for t in failed],
    )


def ablation_table(ablations: AblationResults, w: Words) -> Table:
    """The baseline, every compared variant (intervals at the verdict's Bonferroni-adjusted level, so one
    excludes 0 exactly when the verdict is significant), then the variants with no completed trial."""
    effects = ablations.effects
    level = effects[0].comparison.level if effects else LEVEL
    headers = [
        w["ablation"],
        w["val_acc"],
        w["n"],
        w["rel_change"],
        w.ci(level),
        w["diff"],
        w["p_seeds"],
        w["test_diff"],
        w["p_test"],
        w["verdict"],
    ]
    dashes = ["–"] * (len(headers) - 4)
    base = ablations.base
    rows = [[w.ablation("none"), w.pct(base.val_mean), str(base.n)] + ["–"] * (len(headers) - 3)] if base else []
    for e in effects:
        c, interval = e.comparison, e.relative_interval
        rows.append(
            [
                w.ablation(e.name),
                w.pct(c.a.val_mean),
                str(c.a.n),
                w.rel(e.relative),
                "–" if interval is None else f"[{w.rel(interval[0])}, {w.rel(interval[1])}]",
                w.pts(c.diff),
                w.p(c.over_seeds.p_used if c.over_seeds else None),
                w.pts(c.on_test.diff if c.on_test else None),
                w.p(c.on_test.p_used if c.on_test else None),
                w.verdict(c.verdict),
            ]
        )
    rows += [[w.ablation(name), "–", "0", *dashes, w["not_run"]] for name in ablations.missing]
    caption = w["ablation_ci"].format(level=w.level(level), k=len(effects)) if effects else None
    return Table(headers, rows, caption)


def per_class_table(best: BestRun, w: Words) -> Table:
    scores = best.scores()
    rows = [
        [
            w.class_name(name),
            f"{scores['precision'][i]:.3f}",
            f"{scores['recall'][i]:.3f}",
            f"{scores['f1'][i]:.3f}",
            str(scores["support"][i]),
        ]
        for i, name in enumerate(best.class_names)
    ]
    return Table([w["class"], w["precision"], w["recall"], w["f1"], w["support"]], rows)


def misclassified_table(best: BestRun, w: Words, limit: int = 6) -> Table | None:
    examples = best.misclassified(limit)
    if not examples:
        return None
    shorten = lambda text: text if len(text) <= 220 else text[:217] + "..."
    return Table(
        [w["text"], w["true"], w["predicted"]],
        [
            [shorten(text), w.class_name(best.class_names[y]), w.class_name(best.class_names[p])]
            for text, y, p in examples
        ],
    )


def head_table(summary: HeadSummary, w: Words) -> Table:
    relative = relative_entropy(summary)
    rows = [
        [
            str(layer + 1),
            str(head + 1),
            f"{summary.entropy[layer, head]:.3f}",
            f"{relative[layer, head]:.2f}",
            f"{summary.distance[layer, head]:.2f}",
        ]
        for layer in range(summary.entropy.shape[0])
        for head in range(summary.entropy.shape[1])
    ]
    return Table([w["layer"], w["head"], w["entropy"], w["entropy_rel"], w["distance"]], rows)


def data_table(info: dict, w: Words) -> Table:
    return Table(
        [w["file"], w["rows"], "md5", "sha256"],
        [[name, str(f["rows"]), f["md5"], f["sha256"]] for name, f in info["files"].items()],
    )
