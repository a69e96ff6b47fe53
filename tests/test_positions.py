"""The defining properties of each positional encoding (positions.py): RoPE, ALiBi and the learned
relative bias see positions only through the offset j - i; the added encodings see absolute positions;
every encoding survives a checkpoint and bf16 autocast."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from safetensors.torch import load, save
from torch.testing import assert_close

from newslab.model import TextClassifier
from newslab.positions import (
    POSITIONAL_ENCODINGS,
    AddedPositions,
    AlibiPositions,
    AttentionPositions,
    RelativeBiasPositions,
    RotaryPositions,
    alibi_slopes,
)

VOCAB, CLASSES = 50, 4
ATTENTION_KINDS = sorted(
    n for n, c in POSITIONAL_ENCODINGS.items() if c is not None and issubclass(c, AttentionPositions)
)
ADDED_KINDS = sorted(n for n, c in POSITIONAL_ENCODINGS.items() if c is not None and issubclass(c, AddedPositions))


def test_every_encoding_is_of_one_kind() -> None:
    assert ATTENTION_KINDS == ["alibi", "relative", "rope"] and ADDED_KINDS == ["learned", "sinusoidal"]
    assert POSITIONAL_ENCODINGS["none"] is None


def scores(module: AttentionPositions, q: torch.Tensor, k: torch.Tensor) -> torch.Tensor:
    """(nh, T, T): the pre-softmax scores (without the 1/sqrt(hs) scale) the encoding leads to."""
    q, k, bias = module(q[None], k[None])
    s = (q @ k.transpose(-2, -1))[0]
    return s if bias is None else s + bias


@settings(max_examples=40, deadline=None)
@given(
    name=st.sampled_from(["rope", "alibi", "relative"]),
    heads=st.integers(1, 6),
    half_head=st.integers(1, 8),
    length=st.integers(2, 24),
    seed=st.integers(0, 2**16),
)
def test_attention_encodings_score_by_offset_alone(name, heads, half_head, length, seed) -> None:
    """One query vector and one key vector at every position: the scores must form a Toeplitz matrix,
    S[i, j] = S[i + 1, j + 1], since only j - i carries position."""
    torch.manual_seed(seed)
    head_size = 2 * half_head
    module = POSITIONAL_ENCODINGS[name](heads * head_size, 32, heads)
    for p in module.parameters():
        torch.nn.init.normal_(p)  # a learned bias at its init (0) would pass trivially
    q = torch.randn(heads, 1, head_size).expand(heads, length, head_size)
    k = torch.randn(heads, 1, head_size).expand(heads, length, head_size)
    s = scores(module, q, k)
    assert_close(s[:, 1:, 1:], s[:, :-1, :-1], rtol=1e-4, atol=1e-4)
    assert s[:, :, 0].std() > 0  # positions do change the scores


@settings(max_examples=30, deadline=None)
@given(heads=st.integers(1, 4), half_head=st.integers(1, 8), length=st.integers(1, 20), seed=st.integers(0, 2**16))
def test_rope_is_a_rotation(heads, half_head, length, seed) -> None:
    """Each vector keeps its length, and position 0 is not turned at all."""
    torch.manual_seed(seed)
    module = RotaryPositions(heads * 2 * half_head, 32, heads)
    q, k = torch.randn(2, 1, heads, length, 2 * half_head)
    q2, k2, bias = module(q, k)
    assert bias is None
    assert_close(q2.norm(dim=-1), q.norm(dim=-1), rtol=1e-5, atol=1e-5)
    assert_close(k2[..., 0, :], k[..., 0, :])


def test_alibi_slopes_follow_the_paper() -> None:
    assert_close(alibi_slopes(8), torch.tensor([2.0**-i for i in range(1, 9)]))
    assert_close(alibi_slopes(4), torch.tensor([2.0**-2, 2.0**-4, 2.0**-6, 2.0**-8]))
    six = alibi_slopes(6)  # 4 of the 4-head sequence, then every other one of the 8-head sequence
    assert_close(six, torch.tensor([2.0**-2, 2.0**-4, 2.0**-6, 2.0**-8, 2.0**-1, 2.0**-3]))
    assert len(set(alibi_slopes(12).tolist())) == 12


def test_alibi_penalises_distance_symmetrically_and_nothing_else() -> None:
    module = AlibiPositions(16, 10, 4)
    q = k = torch.zeros(1, 4, 6, 4)
    _, _, bias = module(q, k)
    assert torch.equal(bias, bias.transpose(-2, -1)) and torch.all(bias.diagonal(dim1=-2, dim2=-1) == 0)
    assert_close(bias[:, 0, 5], -5 * alibi_slopes(4))
    assert list(module.parameters()) == []


def test_relative_bias_learns_one_value_per_head_and_offset() -> None:
    module = RelativeBiasPositions(16, 10, 4)
    assert module.table.shape == (4, 19) and torch.all(module.table == 0)
    q = k = torch.zeros(1, 4, 7, 4)
    _, _, bias = module(q, k)
    bias.sum().backward()
    assert module.table.grad is not None
    used = (module.table.grad[0] != 0).nonzero().flatten()
    assert used.tolist() == list(range(9 - 6, 9 + 7))  # offsets -6..+6 of a 7-token row


@pytest.mark.parametrize("name", ADDED_KINDS)
def test_added_encodings_see_absolute_positions(name: str) -> None:
    """The same token at two positions gets two different vectors (which the offset encodings never do)."""
    module = POSITIONAL_ENCODINGS[name](16, 10, 4)
    x = torch.zeros(1, 3, 16)
    out = module(x)
    assert not torch.allclose(out[0, 0], out[0, 1])


def model(name: str, heads: int = 4) -> TextClassifier:
    torch.manual_seed(0)
    return TextClassifier(VOCAB, CLASSES, embed_dim=16, num_heads=heads, num_layers=2, pos_encoding=name, max_len=24)


@pytest.mark.parametrize("name", sorted(POSITIONAL_ENCODINGS))
def test_every_encoding_survives_a_checkpoint(name: str) -> None:
    """The weights saved as safetensors rebuild the same model: fixed tables are recomputed, learned ones loaded."""
    trained = model(name).eval()
    for p in trained.parameters():
        torch.nn.init.normal_(p, std=0.1)
    blob = save(trained.state_dict())
    fresh = model(name).eval()
    fresh.load_state_dict(load(blob))
    ids = torch.randint(2, VOCAB, (2, 9))
    pad = torch.zeros(2, 9, dtype=torch.bool)
    assert_close(fresh(ids, pad), trained(ids, pad))


@pytest.mark.parametrize("name", sorted(POSITIONAL_ENCODINGS))
@pytest.mark.parametrize("need_weights", [False, True])
def test_every_encoding_runs_under_bf16_autocast(name: str, need_weights: bool) -> None:
    """The fused (SDPA) path takes one dtype for q, k, v and its float mask: the bias and RoPE's tables follow q."""
    net = model(name).eval()
    ids = torch.randint(2, VOCAB, (3, 11))
    pad = torch.arange(11)[None, :] >= torch.tensor([11, 6, 3])[:, None]
    reference = net(ids, pad)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = net(ids, pad, need_weights=need_weights)
    logits = out[0] if need_weights else out
    assert_close(logits.float(), reference, rtol=0.1, atol=0.1)


@pytest.mark.parametrize("name", ATTENTION_KINDS)
def test_offset_encodings_keep_a_model_shift_invariant(name: str) -> None:
    """A row of one repeated token: two queries at different positions weigh their neighbours alike relative
    to themselves (layer 1; the softmax's total differs, since each has other offsets at the row's ends)."""
    net = model(name).eval()
    for p in net.attention_positions.parameters():
        torch.nn.init.normal_(p)
    ids = torch.full((1, 20), 7)
    pad = torch.zeros(1, 20, dtype=torch.bool)
    _, weights = net(ids, pad, need_weights=True)
    log_w = weights[0][0].log()  # (nh, T, T)
    around = lambda i: log_w[:, i, i - 2 : i + 3] - log_w[:, i, i : i + 1]  # offsets -2..+2 against offset 0
    assert_close(around(8), around(11), rtol=1e-4, atol=1e-4)
    assert around(8).abs().max() > 1e-3  # the encoding does prefer some offsets
