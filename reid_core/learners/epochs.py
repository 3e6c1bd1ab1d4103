"""The one loop of local epochs both learners train with: loader batches, mixed precision, progress, PE.

A learner supplies what differs: the batches of each epoch (BUC: one shuffled loader;
cluster-contrast: re-cluster, then P x K batches) and its objective (the memory loss of a
forward pass, and what to do after the optimizer step). Mixed precision (`train.amp`,
CUDA only), channels-last batches and Personalized Epoch's stop rule then reach both
learners from here. On a CPU every precision helper is a no-op: results stay exactly fp32.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import torch

from reid_core.config.schema import EarlyStopConfig
from reid_core.personalization.personalized_epoch import EarlyStopper
from reid_core.runtime.precision import amp_context, grad_scaler, prepare_model, to_device_images

# (embedding in fp32, the batch's pseudo-labels as loaded, the batch's image indices)
#   -> (loss, after_step), after_step() -> (correct top-1 predictions, images) once the optimizer stepped
Objective = Callable[[torch.Tensor, torch.Tensor, torch.Tensor],
                     tuple[torch.Tensor, Callable[[], tuple[torch.Tensor | int, int]]]]
# epoch index -> the epoch's batches (images, pseudo-labels, indices), or None: nothing to train this epoch
EpochBatches = Callable[[int], Iterable | None]


@dataclass(frozen=True)
class EpochsResult:
    """What one round's local epochs did (scalars only: these are reported)."""

    epochs: int
    loss: float
    precision: float
    stopped_early: bool
    images_seen: int
    seconds: float


def run_epochs(model: torch.nn.Module, optimizer: torch.optim.Optimizer, *, epoch_batches: EpochBatches,
               objective: Objective, max_epochs: int, stop_cfg: EarlyStopConfig, amp: str,
               device: torch.device, progress: bool = False, progress_total: int | None = None,
               desc: str = "train", epoch_done: Callable[[int, float, float], None] | None = None) -> EpochsResult:
    """Train up to `max_epochs`; the PE rule in `stop_cfg` may stop after any epoch."""
    autocast = amp_context(amp, device)
    scaler = grad_scaler(amp, device)
    stopper = EarlyStopper(stop_cfg, max_epochs)
    prepare_model(model, device)
    start, seen, last_loss, last_prec = time.time(), 0, float("nan"), 0.0
    bar = _progress(progress_total, desc, progress)
    for epoch in range(max_epochs):
        batches = epoch_batches(epoch)  # may extract features (eval mode): train mode after it
        # Per-batch loss and hits stay tensors until the epoch ends: no device sync per batch.
        losses: list[torch.Tensor] = []
        hits: list[torch.Tensor | int] = []
        sizes: list[int] = []
        if batches is not None:
            model.train()
            for batch in batches:
                if batch is None:  # every image of the batch failed to decode
                    continue
                images, targets, index = batch
                with autocast():
                    embedding, _pooled = model(to_device_images(images, device))
                # the memory loss and update in fp32 (a no-op without amp)
                loss, after_step = objective(embedding.float(), targets, index)
                optimizer.zero_grad(set_to_none=True)
                scaler.scale(loss).backward()
                scaler.step(optimizer)
                scaler.update()
                correct, size = after_step()
                losses.append(loss.detach())
                hits.append(correct)
                sizes.append(size)
                bar.update(1)
        tot_loss, tot_n, tot_correct = _close_epoch(stopper, losses, hits, sizes)
        seen += tot_n
        if tot_n:
            last_loss, last_prec = tot_loss / tot_n, tot_correct / tot_n
        bar.set_postfix(loss=f"{last_loss:.3f}", prec=f"{last_prec:.2f}")
        if epoch_done is not None:
            epoch_done(epoch, last_loss, last_prec)
        if stopper.end_epoch():
            break
    bar.close()
    return EpochsResult(epochs=stopper.epochs_run, loss=last_loss, precision=last_prec,
                        stopped_early=stopper.stopped_early, images_seen=seen, seconds=time.time() - start)


def _close_epoch(stopper: EarlyStopper, losses: list[torch.Tensor], hits: list[torch.Tensor | int],
                 sizes: list[int]) -> tuple[float, int, int]:
    """Feed the epoch's batches to the stopper (one device sync); return loss sum, images, hits."""
    if not sizes:
        return 0.0, 0, 0
    loss_values = torch.stack(losses).tolist()
    if all(isinstance(h, torch.Tensor) for h in hits):
        hit_values = [int(c) for c in torch.stack(hits).tolist()]
    else:
        hit_values = [int(c) for c in hits]
    tot_loss = 0.0
    for loss, correct, size in zip(loss_values, hit_values, sizes):
        stopper.update_batch(correct, size, loss)
        tot_loss += loss * size  # same order and values as summing per batch
    return tot_loss, sum(sizes), sum(hit_values)


class _NoProgress:
    def update(self, n: int) -> None: ...
    def set_postfix(self, **kw: str) -> None: ...
    def close(self) -> None: ...


def _progress(total: int | None, desc: str, enabled: bool):
    if not enabled:
        return _NoProgress()
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, leave=False, dynamic_ncols=True)
