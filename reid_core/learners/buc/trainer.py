"""Local SGD on pseudo-labels with the exemplar-memory loss and Personalized Epoch."""

from __future__ import annotations

import logging
from typing import Sequence

import numpy as np
import torch
from torch.utils.data import DataLoader

from reid_core.config.schema import EarlyStopConfig, ImageConfig, TrainConfig
from reid_core.data.images import UnlabeledImageDataset, collate_skip_none
from reid_core.data.transforms import train_transform
from reid_core.learners.buc.exemplar_memory import ExemplarMemory
from reid_core.learners.epochs import EpochsResult, run_epochs
from reid_core.models import ReIDNet, param_groups
from reid_core.runtime.knn import faiss_worker_init
from reid_core.runtime.precision import loader_options

log = logging.getLogger(__name__)


TrainResult = EpochsResult  # what one local training stage did


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
    memory.to(device)

    def objective(embedding: torch.Tensor, targets: torch.Tensor, index: torch.Tensor):
        targets = targets.to(device, non_blocking=True)
        extra = partner_labels[index].to(device) if partner_labels is not None else None
        loss, logits = memory.loss(embedding, targets, extra, train_cfg.cross_camera_weight, check=False)

        def after_step():
            memory.update(embedding.detach(), targets, check=False)
            return (logits.detach().argmax(dim=1) == targets).sum(), len(targets)
        return loss, after_step

    return run_epochs(model, optimizer, epoch_batches=lambda _epoch: loader, objective=objective,
                      max_epochs=max_epochs, stop_cfg=stop_cfg, amp=train_cfg.amp, device=device,
                      progress=train_cfg.progress, progress_total=max_epochs * len(loader), desc=desc)
