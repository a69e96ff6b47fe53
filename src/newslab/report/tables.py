"""The report's tables, as rows of strings. Every number passes through i18n.Words' formats,
which print "–" for a missing value: a table never shows NaN.
"""

from __future__ import annotations

from ..study.results import StudyResult, Summary
from .attention import COMPARED_ABLATION, HeadSummary, mean_sd
from .bestmodel import BestRun
from .classical import Baselines
from .effects import Comparison, VariantResults, is_ablation_study, selected
from .i18n import Words
from .positional import EncodingComparison, where
from .pretraining import PretrainingAnalysis
from .pretraining_claims import variant_name
from .render import Table
from .scale import PERCENTILES, Lengths, ScaleAnalysis, best_lr
from .stats import LEVEL, TestResult, Untested, family_level, mean_interval


def _mean_std(values: list[float], w: Words) -> str:
    iv = mean_interval(values)
    if iv is None:
        return "–"
    return w.pct(iv.mean) + (f" ± {100 * iv.std:.2f}" if iv.std is not None else "")


def _ci(values: list[float], w: Words) -> str:
    iv = mean_interval(values, within=(0.0, 1.0))  # an accuracy's interval stays within 0-100%
    if iv is None or iv.low is None or iv.high is None:
        return "–"
    return f"[{100 * iv.low:.2f}, {100 * iv.high:.2f}]"


def results_table(result: StudyResult, w: Words, baselines: Baselines | None = None) -> Table:
    """Every configuration (point x nuisance) on the selection runs, best mean validation accuracy first;
    beside each chosen configuration its confirmation runs (fresh seeds, the chosen epoch). Test accuracy
    is shown for the selected configuration alone (a grid's pick; an ablation study selects nothing), from
    the runs that estimate it: every other cell reads "sealed". `baselines` (a grid's) adds the classical
    models below, marked as references: their choice of C used no Transformer run, so their test is shown."""
    summaries = sorted(result.summaries(), key=lambda s: -s.val_mean)
    ablation = is_ablation_study(result)
    pick = None if ablation else selected(result)
    confirmed = {s.key: s for s in result.confirmed()}
    names = [*result.spec.parameter_names("scientific"), *result.spec.parameter_names("nuisance")]
    headers = [w.param(n) for n in names] + [
        f"{w['selection_val']} ({w['mean_std']})",
        w["n_select"],
        f"{w['confirm_val']} ({w['mean']})",
        w.ci(LEVEL),
        w["n_confirm"],
        w["chosen_epoch"],
        w["test_acc"],
        w["params"],
        w["time"],
    ]
    if not ablation:
        headers.append(w["selected"])
    rows = []
    for s in summaries:  # summaries() makes new objects: configurations are matched by key
        values = {**s.point, **s.nuisance}
        row = s.row()
        confirmation = confirmed.get(s.key)
        chosen = pick is not None and s.key == pick.selection.key
        epoch = confirmation.trials[0].stop_epoch if confirmation else None
        shown = chosen and pick is not None and result.unseals_test
        test = _mean_std(pick.estimate.test_accuracies, w) if shown and pick is not None else w["sealed"]
        cells = [w.value(n, values[n]) for n in names] + [
            _mean_std(s.val_accuracies, w),
            str(s.n),
            "–" if confirmation is None else w.pct(confirmation.val_mean),
            "–" if confirmation is None else _ci(confirmation.val_accuracies, w),
            "0" if confirmation is None else str(confirmation.n),
            "–" if epoch is None else str(epoch),
            test,
            "–" if row["params"] is None else f"{row['params']:,}",
            "–" if row["time_s"] is None else f"{row['time_s']:.0f}",
        ]
        rows.append(cells if ablation else [*cells, "★" if chosen else ""])
    if baselines is None or ablation:
        return Table(headers, rows)
    for fit in baselines.fits:  # after the ranked configurations, never among them
        label = f"{w[fit.model]} (C={fit.C:g})"
        reference = [label, *[""] * (len(names) - 1), w.pct(fit.selection_accuracy), "–"]
        reference += [w.pct(fit.val_accuracy), "–", "–", "–", w.pct(fit.test_accuracy), "–", f"{fit.fit_s:.1f}"]
        rows.append([*reference, w["reference"]])
    return Table(headers, rows, w["classical_caption"])


def selected_line(result: StudyResult, w: Words) -> str:
    pick = selected(result)
    assert pick is not None, "the results section asks only for a study with completed trials"
    best, runs = pick.selection, pick.estimate
    label = w.point({**best.point, **best.nuisance})
    tests = runs.test_accuracies
    if not result.unseals_test:  # a comparison at another study's pick: its test accuracy stays sealed
        return w["selected_sealed"].format(label=label, base=result.spec.base_study)
    if w.lang == "zh":
        stage = "确认运行" if pick.confirmation else "选择运行（未经确认）"
        return (
            f"选中的配置（按选择运行的平均验证准确率）：{label}；其测试准确率（Transformer 中唯一未封存的）为 {_mean_std(tests, w)}"
            f"（{runs.n} 次{stage}，95% 置信区间 {_ci(tests, w)}）。"
        )
    stage = "confirmation run(s)" if pick.confirmation else "selection run(s), not confirmed"
    return (
        f"Selected configuration (by the selection runs' mean validation accuracy): {label}; its test accuracy, "
        f"the only Transformer's unsealed, is {_mean_std(tests, w)} over its {runs.n} {stage} (95% CI {_ci(tests, w)})."
    )


def failures_table(result: StudyResult, w: Words) -> Table | None:
    failed = [t for t in result.trials if t.state == "FAIL"]
    if not failed:
        return None
    return Table(
        [w["trial"], w["config"], w["seed"], w["fail_reason"]],
        [[str(t.number), w.point({**t.point, **t.nuisance}), str(t.seed), t.fail_reason or "–"] for t in failed],
    )


def ablation_table(ablations: VariantResults, w: Words) -> Table:
    """The baseline (the reference level), every compared variant on the confirmation runs (intervals at the
    verdict's Bonferroni-adjusted level, so one excludes 0 exactly when the verdict is significant), then the
    variants without a confirmation run. No variant is marked as chosen: the verdict says what differs."""
    effects, key = ablations.effects, ablations.key
    level = family_level(ablations.family)
    headers = [
        w.param(key),
        w["confirm_val"],
        w["n_confirm"],
        w["diff"],
        w.ci(level),
        w["rel_change"],
        w["rel_ci"].format(level=w.level(level)),
        w["p_adjusted"],
        w["detectable"],
        w["verdict"],
    ]
    base = ablations.base
    reference = w.value(key, ablations.reference)
    rows = [[reference, w.pct(base.val_mean), str(base.n)] + ["–"] * (len(headers) - 3)] if base else []
    for e in effects:
        c, relative = e.comparison, e.relative_interval
        test = c.test if isinstance(c.test, TestResult) else None
        rows.append(
            [
                w.value(key, e.name),
                w.pct(c.a.val_mean),
                str(c.a.n),
                w.pts(c.diff),
                "–" if test is None else w.bracket(test.low, test.high),
                w.rel(e.relative),
                "–" if relative is None else w.bracket(*relative, relative=True),
                w.p(test.p if test else None),
                "–" if test is None else w.pts(test.detectable, signed=False),
                f"{w.verdict('untested')}: {w.reason(c.test.reason)}"
                if isinstance(c.test, Untested)
                else w.verdict(c.verdict),
            ]
        )
    rows += [[w.value(key, name), "–", "0", *["–"] * (len(headers) - 4), w["not_run"]] for name in ablations.missing]
    k = ablations.family
    caption = w["ablation_ci"].format(level=w.level(level), k=k, reference=reference) if effects else None
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
    return Table([w["class"], w["class_precision"], w["recall"], w["f1"], w["support"]], rows)


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


def head_table(summary: HeadSummary, w: Words, compared: HeadSummary | None = None) -> Table:
    """Per head: its kind, self share, entropy and distance / uniform attention's as mean ± sd over the rows,
    the raw means; and, given `compared` (the COMPARED_ABLATION model, same layers and heads), its kind and
    measures."""
    measures = ("self_share", "entropy_rel", "distance_rel")

    def cells(s: HeadSummary) -> list[list[str]]:  # one per head, layer by layer: kind, then `measures`
        spread = lambda m, sd: [f"{a:.2f} ± {b:.2f}" for a, b in zip(m.flatten().tolist(), sd.flatten().tolist())]
        columns = [spread(*mean_sd(v)) for v in (s.self_share, s.entropy_ratio, s.distance_ratio)]
        kinds = [w[f"kind_{kind}"] for row in s.kinds() for kind in row]
        return [list(head) for head in zip(kinds, *columns)]

    layers, heads = summary.shape
    headers = [w["layer"], w["head"], w["head_kind"], *(w[key] for key in measures), w["entropy"], w["distance"]]
    raw = zip(summary.entropy.mean(0).flatten().tolist(), summary.distance.mean(0).flatten().tolist())
    rows = [
        [str(i // heads + 1), str(i % heads + 1), *mine, f"{entropy:.2f}", f"{distance:.2f}"]
        for i, (mine, (entropy, distance)) in enumerate(zip(cells(summary), raw))
    ]
    if compared is not None and compared.shape == (layers, heads):
        name = w.ablation(COMPARED_ABLATION)
        headers += [f"{w[key]} ({name})" for key in ("head_kind", *measures)]
        rows = [row + theirs for row, theirs in zip(rows, cells(compared))]
    return Table(headers, rows)


def encoding_heads_table(comparison: EncodingComparison, w: Words) -> Table:
    """Per encoding: where it puts position, its heads' mean self share, entropy and distance over uniform
    attention's (means over the heads of each head's mean over the rows) and how many heads are of each kind."""
    headers = [w.param("pos_encoding"), w["encoding_where"], w["self_share"], w["entropy_rel"], w["distance_rel"]]
    headers.append(w["head_kinds"])
    rows = []
    for model in comparison.heads:
        first = [w.value("pos_encoding", model.name), w[f"where_{where(model.name)}"]]
        if model.heads is None:
            rows.append(first + ["–", "–", "–", w.say(model.note) if model.note else "–"])
            continue
        means = model.means()
        kinds = w.comma.join(f"{w[f'kind_{kind}']} {k}" for kind, k in model.kind_counts().items())
        rows.append(first + [f"{means[key]:.2f}" for key in ("self_share", "entropy_rel", "distance_rel")] + [kinds])
    n = next((m.heads.samples for m in comparison.heads if m.heads is not None), None)
    return Table(headers, rows, w["encoding_heads_table"].format(n=n) if n else None)


def _comparison_cells(confirmation: Summary | None, c: Comparison | None, is_reference: bool, w: Words) -> list[str]:
    """A chapter table's middle cells: the confirmation runs' accuracy and count, the difference from the reference
    with its interval, and the verdict ("reference", "not confirmed", or why it was not tested)."""
    test = c.test if c is not None and isinstance(c.test, TestResult) else None
    if c is None:
        verdict = w["reference"] if is_reference else w["not_run"]
    elif isinstance(c.test, Untested):
        verdict = f"{w.verdict('untested')}: {w.reason(c.test.reason)}"
    else:
        verdict = w.verdict(c.verdict)
    return [
        w.pct(confirmation.val_mean) if confirmation else "–",
        str(confirmation.n) if confirmation else "0",
        w.pts(c.diff) if c is not None else "–",
        w.bracket(test.low, test.high) if test else "–",
        verdict,
    ]


def scale_table(analysis: ScaleAnalysis, w: Words) -> Table:
    """Every (max_len, batch size) point: its best lr (on the grid and interpolated), the confirmation runs'
    accuracy, the difference from the reference with its Bonferroni-adjusted interval and verdict, and the
    time a run took."""
    level = family_level(max(1, analysis.family))
    headers = [w.param("max_len"), w.param("batch_size"), w["lr_grid"], w["lr_interpolated"], w["confirm_val"]]
    headers += [w["n_confirm"], w["diff"], w.ci(level), w["verdict"], w["seconds_per_run"]]
    rows = []
    for p in analysis.points:
        best = best_lr(analysis.study, p.selection.point)
        grid_lr = w.value("lr", p.selection.nuisance.get("lr"))
        is_reference = (p.max_len, p.batch_size) == analysis.reference
        rows.append(
            [
                str(p.max_len),
                str(p.batch_size),
                grid_lr,
                "–" if best is None else f"{best[0]:.2g}" + ("" if best[1] else f" ({w['at_edge']})"),
                *_comparison_cells(p.confirmation, p.comparison, is_reference, w),
                "–" if p.seconds is None else f"{p.seconds:.1f}",
            ]
        )
    rows += [[str(a), str(b), *["–"] * 6, w["not_run"], "–"] for a, b in analysis.missing]
    caption = w["scale_ci"].format(level=w.level(level), k=analysis.family) if analysis.family else None
    return Table(headers, rows, caption)


def lengths_table(lengths: Lengths, max_lens: list[int], w: Words) -> Table:
    """The training rows' token counts at PERCENTILES, and what each max_len studied truncates."""
    headers = [w["longest"] if q == 100 else f"p{q}" for q in PERCENTILES]
    rows = [[str(lengths.percentile(q)) for q in PERCENTILES]]
    cuts = [
        f"{w.param('max_len')} {n}{w.colon}{w.pct(lengths.rows_cut(n), 1)} {w['rows_cut']}{w.comma}"
        f"{w.pct(lengths.tokens_cut(n), 1)} {w['tokens_cut']}"
        for n in sorted(set(max_lens))
    ]
    caption = w["lengths_caption"].format(n=len(lengths.counts)) + " " + w.semicolon.join(cuts)
    return Table(headers, rows, caption)


def pretraining_table(analysis: PretrainingAnalysis, w: Words) -> Table:
    """Every initialisation: the confirmation runs' accuracy, the difference from training from scratch with its
    Bonferroni-adjusted interval and verdict, the fine-tuning time of a run and the pretraining time of an encoder."""
    level = family_level(max(1, analysis.family))
    headers = [w["initialisation"], w["chosen_lr"], w["confirm_val"], w["n_confirm"], w["diff"], w.ci(level)]
    headers += [w["verdict"], w["finetune_seconds"], w["pretrain_seconds"]]
    rows = []
    for i, v in enumerate(analysis.variants):
        pretraining = v.pretraining_seconds
        rows.append(
            [
                variant_name(v, w),
                w.value("lr", v.selection.nuisance.get("lr")),
                *_comparison_cells(v.confirmation, v.comparison, i == 0 and not v.pretrained, w),
                "–" if v.seconds is None else f"{v.seconds:.1f}",
                "–" if pretraining is None else f"{pretraining:.0f} × {len(v.encoders)}",
            ]
        )
    caption = w["pretraining_ci"].format(level=w.level(level), k=analysis.family) if analysis.family else None
    return Table(headers, rows, caption)


def data_table(info: dict, w: Words) -> Table:
    return Table(
        [w["file"], w["rows"], "md5", "sha256"],
        [[name, str(f["rows"]), f["md5"], f["sha256"]] for name, f in info["files"].items()],
    )
