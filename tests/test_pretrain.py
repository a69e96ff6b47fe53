"""Masked-language-model pretraining (newslab/pretrain.py) and fine-tuning from it (--init-from): what the
encoder sees (never a validation or test text), BERT's corruption, resuming a killed pretraining to the same
weights, the cache of --init-from pretrain, and the fine-tuning modes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from safetensors.torch import load_file
from torch.testing import assert_close

from conftest import load
from newslab.cli import main
from newslab.config import ConfigError, NewslabError, PretrainConfig, RunConfig
from newslab.data import split_rows
from newslab.model import TextClassifier
from newslab.pretrain import corrupt, load_encoder, pretrain, pretrained_encoder, pretraining_texts
from newslab.train import layer_depths, make_optimizer, set_finetuning, train

SETTINGS = PretrainConfig(epochs=2, batch_size=16)


def test_pretraining_never_sees_a_validation_or_test_text(tiny_config: RunConfig, tmp_path: Path) -> None:
    parts = split_rows(tiny_config.data.resolved_dir, tiny_config.data)
    extra = tmp_path / "extra.txt"  # unlabelled text that repeats two sealed texts among new ones
    extra.write_text(f"a new headline\n{parts.val.texts[0]}\n\n{parts.test.texts[3]}\nanother one\n")
    texts, counts = pretraining_texts(tiny_config, PretrainConfig(text_files=(str(extra),)))
    assert not set(texts) & (set(parts.val.texts) | set(parts.test.texts))
    assert set(parts.train.texts) <= set(texts) and {"a new headline", "another one"} <= set(texts)
    assert counts == {"training_rows": len(parts.train.texts), "extra_lines": 2, "dropped_validation_or_test": 2}
    # and the confirmation runs' split (split seed + 1) gets an encoder of its own: its training texts
    other = tiny_config.replace(split_seed=1)
    assert not set(pretraining_texts(other, PretrainConfig())[0]) & set(
        split_rows(other.data.resolved_dir, other.data).val.texts
    )


@settings(max_examples=60, deadline=None)
@given(
    lengths=st.lists(st.integers(0, 12), min_size=1, max_size=6).filter(any),
    prob=st.floats(0.05, 0.9),
    seed=st.integers(0, 2**16),
)
def test_bert_corruption(lengths: list[int], prob: float, seed: int) -> None:
    width = max(lengths)
    ids = torch.randint(2, 50, (len(lengths), width))
    pad = torch.arange(width)[None, :] >= torch.tensor(lengths)[:, None]
    ids = ids.masked_fill(pad, 0)
    inputs, masked, chosen = corrupt(ids, pad, prob, 50, torch.Generator().manual_seed(seed))
    assert chosen.any() and not (chosen & pad).any() and not (masked & ~chosen).any()
    assert torch.equal(inputs[~chosen], ids[~chosen])  # only chosen tokens change
    assert (inputs[chosen & ~masked] >= 2).all()  # a replacement is a word, never [PAD] or [UNK]


def test_bert_corruption_proportions() -> None:
    ids = torch.randint(2, 1000, (200, 100))
    pad = torch.zeros_like(ids, dtype=torch.bool)
    inputs, masked, chosen = corrupt(ids, pad, 0.15, 1000, torch.Generator().manual_seed(0))
    assert chosen.float().mean() == pytest.approx(0.15, abs=0.01)
    assert masked.sum() / chosen.sum() == pytest.approx(0.8, abs=0.02)
    assert (inputs[chosen & ~masked] != ids[chosen & ~masked]).float().mean() == pytest.approx(0.5, abs=0.05)


def test_a_killed_pretraining_resumes_to_the_same_encoder(tiny_config: RunConfig, tmp_path: Path) -> None:
    whole = pretrain(tiny_config, PretrainConfig(epochs=3, batch_size=16), tmp_path / "whole", log=None)

    class Killed(Exception):
        pass

    def kill_after_two(line: str) -> None:
        if line.startswith("pretrain epoch 2/3"):
            raise Killed  # as if the process died once epoch 2 was saved

    with pytest.raises(Killed):
        pretrain(tiny_config, PretrainConfig(epochs=3, batch_size=16), tmp_path / "cut", log=kill_after_two)
    assert json.loads((tmp_path / "cut" / "final.json").read_text())["status"] == "running"
    lines: list[str] = []
    resumed = pretrain(tiny_config, PretrainConfig(epochs=3, batch_size=16), tmp_path / "cut", log=lines.append)
    assert lines[0].startswith("pretrain: resuming") and "after epoch 2" in lines[0]
    assert sum(line.startswith("pretrain epoch") for line in lines) == 1  # epoch 3 only
    a, b = load_file(whole / "encoder.safetensors"), load_file(resumed / "encoder.safetensors")
    assert a.keys() == b.keys() and not any(k.startswith("head.") for k in a)
    for key in a:
        assert_close(a[key], b[key], msg=key)
    assert not (resumed / "resume.safetensors").exists()  # a completed folder keeps no resume state
    with pytest.raises(ConfigError, match="holds a pretraining with other settings"):  # resuming it otherwise
        pretrain(tiny_config, PretrainConfig(epochs=4, batch_size=16), tmp_path / "cut", log=None)
    info = json.loads((resumed / "encoder.json").read_text())
    assert info["texts"]["used"] == info["texts"]["training_rows"] and info["model"]["embed_dim"] == 16


def test_fine_tuning_starts_from_the_encoder_and_encodes_with_its_tokenizer(
    tiny_config: RunConfig, tmp_path: Path
) -> None:
    folder = pretrain(tiny_config, SETTINGS, tmp_path / "enc", log=None)
    config = tiny_config.replace(init_from=str(folder), epochs=1)
    result = train(config, log=None)
    recorded = json.loads((Path(result.run_dir) / "config.json").read_text())
    assert recorded["optim"]["init_from"] == str(folder.resolve())
    assert recorded["data"]["tokenizer_file"] == str((folder / "tokenizer.json").resolve())
    assert (Path(result.run_dir) / "tokenizer.json").read_text() == (folder / "tokenizer.json").read_text()
    model = TextClassifier.from_config(config.model, load(config).vocab_size, 4)
    load_encoder(model, folder, config.model)
    weights = load_file(folder / "encoder.safetensors")
    assert_close(model.tok_emb.weight.detach(), weights["tok_emb.weight"])
    assert_close(model.blocks[0].attn.qkv.weight.detach(), weights["blocks.0.attn.qkv.weight"])


def test_an_encoder_of_another_architecture_or_no_encoder_is_refused(tiny_config: RunConfig, tmp_path: Path) -> None:
    folder = pretrain(tiny_config, SETTINGS, tmp_path / "enc", log=None)
    with pytest.raises(ConfigError, match=r"--init-from .*enc: the encoder has embed_dim 16, this run 32"):
        train(tiny_config.replace(init_from=str(folder), embed_dim=32), log=None)
    with pytest.raises(ConfigError, match="--init-from .*: not a pretrained encoder"):
        train(tiny_config.replace(init_from=str(tmp_path)), log=None)
    # an encoder of another split has seen this split's validation rows (and its tokenizer was trained on them)
    with pytest.raises(ConfigError, match=r"pretrained with other data settings: split_seed 0 \(this run 1\)"):
        train(tiny_config.replace(init_from=str(folder), split_seed=1), log=None)
    assert main(["train", "--finetune", "frozen"]) == 2  # needs --init-from


def test_init_from_pretrain_pretrains_once_per_data_split(tiny_config: RunConfig) -> None:
    config = tiny_config.replace(init_from="pretrain", pretrain_epochs=1, epochs=1)
    lines: list[str] = []
    first = train(config, log=lines.append)
    assert any(line.startswith("pretrain epoch 1/1") for line in lines)
    lines.clear()
    again = train(config.replace(seed=1), log=lines.append)  # another seed, the same encoder: not pretrained again
    assert not any(line.startswith("pretrain epoch") for line in lines)
    used = lambda r: json.loads((Path(r.run_dir) / "config.json").read_text())["optim"]["init_from"]
    assert used(first) == used(again)
    other = train(config.replace(split_seed=1), log=lines.append)  # a confirmation split: its own encoder
    assert used(other) != used(first) and any(line.startswith("pretrain epoch 1/1") for line in lines)
    assert pretrained_encoder(config, log=None) == Path(used(first))


@pytest.mark.parametrize("mode", ["full", "partial", "frozen"])
def test_fine_tuning_modes_and_layer_wise_lr(mode: str) -> None:
    config = RunConfig.create(
        embed_dim=16,
        num_heads=2,
        num_layers=3,
        pos_encoding="learned",
        init_from="x",
        finetune=mode,
        layer_lr_decay=0.5,
        lr=1e-3,
    )
    model = TextClassifier.from_config(config.model, 50, 4)
    set_finetuning(model, config.optim.finetune)
    training = {n for n, p in model.named_parameters() if p.requires_grad}
    everything = {n for n, _ in model.named_parameters()}
    expected = {
        "full": everything,
        "partial": {n for n in everything if not n.startswith(("tok_emb.", "positions.", "attention_positions."))},
        "frozen": {"head.weight", "head.bias"},
    }[mode]
    assert training == expected
    depth = layer_depths(model)
    lr_of = {
        id(p): g["lr"]
        for g in make_optimizer(model, config.optim, torch.device("cpu")).param_groups
        for p in g["params"]
    }
    for name, p in model.named_parameters():
        if p.requires_grad:
            assert lr_of[id(p)] == pytest.approx(1e-3 * 0.5 ** depth[name])
    assert depth["head.weight"] == 0 and depth["blocks.2.attn.qkv.weight"] == 1 and depth["blocks.0.ffn.up.weight"] == 3
    assert depth["tok_emb.weight"] == depth["positions.embedding.weight"] == 4


def test_the_pretraining_chapter_reads_a_study_with_an_lr_grid(tmp_path: Path) -> None:
    """from scratch is init_from None: every table, figure and claim orders and names it (no None < str)."""
    import report_synthetic
    from newslab.report import write_report

    levels = [[None, "full"], ["pretrain", "full"], ["pretrain", "partial"]]
    study = report_synthetic.study(
        "p", {"init_from,finetune": levels}, lambda p, n: 0.8 + 0.02 * (p["init_from"] is not None), seeds=3,
        confirm=3, nuisance={"lr": [1e-3, 3e-3]}, fixed={"epochs": 3},
    )  # fmt: skip
    files = write_report([study], tmp_path, log=None)
    rows = next(b for b in files.section("pretraining").blocks if hasattr(b, "rows")).rows
    assert [r[0] for r in rows] == [
        "from scratch",
        "pretrained, fine-tuning full",
        "pretrained, fine-tuning partial (embeddings frozen)",
    ]
    assert "from scratch" in files.markdown.read_text() and any(c.topic == "pretraining" for c in files.claims)


@pytest.mark.parametrize("damaged", ["resume.safetensors", "encoder.json", "encoder.safetensors"])
def test_a_damaged_file_is_one_line_naming_it(tiny_config: RunConfig, tmp_path: Path, damaged: str) -> None:
    folder = pretrain(tiny_config, SETTINGS, tmp_path / "enc", log=None)
    if damaged == "resume.safetensors":  # as a kill in the middle of a write would leave it (were it not atomic)
        (folder / "final.json").write_text('{"status": "running"}')
        (folder / damaged).write_bytes(b"\x00\x01 not safetensors")
        with pytest.raises(NewslabError, match=r"resume.safetensors: not a readable resume state .* delete it"):
            pretrain(tiny_config, SETTINGS, folder, log=None)
        return
    (folder / damaged).write_bytes(b"{ torn")
    with pytest.raises(ConfigError, match=f"--init-from {folder}: {damaged} (is unreadable|is not)") as err:
        train(tiny_config.replace(init_from=str(folder)), log=None)
    assert "\n" not in str(err.value)
