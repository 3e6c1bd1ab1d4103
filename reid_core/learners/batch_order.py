"""Batch-order helper shared by the learners' memories (their updates replay a batch in order)."""

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
