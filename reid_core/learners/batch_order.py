"""Batch-order helpers shared by the learners' memories (their updates replay a batch in order)."""

from __future__ import annotations

import torch


def occurrence(labels: torch.Tensor) -> torch.Tensor:
    """For each position, how many earlier positions carry the same label (0 for the first)."""
    order = torch.sort(labels, stable=True).indices
    sorted_labels = labels[order]
    positions = torch.arange(len(labels), device=labels.device)
    run_start = torch.ones_like(sorted_labels, dtype=torch.bool)
    run_start[1:] = sorted_labels[1:] != sorted_labels[:-1]
    first_of_run = torch.cummax(torch.where(run_start, positions, 0), dim=0).values
    out = torch.empty_like(positions)
    out[order] = positions - first_of_run
    return out


def momentum_update_in_order(table: torch.Tensor, slots: torch.Tensor, feats: torch.Tensor, momentum: float) -> None:
    """``table[s] <- normalise(m table[s] + (1 - m) f)`` for each (slot, feature) in batch order, in place.

    Vectorised over first, second... occurrences of a slot: one sample after the other,
    as cluster-contrast does inside its autograd backward. `feats` are unit rows.
    """
    occ = occurrence(slots)
    for k in range(int(occ.max()) + 1 if len(slots) else 0):
        pick = occ == k
        rows = slots[pick]
        moved = momentum * table[rows] + (1.0 - momentum) * feats[pick]
        table[rows] = torch.nn.functional.normalize(moved, dim=1)
