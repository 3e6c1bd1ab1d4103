"""Local SGD on pseudo-labels with the exemplar-memory loss and Personalized Epoch."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Sequence

import numpy as np
import torch
from torch.utils.data import DataLoader

from reid_core.config.schema import EarlyStopConfig, ImageConfig, TrainConfig
from reid_core.data.images import UnlabeledImageDataset, collate_skip_none
from reid_core.data.transforms import train_transform
from reid_core.personalization.personalized_epoch import EarlyStopper
from reid_core.runtime.knn import faiss_worker_init
from reid_core.learners.buc.exemplar_memory import ExemplarMemory
from reid_core.models import ReIDNet, param_groups
from reid_core.runtime.precision import amp_context, grad_scaler, loader_options, prepare_model, to_device_images

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TrainResult:
    """What one local training stage did (scalars only: these are reported)."""

    epochs: int
    loss: float
    precision: float
    stopped_early: bool
    images_seen: int
    seconds: float


def seed_everything(seed: int) -> torch.Generator:
    """Seed torch and numpy; return a generator for the data order."""
    torch.manual_seed(seed)
    np.random.seed(seed % (2**32))
    gen = torch.Generator()
    gen.manual_seed(seed)
    return gen


def train_epochs(
    model: ReIDNet,
    paths: Sequence[str],
    labels: np.ndarray,
    memory: ExemplarMemory,
    *,
    lr: float,
    max_epochs: int,
    train_cfg: TrainConfig,
    image_cfg: ImageConfig,
    stop_cfg: EarlyStopConfig,
    device: torch.device,
    seed: int,
    desc: str = "train",
    partners: np.ndarray | None = None,
) -> TrainResult:
    """Train up to `max_epochs`; the PE rule in `stop_cfg` may stop after any epoch."""
    if len(paths) != len(labels):
        raise ValueError(f"{len(paths)} images but {len(labels)} pseudo-labels")
    # partner_labels[i]: the cluster of image i's cross-camera partner (-1: none, or the same cluster)
    partner_labels = None
    if partners is not None and train_cfg.cross_camera_weight > 0:
        if len(partners) != len(labels):
            raise ValueError(f"{len(paths)} images but {len(partners)} cross-camera partners")
        partner_labels = np.where(partners >= 0, labels[np.maximum(partners, 0)], -1)
        partner_labels[partner_labels == labels] = -1
        partner_labels = torch.as_tensor(partner_labels, dtype=torch.long)
    if len(labels) and (int(labels.min()) < 0 or int(labels.max()) >= memory.num_clusters):
        raise ValueError(f"pseudo-labels must lie in [0, {memory.num_clusters}), got "
                         f"[{int(labels.min())}, {int(labels.max())}]")
    gen = seed_everything(seed)
    dataset = UnlabeledImageDataset(paths, labels.tolist(), train_transform(image_cfg.height, image_cfg.width, image_cfg.photometric))
    loader = DataLoader(
        dataset,
        batch_size=image_cfg.batch_size,
        shuffle=True,
        drop_last=len(dataset) > image_cfg.batch_size,  # BatchNorm needs > 1 sample
        num_workers=image_cfg.num_workers,
        worker_init_fn=faiss_worker_init,  # forked workers hang in faiss otherwise
        collate_fn=collate_skip_none,
        generator=gen,
        **loader_options(device, image_cfg.num_workers),
    )
    optimizer = torch.optim.SGD(
        param_groups(model, lr, train_cfg.backbone_lr_mult),
        lr=lr,
        momentum=train_cfg.momentum,
        weight_decay=train_cfg.weight_decay,
        nesterov=train_cfg.nesterov,
    )
    autocast = amp_context(train_cfg.amp, device)
    scaler = grad_scaler(train_cfg.amp, device)
    stopper = EarlyStopper(stop_cfg, max_epochs)
    prepare_model(model, device).train()
    memory.to(device)
    start, seen, last_loss, last_prec, stopped = time.time(), 0, float("nan"), 0.0, False
    progress = _progress(max_epochs * len(loader), desc, train_cfg.progress)
    for _epoch in range(max_epochs):
        # Per-batch loss and hits stay tensors until the epoch ends: no device sync per batch.
        batch_loss, batch_correct, batch_size = [], [], []
        for batch in loader:
            if batch is None:  # every image of the batch failed to decode
                continue
            images, targets, index = batch
            images, targets = to_device_images(images, device), targets.to(device, non_blocking=True)
            with autocast():
                embedding, _pooled = model(images)
            embedding = embedding.float()  # the memory loss and update in fp32 (no-op without amp)
            extra = partner_labels[index].to(device) if partner_labels is not None else None
            loss, logits = memory.loss(embedding, targets, extra, train_cfg.cross_camera_weight, check=False)
            optimizer.zero_grad(set_to_none=True)
            scaler.scale(loss).backward()
            scaler.step(optimizer)
            scaler.update()
            memory.update(embedding.detach(), targets, check=False)
            batch_loss.append(loss.detach())
            batch_correct.append((logits.detach().argmax(dim=1) == targets).sum())
            batch_size.append(len(targets))
            progress.update(1)
        tot_loss, tot_n, tot_correct = _close_epoch(stopper, batch_loss, batch_correct, batch_size)
        seen += tot_n
        last_loss = tot_loss / max(tot_n, 1)
        last_prec = tot_correct / max(tot_n, 1)
        progress.set_postfix(loss=f"{last_loss:.3f}", prec=f"{last_prec:.2f}")
        if stopper.end_epoch():
            stopped = stopper.epochs_run < max_epochs
            break
    progress.close()
    return TrainResult(
        epochs=stopper.epochs_run,
        loss=last_loss,
        precision=last_prec,
        stopped_early=stopped,
        images_seen=seen,
        seconds=time.time() - start,
    )


def _close_epoch(stopper: EarlyStopper, losses: list[torch.Tensor], correct: list[torch.Tensor],
                 sizes: list[int]) -> tuple[float, int, int]:
    """Feed the epoch's batches to the stopper (one device sync); return loss sum, images, hits."""
    if not sizes:
        return 0.0, 0, 0
    loss_values = torch.stack(losses).tolist()
    correct_values = [int(c) for c in torch.stack(correct).tolist()]
    tot_loss = 0.0
    for loss, hits, size in zip(loss_values, correct_values, sizes):
        stopper.update_batch(hits, size, loss)
        tot_loss += loss * size  # same order and values as summing per batch
    return tot_loss, sum(sizes), sum(correct_values)


class _NoProgress:
    def update(self, n: int) -> None: ...
    def set_postfix(self, **kw: str) -> None: ...
    def close(self) -> None: ...


def _progress(total: int, desc: str, enabled: bool):
    if not enabled:
        return _NoProgress()
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, leave=False, dynamic_ncols=True)
