"""Model <-> numpy dict of arrays (what crosses the network: the model, nothing else)."""

from __future__ import annotations

from typing import Mapping

import numpy as np
import torch
from torch import nn


def model_arrays(model: nn.Module) -> dict[str, np.ndarray]:
    """state_dict as CPU numpy arrays, in the model's order."""
    return {k: v.detach().cpu().numpy().copy() for k, v in model.state_dict().items()}


def load_arrays(model: nn.Module, arrays: Mapping[str, np.ndarray]) -> None:
    """Load arrays into the model; names and shapes must match exactly."""
    own = model.state_dict()
    missing = sorted(set(own) - set(arrays))
    extra = sorted(set(arrays) - set(own))
    if missing or extra:
        raise ValueError(f"model arrays differ: missing {missing[:3]}, unexpected {extra[:3]}")
    for k, v in arrays.items():
        if tuple(own[k].shape) != tuple(np.shape(v)):
            raise ValueError(f"array '{k}' has shape {np.shape(v)}, model expects {tuple(own[k].shape)}")
    model.load_state_dict({k: torch.as_tensor(np.asarray(v)) for k, v in arrays.items()})
