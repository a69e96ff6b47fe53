from __future__ import annotations

import dataclasses

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st
from torch.testing import assert_close

from newslab.config import ABLATIONS, ConfigError, RunConfig
from newslab.model import TextClassifier, drop_tokens
from newslab.positions import POSITIONAL_ENCODINGS

VOCAB, CLASSES = 50, 4


def build(config: RunConfig) -> TextClassifier:
    torch.manual_seed(0)
    return TextClassifier.from_config(config.model, VOCAB, CLASSES)


def small(**changes) -> RunConfig:
    return RunConfig.create({"embed_dim": 16, "num_heads": 4, "num_layers": 2, "max_len": 32, **changes})


def random_batch(lengths: list[int], width: int | None = None):
    width = width or max(lengths)
    ids = torch.randint(2, VOCAB, (len(lengths), width))
    pad_mask = torch.arange(width)[None, :] >= torch.tensor(lengths)[:, None]
    return ids.masked_fill(pad_mask, 0), pad_mask


@pytest.mark.parametrize("pos_encoding", sorted(POSITIONAL_ENCODINGS))
def test_padding_does_not_change_a_samples_logits(pos_encoding: str) -> None:
    model = build(small(pos_encoding=pos_encoding)).eval()
    ids, pad_mask = random_batch([5, 11, 3])
    batched = model(ids, pad_mask)
    for i, n in enumerate([5, 11, 3]):
        alone = model(ids[i : i + 1, :n], pad_mask[i : i + 1, :n])
        assert_close(batched[i : i + 1], alone, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("pos_encoding", sorted(POSITIONAL_ENCODINGS))
def test_fused_attention_equals_explicit_path(pos_encoding: str) -> None:
    model = build(small(pos_encoding=pos_encoding)).eval()
    ids, pad_mask = random_batch([7, 12, 2, 9])
    fused = model(ids, pad_mask)
    explicit, weights = model(ids, pad_mask, need_weights=True)
    assert_close(fused, explicit, rtol=1e-5, atol=1e-5)
    assert len(weights) == 2 and weights[0].shape == (4, 4, 12, 12)  # (B, nh, T, T) per layer
    assert_close(weights[0].sum(-1), torch.ones(4, 4, 12))
    assert torch.all(weights[1][2, :, :, 2:] == 0)  # the 2-token sample never attends to padding


@pytest.mark.parametrize("pos_encoding", sorted(POSITIONAL_ENCODINGS))
def test_fused_attention_gradients_equal_explicit_path(pos_encoding: str) -> None:
    model = build(small(dropout=0.0, pos_encoding=pos_encoding))
    if model.attention_positions is not None:  # a learned bias starts at 0: give it a gradient-carrying value
        for p in model.attention_positions.parameters():
            torch.nn.init.normal_(p)
    ids, pad_mask = random_batch([7, 12, 2])
    grads = []
    for need_weights in (False, True):
        model.zero_grad()
        out = model(ids, pad_mask, need_weights=need_weights)
        logits = out[0] if need_weights else out
        F.cross_entropy(logits, torch.tensor([0, 1, 2])).backward()
        grads.append([p.grad.clone() for p in model.parameters() if p.grad is not None])
    for fused_grad, explicit_grad in zip(*grads):
        assert_close(fused_grad, explicit_grad, rtol=1e-4, atol=1e-6)


# ---------------------------------------------------------------- ablations, each exactly
def test_ablation_names_are_the_six_of_the_manual() -> None:
    assert set(ABLATIONS) == {"no_pe", "single_head", "no_ffn", "freeze_emb", "no_dropout", "clip_grad"}


@pytest.mark.parametrize("name", sorted(ABLATIONS))
def test_each_ablation_changes_exactly_its_fields(name: str) -> None:
    base, ablated = small().flat(), small().ablate(name).flat()
    changed = {k for k in base if base[k] != ablated[k]} - {"ablation"}
    assert changed == set(ABLATIONS[name].overrides) and ablated["ablation"] == [name]


@pytest.mark.parametrize("name", sorted(ABLATIONS))
def test_each_ablation_changes_exactly_what_it_claims_in_the_model(name: str) -> None:
    base, ablated = build(small()), build(small().ablate(name))
    b, a = base.parameter_counts(), ablated.parameter_counts()
    C, L = 16, 2
    if name == "no_ffn":
        ffn_params = L * (C * 4 * C + 4 * C + 4 * C * C + C + 2 * C)  # up, down, and the FFN LayerNorm
        assert b["encoder"] - a["encoder"] == ffn_params
        assert all(blk.ffn is None and blk.ln_ffn is None for blk in ablated.blocks)
        assert not any("ffn" in n for n, _ in ablated.named_parameters())
    elif name == "no_pe":
        assert ablated.positions is None and ablated.attention_positions is None and a == b
        ids, pad_mask = random_batch([6])
        ablated.eval()
        reversed_ids = ids.flip(1)  # without positions the model is permutation invariant
        assert_close(ablated(ids, pad_mask), ablated(reversed_ids, pad_mask), rtol=1e-5, atol=1e-5)
    elif name == "single_head":
        assert a == b and all(blk.attn.num_heads == 1 for blk in ablated.blocks)
    elif name == "no_dropout":
        assert a == b
        assert all(m.p == 0 for m in ablated.modules() if isinstance(m, torch.nn.Dropout))
        assert all(blk.attn.dropout == 0 for blk in ablated.blocks)
        ids, pad_mask = random_batch([9, 4])
        ablated.train()
        assert torch.equal(ablated(ids, pad_mask), ablated(ids, pad_mask))  # deterministic in train mode
    elif name == "freeze_emb":
        assert a == b and not ablated.tok_emb.weight.requires_grad
        assert all(p.requires_grad for n, p in ablated.named_parameters() if n != "tok_emb.weight")
    elif name == "clip_grad":
        assert a == b and small().ablate(name).optim.clip_grad and small().ablate(name).optim.max_grad_norm == 1.0


def test_an_ablation_is_an_explicit_override() -> None:
    with pytest.raises(ConfigError, match="--ablation single_head sets --num-heads 1; --num-heads 4 contradicts it"):
        RunConfig.create(ablation="single_head", num_heads=4)
    assert RunConfig.create(ablation="single_head", num_heads=1).model.num_heads == 1  # agreeing is fine
    assert RunConfig.create(num_heads=8, embed_dim=256).ablate("single_head").model.num_heads == 1
    both = RunConfig.create(ablation=["no_pe", "no_ffn"])  # combined and recorded
    assert both.ablation == ("no_pe", "no_ffn") and both.model.pos_encoding == "none" and not both.model.ffn
    assert RunConfig.from_dict(both.to_dict()) == both and RunConfig.create(ablation="no_pe+no_ffn") == both
    with pytest.raises(ConfigError, match="cannot change the ablations"):
        both.replace(ablation=None)  # would keep pos_encoding "none" unrecorded
    with pytest.raises(ConfigError, match="contradicts"):
        both.replace(pos_encoding="learned")
    with pytest.raises(ConfigError, match="contradicts"):  # a hand-built config must hold its ablations
        RunConfig(ablation=("no_pe",))


def test_legacy_flat_config_json_still_reads() -> None:
    legacy = {**small().ablate("no_pe").flat(), "ablation": "no_pe"}  # newslab 0.1 wrote one flat mapping
    assert RunConfig.from_dict(legacy) == small().ablate("no_pe")


def test_learned_positions_add_parameters() -> None:
    counts = build(small(pos_encoding="learned")).parameter_counts()
    assert counts["embedding"] - build(small()).parameter_counts()["embedding"] == 32 * 16


@pytest.mark.parametrize("embed_dim", [16, 64, 256])
def test_learned_positions_start_at_the_token_scale(embed_dim: int) -> None:
    """What forward adds: token rows times embed_scale (std 1), sinusoid rows (std ~0.63) and learned rows,
    which must be of the same size (an init of std 1/sqrt(C) left them sqrt(C) times smaller)."""
    torch.manual_seed(0)
    model = TextClassifier(2000, CLASSES, embed_dim=embed_dim, num_heads=4, pos_encoding="learned", max_len=128)
    learned = model.positions.embedding.weight.detach().std().item()
    tokens = (model.tok_emb.weight[1:] * model.embed_scale).detach().std().item()  # row 0 is [PAD], zero
    sinusoid = build(small(embed_dim=embed_dim, max_len=128)).positions.table.std().item()
    assert learned == pytest.approx(tokens, rel=0.1)
    assert 1.0 <= learned / sinusoid <= 2.0


def test_parameter_counts_add_up() -> None:
    model = build(small())
    counts = model.parameter_counts()
    assert counts["total"] == sum(p.numel() for p in model.parameters())
    assert counts["embedding"] == VOCAB * 16 and counts["head"] == 16 * CLASSES + CLASSES


# ---------------------------------------------------------------- word dropout
@settings(max_examples=40, deadline=None)
@given(
    lengths=st.lists(st.integers(0, 12), min_size=1, max_size=6),
    width=st.integers(1, 12),
    p=st.sampled_from([0.0, 0.25, 0.5, 0.9]),
    seed=st.integers(0, 2**16),
)
def test_word_dropout_masks_only_real_tokens_and_leaves_every_row_one(
    lengths: list[int], width: int, p: float, seed: int
) -> None:
    """Padding stays padding, a row keeps at least one real token, p = 0 changes nothing."""
    lengths = [max(1, min(n, width)) for n in lengths]
    pad_mask = torch.arange(width)[None, :] >= torch.tensor(lengths)[:, None]  # (B, T)
    torch.manual_seed(seed)
    dropped = drop_tokens(pad_mask, p)
    assert dropped.shape == pad_mask.shape and dropped.dtype == torch.bool
    assert bool((dropped >= pad_mask).all())  # a padded position is never un-padded
    assert bool((~dropped).any(1).all())
    if p == 0:
        assert torch.equal(dropped, pad_mask)


def test_word_dropout_drops_about_its_share_and_only_while_training() -> None:
    pad_mask = torch.zeros(256, 64, dtype=torch.bool)
    torch.manual_seed(0)
    share = float(drop_tokens(pad_mask, 0.25).float().mean())
    assert 0.24 < share < 0.26
    cfg = RunConfig.create(embed_dim=32, num_heads=4, num_layers=1, max_len=16, dropout=0.0, token_dropout=0.5)
    torch.manual_seed(0)
    model = TextClassifier.from_config(cfg.model, 50, 4)
    ids = torch.randint(1, 50, (8, 16))
    pad_mask = torch.zeros(8, 16, dtype=torch.bool)
    plain = TextClassifier.from_config(dataclasses.replace(cfg.model, token_dropout=0.0), 50, 4)
    plain.load_state_dict(model.state_dict())
    with torch.no_grad():
        assert_close(model.eval()(ids, pad_mask), plain.eval()(ids, pad_mask))
        assert not torch.allclose(model.train()(ids, pad_mask), plain.train()(ids, pad_mask))


# ---------------------------------------------------------------- invalid configurations
@pytest.mark.parametrize(
    "changes, flag",
    [
        ({"embed_dim": 100, "num_heads": 3}, "--embed-dim 100 is not divisible by --num-heads 3"),
        ({"embed_dim": 0}, "--embed-dim must be a positive integer"),
        ({"num_layers": -1}, "--num-layers must be a positive integer"),
        ({"ablation": "no_attention"}, "--ablation 'no_attention' is unknown"),
        ({"pos_encoding": "rotary"}, "--pos-encoding 'rotary' is not one of"),
        ({"pos_encoding": "rope", "embed_dim": 12, "num_heads": 4}, "--num-heads 4 must be an even head size for rope"),
        ({"pos_encoding": "sinusoidal", "embed_dim": 9, "num_heads": 3}, "--embed-dim 9 must be even for sinusoidal"),
        ({"dropout": 1.5}, "--dropout must be in [0, 1)"),
        ({"token_dropout": 1.0}, "--token-dropout must be in [0, 1)"),
        ({"distill": -0.1}, "--distill must be in [0, 1)"),
        ({"lr": 0.0}, "--lr must be > 0"),
    ],
)
def test_invalid_configs_are_rejected_naming_the_flag(changes: dict, flag: str) -> None:
    with pytest.raises(ConfigError) as err:
        RunConfig.create(changes)
    assert flag in str(err.value)


def test_config_round_trips_through_a_dict() -> None:
    config = RunConfig.create(ablation="no_ffn", embed_dim=64, num_heads=2)
    assert RunConfig.from_dict(config.to_dict()) == config
    assert RunConfig.create(config.flat()) == config


def test_config_from_dict_rejects_unknown_fields_and_types() -> None:
    with pytest.raises(ConfigError, match="spec.yaml: unknown field.*embedding_dim"):
        RunConfig.create({"embedding_dim": 64}, source="spec.yaml")
    with pytest.raises(ConfigError, match="epochs must be int"):
        RunConfig.create({"epochs": "three"})
    assert RunConfig.create({"lr": "1e-3", "dropout": 0}).optim.lr == 1e-3
    with pytest.raises(ConfigError, match=r"config.json: unknown field.*model.lr"):
        RunConfig.from_dict({"version": 2, "model": {"lr": 1e-3}}, source="config.json")


def test_one_spelling_per_ablation_combination_and_finite_numbers() -> None:
    assert RunConfig.create(ablation="single_head+no_pe") == RunConfig.create(ablation="no_pe+single_head")
    assert RunConfig.create(ablation=["no_ffn", "no_pe"]).identity() == RunConfig().ablate("no_pe", "no_ffn").identity()
    for changes, message in [
        ({"lr": float("inf")}, "--lr must be > 0 and finite"),
        ({"lr": float("nan")}, "--lr must be > 0 and finite"),
        ({"weight_decay": float("nan")}, "--weight-decay must be >= 0 and finite"),
        ({"dropout": float("nan")}, "--dropout must be in"),
    ]:
        with pytest.raises(ConfigError, match=message):
            RunConfig.create(changes)
