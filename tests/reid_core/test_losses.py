"""Tests for reid_core.learners.buc.exemplar_memory: the exemplar memory of BUC's repelled loss."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from reid_core.learners.buc.exemplar_memory import ExemplarMemory, precision


def two_cluster_memory() -> ExemplarMemory:
    memory = ExemplarMemory(num_clusters=2, dim=2, temperature=0.1)
    memory.V.copy_(torch.tensor([[1.0, 0.0], [0.0, 1.0]]))
    return memory


def test_loss_value_hand_computed() -> None:
    """emb (0.6, 0.8), label 0 -> logits (6, 8) -> loss = log(1 + e^2)."""
    # Prepare
    memory = two_cluster_memory()
    emb = torch.tensor([[0.6, 0.8]], requires_grad=True)
    # Execute
    loss, logits = memory.loss(emb, torch.tensor([0]))
    # Assert
    torch.testing.assert_close(logits, torch.tensor([[6.0, 8.0]]))
    assert loss.item() == pytest.approx(math.log(1 + math.e ** 2), rel=1e-6)


def test_gradient_reaches_embeddings_not_memory() -> None:
    memory = two_cluster_memory()
    emb = torch.tensor([[0.6, 0.8]], requires_grad=True)
    loss, _ = memory.loss(emb, torch.tensor([0]))
    loss.backward()
    # d loss / d emb = (softmax - onehot) @ V / tau
    soft = torch.softmax(torch.tensor([6.0, 8.0]), 0)
    expected = (soft - torch.tensor([1.0, 0.0])) @ memory.V / 0.1
    torch.testing.assert_close(emb.grad[0], expected)
    assert not memory.V.requires_grad and memory.V.grad is None
    assert list(memory.parameters()) == []
    assert "V" in memory.state_dict()


def test_update_rule_values() -> None:
    """V0 = (1, 0), v = (0, 1) -> normalize((0.5, 0.5)) = (1, 1) / sqrt 2; slot 1 untouched."""
    memory = two_cluster_memory()
    memory.update(torch.tensor([[0.0, 1.0]]), torch.tensor([0]))
    s = 1 / math.sqrt(2)
    torch.testing.assert_close(memory.V, torch.tensor([[s, s], [0.0, 1.0]]))


def test_update_duplicates_follow_batch_order() -> None:
    """Same result as BUC's sequential per-sample loop, including repeated labels."""
    # Prepare
    torch.manual_seed(0)
    memory = ExemplarMemory(num_clusters=4, dim=5)
    memory.init_from_features(torch.randn(8, 5), torch.tensor([0, 1, 2, 3, 0, 1, 2, 3]))
    reference = memory.V.clone()
    emb = F.normalize(torch.randn(7, 5), dim=1)
    labels = torch.tensor([2, 0, 2, 3, 2, 0, 1])
    for v, y in zip(emb, labels):
        reference[y] = F.normalize((reference[y] + v) / 2, dim=0)
    # Execute
    memory.update(emb, labels)
    # Assert
    torch.testing.assert_close(memory.V, reference)


def test_update_before_backward_fails_loudly() -> None:
    memory = two_cluster_memory()
    emb = torch.tensor([[0.6, 0.8]], requires_grad=True)
    loss, _ = memory.loss(emb, torch.tensor([0]))
    memory.update(emb.detach(), torch.tensor([0]))
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        loss.backward()


def test_init_from_features_and_zeros() -> None:
    features = np.array([[1.0, 0.0], [0.0, 1.0], [3.0, 4.0]], dtype=np.float32)
    memory = ExemplarMemory(num_clusters=3, dim=2)
    memory.init_from_features(features, np.array([0, 0, 1]))
    s = 1 / math.sqrt(2)
    torch.testing.assert_close(memory.V, torch.tensor([[s, s], [0.6, 0.8], [0.0, 0.0]]))
    memory.init_zeros()
    assert torch.all(memory.V == 0)


def test_numpy_round_trip() -> None:
    memory = two_cluster_memory()
    array = memory.to_numpy()
    assert array.dtype == np.float32 and array.shape == (2, 2)
    restored = ExemplarMemory.from_numpy(array, temperature=0.05)
    torch.testing.assert_close(restored.V, memory.V)
    assert restored.temperature == 0.05
    array[0, 0] = 5.0  # a copy, not a view
    assert memory.V[0, 0] == 1.0


def test_precision_counts_top1() -> None:
    logits = torch.tensor([[1.0, 2.0], [3.0, 0.0], [0.0, 1.0]])
    assert precision(logits, torch.tensor([1, 0, 0])) == (2, 3)
    assert ExemplarMemory.precision(logits, torch.tensor([1, 0, 1])) == (3, 3)


@pytest.mark.parametrize("emb, labels, message", [
    (torch.zeros(2, 3), torch.tensor([0, 1]), "shape"),
    (torch.zeros(2, 2), torch.tensor([0, 2]), r"\[0, 2\)"),
    (torch.zeros(2, 2), torch.tensor([0]), "labels must have shape"),
])
def test_bad_input_raises(emb: torch.Tensor, labels: torch.Tensor, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        two_cluster_memory().loss(emb, labels)


def test_from_numpy_rejects_nan() -> None:
    with pytest.raises(ValueError, match="NaN"):
        ExemplarMemory.from_numpy(np.array([[np.nan, 0.0]]))


def test_partner_target_mixes_two_cross_entropies() -> None:
    """logits (6, 8): own label 0, partner 1, w = 0.25 -> 0.75 * log(1+e^2) + 0.25 * log(1+e^-2)."""
    memory = two_cluster_memory()
    emb = torch.tensor([[0.6, 0.8], [0.6, 0.8]])
    loss, _ = memory.loss(emb, torch.tensor([0, 0]), torch.tensor([1, -1]), partner_weight=0.25)
    with_partner = 0.75 * math.log(1 + math.e ** 2) + 0.25 * math.log(1 + math.e ** -2)
    without = math.log(1 + math.e ** 2)  # -1: no partner, own target only
    assert loss.item() == pytest.approx((with_partner + without) / 2, rel=1e-6)
    plain, _ = memory.loss(emb, torch.tensor([0, 0]), torch.tensor([1, 1]), partner_weight=0.0)
    assert plain.item() == pytest.approx(without, rel=1e-6)
    with pytest.raises(ValueError, match="partner_labels"):
        memory.loss(emb, torch.tensor([0, 0]), torch.tensor([1]), partner_weight=0.5)
