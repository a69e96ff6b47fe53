"""The training step, and what makes it fast: autocast precision, torch.compile, no host syncs.

Kept apart from the loop in train.py so that a test can run this step against a plain
reference step (tests/test_performance_equivalence.py) and benchmarks can time it alone.
Measured effects on a 2-core AVX512-BF16 CPU are in benchmarks/README.md.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import NamedTuple

import torch
import torch.nn.functional as F

from .config import OptimConfig, RunConfig

# `--compile auto` compiles CUDA runs of at least this many training samples (epochs x rows),
# where kernel fusion pays back the compile time. Never on CPU: with the cheap dropout (model.py)
# and bf16, the compiled CPU step measured no faster than eager (benchmarks/README.md) and
# costs 15-140 s of compilation on 2 cores.
COMPILE_MIN_SAMPLES = 100_000


def cpu_has_native_bf16() -> bool:
    """AVX512-BF16 or AMX: bf16 matmuls run natively at ~2x fp32 (elsewhere they are emulated and slower)."""
    probes = ("_is_avx512_bf16_supported", "_is_amx_tile_supported")
    return any(getattr(torch.cpu, name, lambda: False)() for name in probes)


def amp_dtype(precision: str, device: torch.device) -> torch.dtype | None:
    """The autocast dtype for --precision on this device; None = full fp32."""
    if precision == "fp32" or device.type not in ("cpu", "cuda"):
        return None
    if precision == "bf16":
        return torch.bfloat16
    native = torch.cuda.is_bf16_supported() if device.type == "cuda" else cpu_has_native_bf16()
    return torch.bfloat16 if native else None


def autocast(device: torch.device, dtype: torch.dtype | None):
    """Autocast to `dtype` (weights stay fp32); a no-op context when dtype is None."""
    return torch.autocast(device.type, dtype=dtype or torch.bfloat16, enabled=dtype is not None)


def wants_compile(config: RunConfig, device: torch.device, train_rows: int) -> bool:
    mode = config.execution.compile
    if mode == "off" or device.type not in ("cpu", "cuda"):
        return False
    if mode == "on":
        return True
    # --epochs, not --stop-epoch: a run stopped at an epoch compiles as the full run does, so it reproduces it
    return device.type == "cuda" and config.optim.epochs * train_rows >= COMPILE_MIN_SAMPLES


def lr_lambda(total_steps: int, warmup: float) -> Callable[[int], float]:
    """The lr factor of each step: linear warm-up over the first `warmup` share of the steps, then linear decay to 0."""
    warm = max(1, round(warmup * total_steps)) if warmup > 0 else 0

    def factor(step: int) -> float:
        if step < warm:
            return (step + 1) / warm
        return max(0.0, (total_steps - step) / max(1, total_steps - warm))

    return factor


def grad_norm(params: Sequence[torch.Tensor]) -> torch.Tensor:
    """Global L2 norm of the gradients (one foreach kernel, no host sync)."""
    grads = [p.grad for p in params if p.grad is not None]
    return torch.linalg.vector_norm(torch.stack(torch._foreach_norm(grads)))


class StepResult(NamedTuple):
    """What one training step reports, as detached 0-dim tensors on the device."""

    loss: torch.Tensor  # the objective: cross-entropy with --label-smoothing (and the teacher's share with --distill)
    loss_unsmoothed: torch.Tensor  # plain cross-entropy of the same logits: comparable with the validation loss
    grad_norm: torch.Tensor  # global gradient norm before clipping


class TrainStep:
    """forward (eager or compiled) + loss + backward + unclipped grad norm + clipping + optimizer step.

    Returns a StepResult of 0-dim tensors and never reads them back, so on a GPU the host
    queues steps ahead; the loop checks the loss for NaN/inf every few steps. If compilation fails
    (no C++ compiler, an unsupported platform), the step says so once and runs eagerly.
    """

    def __init__(
        self,
        model: torch.nn.Module,
        optimizer: torch.optim.Optimizer,
        config: OptimConfig,
        amp: torch.dtype | None = None,
        compile: bool = False,
        log: Callable[[str], None] | None = None,
        micro_batch_size: int | None = None,
    ):
        self.model, self.optimizer, self.config, self.amp = model, optimizer, config, amp
        self.micro_batch_size = micro_batch_size
        self.trainable = [p for p in model.parameters() if p.requires_grad]
        self.log = log or (lambda _msg: None)
        self.forward: Callable[..., torch.Tensor] = model
        self.compiled = compile
        if compile:
            # A study worker trains many models in one process: start from fresh dynamo caches so
            # no run hits the recompile limit (the on-disk inductor cache still makes repeats fast).
            torch._dynamo.reset()
            self.forward = torch.compile(model, dynamic=True)  # one graph for every (B, T)
        self._untried = compile

    def __call__(
        self, ids: torch.Tensor, pad_mask: torch.Tensor, labels: torch.Tensor, teacher: torch.Tensor | None = None
    ) -> StepResult:
        """One step on a batch; `teacher`: the rows' (B, classes) teacher probabilities when --distill is on."""
        if self._untried:
            self._untried = False
            try:
                return self._step(ids, pad_mask, labels, teacher)
            except Exception as exc:  # compile errors surface at the first forward or backward
                self.log(f"newslab: torch.compile failed ({type(exc).__name__}: {str(exc)[:200]}); training eagerly")
                self.forward, self.compiled = self.model, False
        return self._step(ids, pad_mask, labels, teacher)

    def _losses(
        self, ids: torch.Tensor, pad_mask: torch.Tensor, labels: torch.Tensor, teacher: torch.Tensor | None, rows: int
    ):
        """Forward one (micro-)batch: its objective and plain cross-entropy, each summed over its rows / `rows`."""
        with autocast(ids.device, self.amp):
            logits = self.forward(ids, pad_mask)  # (b, classes)
        logits = logits.float()
        smoothing = self.config.label_smoothing
        loss = F.cross_entropy(logits, labels, label_smoothing=smoothing, reduction="sum") / rows
        if teacher is not None:  # cross-entropy against the teacher's probabilities takes --distill of the loss
            taught = F.cross_entropy(logits, teacher, reduction="sum") / rows
            loss = (1 - self.config.distill) * loss + self.config.distill * taught
        # on detached logits: a (b, classes) softmax more, no graph and no second backward
        return loss, F.cross_entropy(logits.detach(), labels, reduction="sum") / rows

    def _step(
        self, ids: torch.Tensor, pad_mask: torch.Tensor, labels: torch.Tensor, teacher: torch.Tensor | None
    ) -> StepResult:
        if (teacher is None) != (self.config.distill == 0):
            raise ValueError("--distill needs the teacher's probabilities of every batch, and only --distill uses them")
        self.optimizer.zero_grad(set_to_none=True)
        B, micro = len(labels), self.micro_batch_size or len(labels)
        if micro >= B:
            loss, loss_unsmoothed = self._losses(ids, pad_mask, labels, teacher, B)
            loss.backward()
        else:  # gradient accumulation: the micro-batches' gradients add up to the batch's mean-loss gradient
            loss, loss_unsmoothed = torch.zeros((), device=ids.device), torch.zeros((), device=ids.device)
            for start in range(0, B, micro):
                part = slice(start, start + micro)
                width = int((~pad_mask[part]).sum(1).max())  # a micro-batch pads only to its own longest row
                taught = teacher[part] if teacher is not None else None
                part_loss, part_plain = self._losses(ids[part, :width], pad_mask[part, :width], labels[part], taught, B)
                part_loss.backward()
                loss, loss_unsmoothed = loss + part_loss.detach(), loss_unsmoothed + part_plain
        if self.config.clip_grad:  # returns the norm before clipping, logged either way
            norm = torch.nn.utils.clip_grad_norm_(self.trainable, self.config.max_grad_norm, foreach=True)
        else:
            norm = grad_norm(self.trainable)
        self.optimizer.step()
        return StepResult(loss.detach(), loss_unsmoothed, norm.detach())
