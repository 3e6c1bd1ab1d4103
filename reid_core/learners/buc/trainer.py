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
    )
    optimizer = torch.optim.SGD(
        param_groups(model, lr, train_cfg.backbone_lr_mult),
        lr=lr,
        momentum=train_cfg.momentum,
        weight_decay=train_cfg.weight_decay,
        nesterov=train_cfg.nesterov,
    )
    stopper = EarlyStopper(stop_cfg, max_epochs)
    model.to(device).train()
    memory.to(device)
    start, seen, last_loss, last_prec, stopped = time.time(), 0, float("nan"), 0.0, False
    progress = _progress(max_epochs * len(loader), desc, train_cfg.progress)
    for _epoch in range(max_epochs):
        tot_loss, tot_n, tot_correct = 0.0, 0, 0
        for batch in loader:
            if batch is None:  # every image of the batch failed to decode
                continue
            images, targets, index = batch
            images, targets = images.to(device), targets.to(device)
            embedding, _pooled = model(images)
            extra = partner_labels[index].to(device) if partner_labels is not None else None
            loss, logits = memory.loss(embedding, targets, extra, train_cfg.cross_camera_weight)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            memory.update(embedding.detach(), targets)
            correct, size = memory.precision(logits.detach(), targets)
            stopper.update_batch(correct, size, float(loss.item()))
            tot_loss += float(loss.item()) * size
            tot_n += size
            tot_correct += correct
            progress.update(1)
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


class _NoProgress:
    def update(self, n: int) -> None: ...
    def set_postfix(self, **kw: str) -> None: ...
    def close(self) -> None: ...


def _progress(total: int, desc: str, enabled: bool):
    if not enabled:
        return _NoProgress()
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, leave=False, dynamic_ncols=True)
