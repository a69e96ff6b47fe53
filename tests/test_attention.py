"""Attention analysis: per-head statistics against uniform attention (properties over lengths, batch sizes
and padding), the head kinds, choosing the sample and its flag errors, the no_pe comparison, the conclusions'
attention paragraph and the attention figures."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import make_data_dir
from newslab.cli import main
from newslab.config import RunConfig
from newslab.data import EncodedSplit
from newslab.errors import NewslabError
from newslab.manual import manual_plan
from newslab.model import TextClassifier
from newslab.report.attention import (
    BROAD_ENTROPY,
    FOCUSED_ENTROPY,
    HEAD_KINDS,
    POSITIONAL_DISTANCE,
    SELF_SHARE,
    AttentionAnalysis,
    HeadSummary,
    SampleAttention,
    SampleChoice,
    SampleChoiceError,
    analyse_run,
    choose_sample,
    head_kind,
    head_summary,
    mean_sd,
    row_statistics,
)
from newslab.report.conclusions import conclusions
from newslab.report.i18n import Reason, Words
from newslab.report.plots import FigureFile, Plotter
from newslab.report.tables import head_table
from newslab.train import train

lengths_st = st.lists(st.integers(1, 24), min_size=1, max_size=6)
FAST = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
FIELDS = ("entropy", "distance", "self_share", "uniform_entropy", "uniform_distance", "uniform_self")


def batch(rows: list[torch.Tensor], extra: int = 0, junk: float = 0.3) -> tuple[list[torch.Tensor], torch.Tensor]:
    """Rows of (heads, L, L) attention in one padded batch (B, heads, T, T) of width max L + `extra`: padded
    keys hold 0 (as after the model's masked softmax), padded queries hold `junk` (they must be ignored)."""
    width = max(r.shape[-1] for r in rows) + extra
    lengths = torch.tensor([r.shape[-1] for r in rows])
    weights = torch.full((len(rows), rows[0].shape[0], width, width), junk)
    for b, r in enumerate(rows):
        length = r.shape[-1]
        weights[b, :, :length, :] = 0.0
        weights[b, :, :length, :length] = r
    return [weights], torch.arange(width)[None, :] >= lengths[:, None]


def summary_of(rows: list[torch.Tensor], extra: int = 0) -> HeadSummary:
    return HeadSummary(*row_statistics(*batch(rows, extra)), unknown_share=0.0)


def uniform(heads: int, length: int) -> torch.Tensor:
    return torch.full((heads, length, length), 1.0 / length)


def band(length: int) -> torch.Tensor:
    """(L, L): each query on its neighbours i − 1 and i + 1, half each (all on the one neighbour at an end)."""
    near = torch.diag(torch.ones(length - 1), 1) + torch.diag(torch.ones(length - 1), -1)
    return near / near.sum(-1, keepdim=True)


# ------------------------------------------------------------------ the statistics
@FAST
@given(lengths=lengths_st, heads=st.integers(1, 3), extra=st.integers(0, 5))
def test_uniform_attention_reads_one_against_uniform(lengths: list[int], heads: int, extra: int) -> None:
    summary = summary_of([uniform(heads, n) for n in lengths], extra)
    L = torch.tensor(lengths, dtype=torch.float)
    torch.testing.assert_close(summary.uniform_entropy, L.log())
    torch.testing.assert_close(summary.uniform_self, 1 / L)
    # the docstring's closed form: the mean |i − j| over the L (L − 1) pairs i ≠ j; one token has no other
    torch.testing.assert_close(summary.uniform_distance, torch.where(L >= 2, (L + 1) / 3, 0.0))
    longer = L >= 2  # one token: uniform's entropy and distance are 0 and the ratio is undefined
    ones = torch.ones(int(longer.sum()), 1, heads)
    torch.testing.assert_close(summary.entropy_ratio[longer], ones)
    torch.testing.assert_close(summary.distance_ratio[longer], ones)
    torch.testing.assert_close(summary.self_share, (1 / L)[:, None, None].expand(-1, 1, heads))


@given(length=st.integers(2, 40))
def test_the_uniform_distance_is_the_mean_gap_over_pairs_of_different_tokens(length: int) -> None:
    pairs = [abs(i - j) for i in range(length) for j in range(length) if i != j]
    summary = summary_of([uniform(1, length)])
    assert (
        float(summary.uniform_distance[0]) == pytest.approx(sum(pairs) / len(pairs)) == pytest.approx((length + 1) / 3)
    )


@FAST
@given(lengths=st.lists(st.integers(2, 24), min_size=1, max_size=6), heads=st.integers(1, 3), extra=st.integers(0, 5))
def test_pure_diagonal_attention_is_self_not_positional(lengths: list[int], heads: int, extra: int) -> None:
    """All weight on the query's own token: self share 1, entropy 0, and no preference among the other tokens
    (distance / uniform 1), so nearness is not claimed for what content alone can do."""
    summary = summary_of([torch.eye(n).expand(heads, n, n) for n in lengths], extra)
    assert torch.equal(summary.self_share, torch.ones(len(lengths), 1, heads))
    assert torch.equal(summary.entropy, torch.zeros(len(lengths), 1, heads))
    torch.testing.assert_close(summary.distance_ratio, torch.ones(len(lengths), 1, heads))
    assert summary.kinds() == [["self"] * heads]


@FAST
@given(
    lengths=st.lists(st.integers(5, 24), min_size=1, max_size=6), on_self=st.floats(0.0, 0.45), extra=st.integers(0, 5)
)
def test_banded_off_diagonal_attention_is_positional(lengths: list[int], on_self: float, extra: int) -> None:
    """Each query on its neighbours: distance 1 token, 3 / (L + 1) of uniform's, whatever share (≤ SELF_SHARE)
    the query keeps on itself: the distance is over the other tokens only."""
    rows = [(on_self * torch.eye(n) + (1 - on_self) * band(n))[None] for n in lengths]
    summary = summary_of(rows, extra)
    L = torch.tensor(lengths, dtype=torch.float)
    torch.testing.assert_close(summary.distance, torch.ones(len(lengths), 1, 1))
    torch.testing.assert_close(summary.distance_ratio[:, 0, 0], 3 / (L + 1))
    torch.testing.assert_close(summary.self_share[:, 0, 0], torch.full((len(lengths),), on_self))
    assert summary.kinds() == [["positional"]]


@FAST
@given(lengths=lengths_st, heads=st.integers(1, 3), extra=st.integers(0, 5), seed=st.integers(0, 2**16))
def test_padding_does_not_change_a_rows_statistics(lengths: list[int], heads: int, extra: int, seed: int) -> None:
    generator = torch.Generator().manual_seed(seed)
    rows = [torch.randn(heads, n, n, generator=generator).softmax(-1) for n in lengths]
    together = summary_of(rows, extra)
    for b, row in enumerate(rows):
        alone = summary_of([row])
        for field in FIELDS:
            torch.testing.assert_close(getattr(together, field)[b], getattr(alone, field)[0])


def tiny_model(seed: int = 0) -> TextClassifier:
    config = RunConfig.create({"embed_dim": 16, "num_heads": 2, "num_layers": 2, "max_len": 32})
    torch.manual_seed(seed)
    return TextClassifier.from_config(config.model, 40, 4)


def tiny_split(lengths: list[int], seed: int = 0) -> EncodedSplit:
    generator = torch.Generator().manual_seed(seed)
    ids = torch.randint(2, 40, (sum(lengths),), generator=generator, dtype=torch.int32)
    offsets = torch.zeros(len(lengths) + 1, dtype=torch.int64)
    torch.cumsum(torch.tensor(lengths), 0, out=offsets[1:])
    labels = torch.arange(len(lengths)) % 4
    return EncodedSplit(ids, offsets, labels, [f"row {i}" for i in range(len(lengths))])


@settings(max_examples=4, deadline=None)
@given(lengths=st.lists(st.integers(1, 32), max_size=8), longer=st.integers(2, 32), batch_size=st.integers(1, 8))
def test_a_models_head_summary_does_not_depend_on_batching(lengths: list[int], longer: int, batch_size: int) -> None:
    """Padded batches of any size give each row's statistics as that row run alone (the model masks padding)."""
    lengths = [*lengths, longer]
    model, split = tiny_model(), tiny_split(lengths)
    batched, alone = head_summary(model, split, 32, batch_size=batch_size), head_summary(model, split, 32, batch_size=1)
    assert batched.samples == sum(1 for n in lengths if n >= 2)  # rows of one token have nothing to choose
    for field in FIELDS:
        torch.testing.assert_close(getattr(batched, field), getattr(alone, field), atol=1e-5, rtol=1e-5)
    assert (batched.entropy_ratio <= 1 + 1e-5).all() and (batched.distance >= 0).all()


def test_rows_of_one_token_are_left_out_and_none_left_is_an_error() -> None:
    with pytest.raises(NewslabError, match="no validation row has 2 tokens or more"):
        head_summary(tiny_model(), tiny_split([1, 1]), 32)


def test_the_unknown_share_counts_real_tokens_only() -> None:
    split = tiny_split([4, 6])
    split.ids[:2] = 1  # two [UNK] (id 1) in the first row; padding (id 0) is never counted
    assert head_summary(tiny_model(), split, 32).unknown_share == pytest.approx(2 / 10)


# ------------------------------------------------------------------ head kinds
def test_head_kinds_follow_the_documented_thresholds() -> None:
    assert head_kind(0.1, 0.1, SELF_SHARE + 0.01) == "self"  # self is checked first, then position
    assert head_kind(0.95, POSITIONAL_DISTANCE, SELF_SHARE) == "positional"
    assert head_kind(0.95, POSITIONAL_DISTANCE + 0.01, 0.1) == "broad"
    assert head_kind(BROAD_ENTROPY, 1.0, 0.1) == "broad"
    assert head_kind(FOCUSED_ENTROPY, 1.0, 0.1) == "focused"
    assert head_kind(FOCUSED_ENTROPY + 0.01, 1.0, 0.1) == head_kind(BROAD_ENTROPY - 0.01, 1.0, 0.1) == "mixed"


def test_kinds_of_recognisable_heads() -> None:
    """Five heads over rows of 16 tokens: the diagonal, the neighbours, uniform, all on the first token, and
    half the first token and half uniform."""
    n = 16
    first = torch.zeros(n, n)
    first[:, 0] = 1.0
    heads = torch.stack([torch.eye(n), band(n), uniform(1, n)[0], first, 0.5 * first + 0.5 * uniform(1, n)[0]])
    summary = summary_of([heads, heads])
    assert summary.kinds() == [list(HEAD_KINDS)]
    mean, sd = mean_sd(summary.entropy_ratio)
    assert mean.shape == (1, 5) and torch.equal(sd, torch.zeros(1, 5))  # two identical rows: no spread


# ------------------------------------------------------------------ choosing the sample
def test_a_sample_choice_names_its_flag() -> None:
    with pytest.raises(SampleChoiceError, match="--attention-sample and --attention-class exclude each other"):
        SampleChoice(3, "World")
    with pytest.raises(SampleChoiceError, match="--attention-sample -1 is not a validation row"):
        SampleChoice(-1)
    assert SampleChoice(7).flags() == " --attention-sample 7"
    assert SampleChoice(class_name="Sci/Tech").flags() == " --attention-class Sci/Tech"
    assert SampleChoice().flags() == ""


def test_choose_sample_by_index_and_class_and_its_errors() -> None:
    names = ["World", "Sports", "Business", "Sci/Tech"]
    split, model = tiny_split([14, 5, 20, 16, 13, 30, 18]), tiny_model()
    assert choose_sample(split, names, 32, model, SampleChoice(6)) == 6
    with pytest.raises(SampleChoiceError, match=r"--attention-sample 7 is not a validation row: choose 0\.\.6"):
        choose_sample(split, names, 32, model, SampleChoice(7))
    for name in ("Business", "business"):  # labels are row % 4: rows 2 and 6; both of a readable length
        assert choose_sample(split, names, 32, model, SampleChoice(class_name=name)) in (2, 6)
    with pytest.raises(SampleChoiceError, match=r"'Politics' is not a class: choose one of World \| Sports"):
        choose_sample(split, names, 32, model, SampleChoice(class_name="Politics"))
    with pytest.raises(SampleChoiceError, match="'Sci/Tech': the validation split has no row of this class"):
        choose_sample(tiny_split([14, 15, 16]), names, 32, model, SampleChoice(class_name="Sci/Tech"))


def test_cli_attention_flag_errors_are_one_line(capsys, tmp_path: Path) -> None:
    assert main(["report", "any", "--out-dir", str(tmp_path), "--attention-sample", "-2"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["newslab: error: --attention-sample -2 is not a validation row: rows are numbered from 0"]
    for command in (["report", "any"], ["manual"]):
        with pytest.raises(SystemExit) as exit:
            main([*command, "--attention-sample", "1", "--attention-class", "World"])
        assert exit.value.code == 2
        assert "--attention-class: not allowed with argument --attention-sample" in capsys.readouterr().err


def test_the_manual_plan_carries_the_choice_into_its_command(tmp_path: Path) -> None:
    plan = manual_plan("quick", out_dir=tmp_path, sample=SampleChoice(class_name="Sports"))
    assert plan.sample == SampleChoice(class_name="Sports") and plan.command.endswith("--attention-class Sports")
    assert manual_plan("quick", out_dir=tmp_path).sample == SampleChoice()


# ------------------------------------------------------------------ a trained run
@pytest.fixture(scope="module")
def run_dir(tmp_path_factory) -> tuple[Path, Path]:
    """One trained 2-layer run on generated data (a few seconds) and its data folder."""
    root = tmp_path_factory.mktemp("attention")
    data = make_data_dir(root / "data")
    config = RunConfig.create(
        epochs=2, batch_size=16, lr=3e-3, embed_dim=16, num_heads=2, num_layers=2, vocab_size=200, min_freq=1,
        val_fraction=0.2, data_dir=str(data), out_dir=str(root / "out"), threads=1, warmup=0.0,
    )  # fmt: skip
    return train(config, log=None, progress=False).run_dir, data


def test_analyse_run_chooses_the_row_its_flag_names(run_dir) -> None:
    run, data = run_dir
    by_class = analyse_run(run, data, samples=64, choice=SampleChoice(class_name="sports"))
    assert by_class.class_names[by_class.sample.label] == "Sports" and by_class.choice.class_name == "sports"
    assert analyse_run(run, data, samples=8, choice=SampleChoice(5)).sample.index == 5
    with pytest.raises(SampleChoiceError, match=r"--attention-sample 100000 is not a validation row: choose 0\.\.\d+"):
        analyse_run(run, data, choice=SampleChoice(100_000))


def test_the_compared_model_is_summarised_on_the_same_rows(run_dir) -> None:
    run, data = run_dir
    analysis = analyse_run(run, data, samples=32, compared_run=run)  # the run against itself: equal statistics
    assert analysis.same_rows and analysis.compared is not None and analysis.compared_note is None
    torch.testing.assert_close(analysis.compared.entropy, analysis.heads.entropy)
    assert analysis.heads.samples == 32 and 0 <= analysis.heads.unknown_share < 1
    missing = analyse_run(run, data, samples=8, compared_run=run.parent / "not-a-run")
    assert missing.compared is None and "not-a-run" in (missing.compared_note or "")


# ------------------------------------------------------------------ conclusions and figures
def made_up(ratios: list[list[tuple[float, float, float]]], rows: int = 256, length: int = 20) -> HeadSummary:
    """A summary whose heads have these (entropy / uniform, distance / uniform, self share) on every row."""
    ratio = torch.tensor(ratios).expand(rows, -1, -1, -1)  # (rows, layers, heads, 3)
    ue, ud = math.log(length), (length + 1) / 3
    uniform = [torch.full((rows,), u) for u in (ue, ud, 1 / length)]
    return HeadSummary(ratio[..., 0] * ue, ratio[..., 1] * ud, ratio[..., 2], *uniform, unknown_share=0.05)


SELECTED = [[(0.95, 0.3, 0.1), (0.95, 1.0, 0.05)], [(0.3, 1.1, 0.6), (0.7, 1.0, 0.1)]]  # positional, broad/self, mixed
NO_PE = [[(0.96, 1.0, 0.05), (0.97, 1.01, 0.05)], [(0.95, 0.99, 0.05), (0.94, 1.0, 0.05)]]


def analysis(compared: HeadSummary | None = None, note: str | None = None) -> AttentionAnalysis:
    sample = SampleAttention(0, "a b", ["a", "b"], 0, 0, [torch.full((2, 2, 2), 0.5)] * 2)
    return AttentionAnalysis(Path("run"), ["World", "Sports"], sample, made_up(SELECTED), compared=compared,
                             compared_note=note)  # fmt: skip


def attention_text(lang: str, made: AttentionAnalysis) -> str:
    claims = [c for c in conclusions([], lang, attention=made) if c.topic == "attention"]
    assert len(claims) == 1
    return claims[0].text


def test_the_attention_paragraph_names_heads_and_the_no_pe_change() -> None:
    with_pe, name, name_zh = (
        attention_text("en", analysis(made_up(NO_PE))),
        Words("en").ablation("no_pe"),
        Words("zh").ablation("no_pe"),
    )
    assert "over 256 validation rows of one model" in with_pe and "not a test" in with_pe
    assert "Self heads (self share > 0.5): L2H1 (0.60, 0.30, 1.10)" in with_pe
    assert "Positional heads (distance / uniform ≤ 0.6): L1H1 (0.10, 0.95, 0.30)" in with_pe
    assert "Broad heads" in with_pe and "L1H2 (0.05, 0.95, 1.00)" in with_pe
    assert "No head is focused (entropy / uniform ≤ 0.5)" in with_pe
    assert "The other 1 are mixed" in with_pe and "from 0.30 (L2H1) to 0.95" in with_pe
    assert f"The ablation variant {name} (on the same 256 validation rows)" in with_pe
    counts = (
        "heads 0 self, 0 positional, 4 broad, 0 focused, 0 mixed (the selected model: 1 self, 1 positional, 1 broad"
    )
    assert counts in with_pe and "closer to uniform attention's" in with_pe and "no_pe" not in with_pe
    zh = attention_text("zh", analysis(made_up(NO_PE)))
    assert "256 个验证样本" in zh and "位置型头（" in zh and "自身型头（" in zh and "更接近" in zh
    assert f"消融变体“{name_zh}”" in zh and "头的类型为自身型 0 个" in zh and "no_pe" not in zh
    absent = attention_text("en", analysis())
    assert f"No ablation study in this report has the variant {name}" in absent
    assert "The ablation variant" not in absent
    note = Reason("compared_unreadable", run="run-x", why="gone")
    assert "could not be analysed: its run run-x gave an error: gone" in attention_text("en", analysis(note=note))
    zh_note = attention_text("zh", analysis(note=note))
    assert "其运行 run-x 出错" in zh_note and "gone" not in zh_note  # the English cause stays out of Chinese
    assert not [c for c in conclusions([], "en") if c.topic == "attention"]


def test_the_head_table_sets_the_no_pe_model_beside() -> None:
    table = head_table(made_up(SELECTED), Words("en"), made_up(NO_PE))
    assert len(table.rows) == 4 and len(table.headers) == 12 and "self share" in table.headers
    assert table.rows[0][:6] == ["1", "1", "positional", "0.10 ± 0.00", "0.95 ± 0.00", "0.30 ± 0.00"]
    assert table.rows[0][8:] == ["broad", "0.05 ± 0.00", "0.96 ± 0.00", "1.00 ± 0.00"]
    assert (
        table.rows[2][2:4] == ["self", "0.60 ± 0.00"] and table.headers[8] == f"kind ({Words('en').ablation('no_pe')})"
    )


def drawn(figure: FigureFile) -> list:
    assert figure.png.is_file() and figure.figure is not None
    return figure.figure.axes


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_the_head_figure_is_read_against_uniform(tmp_path: Path, lang: str) -> None:
    plotter = Plotter(tmp_path, lang)
    w = Words(plotter.lang)
    heads = plotter.draw(plotter.head_summary, [("selected", made_up(SELECTED)), ("no_pe", made_up(NO_PE))])
    assert len(drawn(heads)) == 5  # four panels, one shared colour bar
    assert drawn(heads)[-1].get_ylabel() == w["ratio_uniform"]
    assert "0.95\n±0.00" in {t.get_text() for t in drawn(heads)[0].texts}


def test_attention_maps_have_a_colour_bar_labels_and_tokens(tmp_path: Path) -> None:
    plotter, w = Plotter(tmp_path), Words("en")
    tokens = [f"t{i}" for i in range(6)]
    weights = [torch.rand(3, 6, 6).softmax(-1).numpy() for _ in range(2)]  # 2 layers x 3 heads
    grid = plotter.draw(plotter.attention_grid, tokens, weights)
    panels = drawn(grid)[:-1]
    assert len(panels) == 6 and drawn(grid)[-1].get_ylabel() == w["attention_weight_sqrt"]
    labels = lambda ax, axis: [t.get_text() for t in getattr(ax, f"get_{axis}ticklabels")()]
    # heads run down (3 rows x 2 layer columns): queries label the left column, keys the top and bottom rows
    assert labels(panels[0], "y") == tokens and not any(labels(panels[1], "y"))
    assert labels(panels[4], "x") == tokens and not any(labels(panels[2], "x"))
    one = plotter.draw(plotter.attention_head, tokens, weights[0][0], 0, 0)
    assert drawn(one)[-1].get_ylabel() == w["attention_weight"] and drawn(one)[0].get_xlabel() == w["key"]


@given(length=st.integers(1, 128), inches=st.floats(1.5, 7.0))
def test_token_labels_never_overlap(length: int, inches: float) -> None:
    """Every label gets at least 6 pt of the side, in a font of 5..9 pt; past that, every k-th token."""
    tokens = [f"t{i}" for i in range(length)]
    ticks, labels, size = Plotter._token_ticks(tokens, inches)
    assert len(ticks) == len(labels) and labels[0] == "t0" and 5.0 <= size <= 9.0
    assert 72 * inches / len(labels) >= min(6.0, 72 * inches / length) and size <= 72 * inches / len(labels)
    assert len(labels) == length or 72 * inches / length < 6.0
