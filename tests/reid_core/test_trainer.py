"""`train_epochs` computes what the plain per-batch loop computed; amp leaves CPU runs bit-identical."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from reid_core.config.schema import EarlyStopConfig, ImageConfig, ModelConfig, TrainConfig
from reid_core.data.images import UnlabeledImageDataset, collate_skip_none
from reid_core.data.transforms import train_transform
from lab.bench.synth_images import write_split
from reid_core.learners.buc.exemplar_memory import ExemplarMemory
from reid_core.learners.buc.trainer import seed_everything, train_epochs
from reid_core.models import build_model, param_groups
from reid_core.personalization.personalized_epoch import EarlyStopper

CPU = torch.device("cpu")
IMAGES = ImageConfig(height=32, width=16, batch_size=8, num_workers=0)


def reference_train(model, paths, labels, memory, lr, max_epochs, train_cfg, image_cfg, stop_cfg, seed,
                    partners=None):
    """The trainer as it was before the speed work: `.item()` per batch, checks per call."""
    partner_labels = None
    if partners is not None and train_cfg.cross_camera_weight > 0:
        partner_labels = np.where(partners >= 0, labels[np.maximum(partners, 0)], -1)
        partner_labels[partner_labels == labels] = -1
        partner_labels = torch.as_tensor(partner_labels, dtype=torch.long)
    gen = seed_everything(seed)
    dataset = UnlabeledImageDataset(paths, labels.tolist(), train_transform(image_cfg.height, image_cfg.width))
    loader = DataLoader(dataset, batch_size=image_cfg.batch_size, shuffle=True,
                        drop_last=len(dataset) > image_cfg.batch_size, num_workers=0,
                        collate_fn=collate_skip_none, generator=gen)
    optimizer = torch.optim.SGD(param_groups(model, lr, train_cfg.backbone_lr_mult), lr=lr,
                                momentum=train_cfg.momentum, weight_decay=train_cfg.weight_decay,
                                nesterov=train_cfg.nesterov)
    stopper = EarlyStopper(stop_cfg, max_epochs)
    model.train()
    losses = []
    for _ in range(max_epochs):
        tot_loss, tot_n = 0.0, 0
        for images, targets, index in loader:
            embedding, _ = model(images)
            extra = partner_labels[index] if partner_labels is not None else None
            loss, logits = memory.loss(embedding, targets, extra, train_cfg.cross_camera_weight)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            memory.update(embedding.detach(), targets)
            correct, size = memory.precision(logits.detach(), targets)
            stopper.update_batch(correct, size, float(loss.item()))
            tot_loss += float(loss.item()) * size
            tot_n += size
        losses.append(tot_loss / tot_n)
        if stopper.end_epoch():
            break
    return losses, stopper


@pytest.fixture(scope="module")
def images(tmp_path_factory):
    return write_split(tmp_path_factory.mktemp("imgs"), 24, 32, 16, num_cameras=2)


def _run(images, train_cfg, partners=None, stop_cfg=EarlyStopConfig(), epochs=2, reference=False):
    torch.manual_seed(0)
    model = build_model(ModelConfig(arch="tiny", embed_dim=16, weights=None, device="cpu"))
    labels = np.arange(len(images)) // 2  # clusters of two
    memory = ExemplarMemory(int(labels.max()) + 1, model.embed_dim_out, train_cfg.temperature)
    if reference:
        losses, stopper = reference_train(model, images, labels, memory, 0.05, epochs, train_cfg, IMAGES,
                                          stop_cfg, seed=3, partners=partners)
        return model, memory, losses, stopper.epochs_run
    result = train_epochs(model, images, labels, memory, lr=0.05, max_epochs=epochs, train_cfg=train_cfg,
                          image_cfg=IMAGES, stop_cfg=stop_cfg, device=CPU, seed=3, partners=partners)
    return model, memory, result, result.epochs


def _same_model(a, b):
    for (name, x), y in zip(a.state_dict().items(), b.state_dict().values()):
        assert torch.equal(x, y), name


@pytest.mark.parametrize("cross", [0.0, 0.3])
def test_trainer_matches_the_per_batch_reference_bit_for_bit(images, cross):
    cfg = TrainConfig(progress=False, cross_camera_weight=cross)
    partners = np.roll(np.arange(len(images)), 3)
    partners[::5] = -1
    model, memory, result, _ = _run(images, cfg, partners=partners)
    ref_model, ref_memory, ref_losses, _ = _run(images, cfg, partners=partners, reference=True)
    _same_model(model, ref_model)
    assert torch.equal(memory.V, ref_memory.V)
    assert result.loss == ref_losses[-1]


def test_trainer_stops_early_like_the_reference(images):
    cfg = TrainConfig(progress=False)
    stop = EarlyStopConfig(rule="plateau", patience=1, min_delta=10.0)  # any epoch counts as no progress
    _, _, result, epochs = _run(images, cfg, stop_cfg=stop, epochs=4)
    _, _, _, ref_epochs = _run(images, cfg, stop_cfg=stop, epochs=4, reference=True)
    assert epochs == ref_epochs == 2 and result.stopped_early


@pytest.mark.parametrize("amp", ["bf16", "fp16"])
def test_amp_leaves_a_cpu_run_bit_identical(images, amp):
    off_model, off_memory, off_result, _ = _run(images, TrainConfig(progress=False))
    amp_model, amp_memory, amp_result, _ = _run(images, TrainConfig(progress=False, amp=amp))
    _same_model(off_model, amp_model)
    assert torch.equal(off_memory.V, amp_memory.V) and off_result.loss == amp_result.loss


def test_trainer_refuses_labels_outside_the_memory(images):
    model = build_model(ModelConfig(arch="tiny", embed_dim=16, weights=None))
    memory = ExemplarMemory(3, 16)
    with pytest.raises(ValueError, match=r"pseudo-labels must lie in \[0, 3\)"):
        train_epochs(model, images, np.arange(len(images)), memory, lr=0.1, max_epochs=1,
                     train_cfg=TrainConfig(progress=False), image_cfg=IMAGES, stop_cfg=EarlyStopConfig(),
                     device=CPU, seed=0)


def test_training_changes_the_model(images):
    """Guard: the bit-for-bit comparisons above could not pass by training nothing."""
    trained, _, _, _ = _run(images, TrainConfig(progress=False), reference=True)
    torch.manual_seed(0)
    untrained = build_model(ModelConfig(arch="tiny", embed_dim=16, weights=None))
    with pytest.raises(AssertionError):
        _same_model(trained, untrained)
