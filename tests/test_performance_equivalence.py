"""Guard rails for the speed-ups: the optimized training step changes no result beyond float noise.

Speed itself is measured by benchmarks/ (never by timed tests).
"""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st
from torch.testing import assert_close

import newslab.model as model_mod
from newslab.config import RunConfig
from newslab.model import TextClassifier, dropout
from newslab.positions import POSITIONAL_ENCODINGS
from newslab.step import TrainStep, amp_dtype, cpu_has_native_bf16, grad_norm, wants_compile
from newslab.train import make_optimizer, train

VOCAB, CLASSES = 60, 4


def config(**changes) -> RunConfig:
    return RunConfig.create(
        {"embed_dim": 32, "num_heads": 4, "num_layers": 2, "max_len": 24, "dropout": 0.0, **changes}
    )


def batch(seed: int = 0):
    gen = torch.Generator().manual_seed(seed)
    lengths = torch.tensor([24, 17, 9, 3, 24, 12])
    ids = torch.randint(2, VOCAB, (6, 24), generator=gen)
    pad_mask = torch.arange(24)[None, :] >= lengths[:, None]
    return ids.masked_fill(pad_mask, 0), pad_mask, torch.randint(0, CLASSES, (6,), generator=gen)


def pair(cfg: RunConfig):
    torch.manual_seed(0)
    model = TextClassifier.from_config(cfg.model, VOCAB, CLASSES).train()
    return model, copy.deepcopy(model)


def plain_step(model: TextClassifier, cfg: RunConfig, ids, pad_mask, labels):
    """The textbook step: fp32 forward, loss, backward, norm, clip, unfused AdamW; returns the logits too."""
    logits = model(ids, pad_mask)
    loss = F.cross_entropy(logits, labels, label_smoothing=cfg.optim.label_smoothing)
    model.zero_grad()
    loss.backward()
    params = [p for p in model.parameters() if p.requires_grad]
    norm = torch.linalg.vector_norm(torch.stack([p.grad.norm() for p in params]))
    if cfg.optim.clip_grad:
        torch.nn.utils.clip_grad_norm_(params, cfg.optim.max_grad_norm, foreach=False)
    optimizer = make_optimizer(model, cfg.optim, torch.device("cpu"))
    for group in optimizer.param_groups:
        group["fused"] = False
    optimizer.step()
    return loss.detach(), norm, logits.detach()


@pytest.mark.parametrize("ablation", [None, "clip_grad", "no_ffn", "freeze_emb"])
def test_optimized_step_matches_the_plain_step(ablation: str | None) -> None:
    cfg = config(ablation=ablation, max_grad_norm=0.05, precision="fp32")
    fast_model, ref_model = pair(cfg)
    step = TrainStep(fast_model, make_optimizer(fast_model, cfg.optim, torch.device("cpu")), cfg.optim)
    ids, pad_mask, labels = batch()
    loss, loss_unsmoothed, norm = step(ids, pad_mask, labels)
    ref_loss, ref_norm, ref_logits = plain_step(ref_model, cfg, ids, pad_mask, labels)
    assert_close(loss, ref_loss)
    assert_close(loss_unsmoothed, F.cross_entropy(ref_logits, labels))  # the same forward pass, unsmoothed
    assert_close(norm, ref_norm)
    for (name, p), q in zip(fast_model.named_parameters(), ref_model.parameters()):
        if p.requires_grad:
            assert_close(p.grad, q.grad, msg=name)
        assert_close(p, q, msg=name)  # after one fused vs one for-loop AdamW step


def teacher_of(seed: int, rows: int = 6) -> torch.Tensor:
    """(rows, CLASSES) probabilities, as a distillation teacher gives them."""
    return torch.randn(rows, CLASSES, generator=torch.Generator().manual_seed(seed)).mul(2).softmax(-1)


@settings(max_examples=25, deadline=None)
@given(
    micro=st.integers(1, 7),
    clip=st.booleans(),
    smoothing=st.sampled_from([0.0, 0.1]),
    distill=st.sampled_from([0.0, 0.5]),
    seed=st.integers(0, 2**16),
)
def test_micro_batches_accumulate_the_whole_batchs_step(
    micro: int, clip: bool, smoothing: float, distill: float, seed: int
) -> None:
    """--micro-batch-size splits a batch (any micro size, one that does not divide it too) and adds up the
    gradients: loss, gradient norm, clipping and the updated weights are the whole batch's, to float noise;
    with --distill each micro-batch takes its own rows' teacher probabilities."""
    cfg = config(clip_grad=clip, max_grad_norm=0.05, label_smoothing=smoothing, distill=distill, precision="fp32")
    whole_model, micro_model = pair(cfg)
    # SGD: the step is linear in the gradient; Adam's g / sqrt(v) would blow float noise on near-zero gradients up
    sgd = lambda model: torch.optim.SGD(model.parameters(), lr=0.1)
    whole = TrainStep(whole_model, sgd(whole_model), cfg.optim)
    accumulated = TrainStep(micro_model, sgd(micro_model), cfg.optim, micro_batch_size=micro)
    ids, pad_mask, labels = batch(seed)
    teacher = teacher_of(seed) if distill else None
    expected, got = whole(ids, pad_mask, labels, teacher), accumulated(ids, pad_mask, labels, teacher)
    for a, b in zip(got, expected):
        assert_close(a, b, rtol=1e-5, atol=1e-6)
    for (name, p), q in zip(micro_model.named_parameters(), whole_model.parameters()):
        assert_close(p.grad, q.grad, rtol=1e-4, atol=1e-6, msg=name)
        assert_close(p, q, rtol=1e-5, atol=1e-6, msg=name)


@pytest.mark.parametrize("label_smoothing", [0.0, 0.1, 0.3])
def test_the_unsmoothed_loss_is_plain_cross_entropy_of_the_steps_logits(label_smoothing: float) -> None:
    """Smoothed CE = (1 - e) * CE + e * mean over classes of -log p: the step's two losses must satisfy it."""
    cfg = config(label_smoothing=label_smoothing, precision="fp32")
    model, _ = pair(cfg)
    with torch.no_grad():  # a sharper head than the initial one, so that smoothing changes the loss visibly
        model.head.weight.mul_(50)
    logits = []
    model.head.register_forward_hook(lambda _m, _i, out: logits.append(out.detach()))
    step = TrainStep(model, make_optimizer(model, cfg.optim, torch.device("cpu")), cfg.optim)
    ids, pad_mask, labels = batch(2)
    result = step(ids, pad_mask, labels)
    assert result.loss_unsmoothed.requires_grad is False and result.loss_unsmoothed.shape == ()
    (seen,) = logits
    assert_close(result.loss_unsmoothed, F.cross_entropy(seen, labels))
    uniform = -seen.log_softmax(-1).mean()  # cross-entropy against the uniform distribution
    assert_close(result.loss, (1 - label_smoothing) * result.loss_unsmoothed + label_smoothing * uniform)
    if label_smoothing == 0:
        assert_close(result.loss, result.loss_unsmoothed)
    else:
        assert abs(float(result.loss - result.loss_unsmoothed)) > 1e-3


@pytest.mark.parametrize("distill", [0.3, 1.0 - 1e-9])
def test_the_distilled_objective_mixes_label_and_teacher_cross_entropy(distill: float) -> None:
    """--distill W: (1 - W) x the labels' (smoothed) cross-entropy + W x the cross-entropy against the teacher's
    probabilities, of the logits the step saw; the unsmoothed loss stays the labels' alone. A step of --distill
    without its teacher, or a teacher without --distill, is a caller's mistake and raises."""
    cfg = config(label_smoothing=0.1, distill=distill, precision="fp32")
    model, _ = pair(cfg)
    logits = []
    model.head.register_forward_hook(lambda _m, _i, out: logits.append(out.detach()))
    step = TrainStep(model, make_optimizer(model, cfg.optim, torch.device("cpu")), cfg.optim)
    ids, pad_mask, labels = batch(3)
    teacher = teacher_of(3)
    result = step(ids, pad_mask, labels, teacher)
    (seen,) = logits
    taught = -(teacher * seen.log_softmax(-1)).sum(-1).mean()
    labelled = F.cross_entropy(seen, labels, label_smoothing=0.1)
    assert_close(result.loss, (1 - distill) * labelled + distill * taught)
    assert_close(result.loss_unsmoothed, F.cross_entropy(seen, labels))
    with pytest.raises(ValueError, match="--distill"):
        step(ids, pad_mask, labels)
    plain = config(label_smoothing=0.1, precision="fp32")
    with pytest.raises(ValueError, match="--distill"):
        TrainStep(model, make_optimizer(model, plain.optim, torch.device("cpu")), plain.optim)(
            ids, pad_mask, labels, teacher
        )


@pytest.mark.parametrize("pos_encoding", sorted(POSITIONAL_ENCODINGS))
def test_training_attention_path_equals_sdpa(pos_encoding: str) -> None:
    """With dropout made the identity, the explicit training path (padding and scale inside one baddbmm) computes
    what SDPA computes: the same logits and the same gradients, with every positional encoding."""
    cfg = config(dropout=0.1, pos_encoding=pos_encoding)
    explicit, fused = pair(cfg)
    with torch.no_grad():  # weights of std 0.3, not the init's 0.02: scores of order 1, so a wrong scale or mask shows
        for param in explicit.parameters():
            param.normal_(0.0, 0.3)
    fused.load_state_dict(explicit.state_dict())
    ids, pad_mask, labels = batch()
    expected = fused.eval()(ids, pad_mask)  # SDPA, no dropout
    F.cross_entropy(expected, labels).backward()
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(model_mod, "dropout", lambda x, p, training: x)
        got = explicit(ids, pad_mask)  # explicit path (training on CPU with p > 0)
        F.cross_entropy(got, labels).backward()
    assert_close(got, expected, rtol=1e-5, atol=1e-5)
    for (name, a), b in zip(explicit.named_parameters(), fused.parameters()):
        assert a.grad is not None and b.grad is not None, name
        assert_close(a.grad, b.grad, rtol=1e-4, atol=1e-6, msg=name)


def select_mask_dropout(x: torch.Tensor, p: float) -> torch.Tensor:
    """The cheap dropout as first written: the same 16-bit draws, kept by a compare, scaled by a select."""
    bits = torch.empty((x.numel() + 3) // 4, dtype=torch.int64).random_(-(2**63), None)
    keep = bits.view(torch.int16)[: x.numel()].view(x.shape) >= round(p * 65536) - 32768
    return x * torch.where(keep, torch.tensor(1.0 / (1.0 - p), dtype=x.dtype), 0.0)


@settings(max_examples=40, deadline=None)
@given(
    shape=st.lists(st.integers(1, 40), min_size=1, max_size=4),
    p=st.sampled_from([1 / 65536, 0.1, 0.25, 0.5, 0.9, 0.99]),
    bf16=st.booleans(),
    seed=st.integers(0, 2**31),
)
def test_cheap_dropout_is_the_compare_and_select_mask_bit_for_bit(shape, p, bf16, seed) -> None:
    """The in-place passes over the draws (model.dropout) give exactly the mask and scale of a compare and a select."""
    x = torch.randn(shape).to(torch.bfloat16 if bf16 else torch.float32)
    torch.manual_seed(seed)
    expected = select_mask_dropout(x, p)
    torch.manual_seed(seed)
    got = dropout(x, p, training=True)
    assert got.dtype == x.dtype and torch.equal(got, expected)


def test_cheap_dropout_has_dropouts_distribution_and_gradient() -> None:
    torch.manual_seed(0)
    x = torch.ones(1 << 20, requires_grad=True)
    for p in (0.1, 0.3):
        y = dropout(x, p, training=True)
        kept = y != 0
        assert abs(kept.double().mean().item() - (1 - p)) < 2e-3
        assert_close(y[kept], torch.full_like(y[kept], 1 / (1 - p)))
        (grad,) = torch.autograd.grad(y.sum(), x)
        assert torch.equal(grad, y.detach())  # d(x * mask / (1 - p)) / dx
    assert dropout(x, 0.1, training=False) is x and dropout(x, 0.0, training=True) is x
    bf16 = dropout(torch.ones(4096, dtype=torch.bfloat16), 0.1, True)
    assert bf16.dtype == torch.bfloat16
    assert not torch.equal(dropout(x, 0.1, True), dropout(x, 0.1, True))  # a fresh mask every call


def test_bf16_step_is_close_to_fp32() -> None:
    cfg = config()
    a, b = pair(cfg)
    ids, pad_mask, labels = batch(1)
    losses, grads = [], []
    for model, precision in ((a, "fp32"), (b, "bf16")):
        step = TrainStep(
            model,
            make_optimizer(model, cfg.optim, torch.device("cpu")),
            cfg.optim,
            amp_dtype(precision, torch.device("cpu")),
        )
        losses.append(step(ids, pad_mask, labels)[0])
        grads.append(torch.cat([p.grad.flatten() for p in model.parameters()]))
    assert_close(losses[1], losses[0], rtol=2e-2, atol=2e-2)
    assert F.cosine_similarity(grads[0], grads[1], dim=0) > 0.99


def test_precision_and_compile_resolution() -> None:
    cpu = torch.device("cpu")
    assert amp_dtype("fp32", cpu) is None and amp_dtype("bf16", cpu) == torch.bfloat16
    assert amp_dtype("auto", cpu) == (torch.bfloat16 if cpu_has_native_bf16() else None)
    assert not wants_compile(RunConfig.create(epochs=100), cpu, 10**6)  # auto: never on CPU
    assert wants_compile(RunConfig.create(compile="on"), cpu, 10)
    assert not wants_compile(RunConfig.create(compile="off"), torch.device("cuda"), 10**6)
    assert wants_compile(RunConfig.create(epochs=3), torch.device("cuda"), 114_000)
    assert not wants_compile(RunConfig.create(epochs=1), torch.device("cuda"), 5_700)


def test_grad_norm_is_the_global_l2_norm() -> None:
    params = [torch.nn.Parameter(torch.randn(3, 4)), torch.nn.Parameter(torch.randn(5))]
    for p in params:
        p.grad = torch.randn_like(p)
    assert_close(grad_norm(params), torch.cat([p.grad.flatten() for p in params]).norm())


@pytest.mark.slow
def test_compiled_step_matches_eager_step() -> None:
    cfg = config(embed_dim=16, num_layers=1, precision="fp32")
    compiled_model, eager_model = pair(cfg)
    log: list[str] = []
    compiled = TrainStep(
        compiled_model,
        make_optimizer(compiled_model, cfg.optim, torch.device("cpu")),
        cfg.optim,
        compile=True,
        log=log.append,
    )
    eager = TrainStep(eager_model, make_optimizer(eager_model, cfg.optim, torch.device("cpu")), cfg.optim)
    for seed in (0, 1):  # two shapes: the dynamic graph serves both
        ids, pad_mask, labels = batch(seed)
        ids, pad_mask = (ids, pad_mask) if seed == 0 else (ids[:, :20], pad_mask[:, :20])
        assert_close(compiled(ids, pad_mask, labels), eager(ids, pad_mask, labels), rtol=1e-4, atol=1e-5)
    assert compiled.compiled, log  # compiled, not fallen back to eager
    for p, q in zip(compiled_model.parameters(), eager_model.parameters()):
        assert_close(p, q, rtol=1e-4, atol=1e-5)


@pytest.mark.realdata
@pytest.mark.slow
def test_optimized_training_keeps_accuracy_on_the_stand_in(stand_in_dir: Path, tmp_path: Path) -> None:
    """Default (bf16 where native, cheap dropout) vs the plain path (fp32, torch's dropout), same seed."""
    base = RunConfig.create(epochs=2, data_dir=str(stand_in_dir), out_dir=str(tmp_path))
    fast = train(base, log=None, progress=False)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(model_mod, "dropout", F.dropout)
        plain = train(base.replace(precision="fp32"), log=None, progress=False)
    print(f"test accuracy: optimized {fast.test_accuracy:.4f}, plain {plain.test_accuracy:.4f}")
    assert fast.test_accuracy >= plain.test_accuracy - 0.02
    assert fast.best_val_accuracy >= plain.best_val_accuracy - 0.02
