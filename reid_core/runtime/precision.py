"""Mixed precision and loader settings for CUDA edges (`train.amp`); CPU runs stay exactly as they were.

``autocast_dtype`` is the one decision (a pure function of the setting and the
device): bf16/fp16 autocast on CUDA only. On a CPU device every helper here is a
no-op, so results stay bit-identical whatever ``train.amp`` says (logged once).
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable
from typing import ContextManager

import torch

logger = logging.getLogger(__name__)

AMP_MODES = ("off", "bf16", "fp16")
_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}
_warned_cpu = False


def autocast_dtype(amp: str, device: torch.device) -> torch.dtype | None:
    """The autocast dtype for `amp` on `device`, or None for plain fp32 (off, or not CUDA)."""
    if amp not in AMP_MODES:
        raise ValueError(f"train.amp: unknown {amp!r}, choose one of {AMP_MODES}")
    if amp == "off" or device.type != "cuda":
        return None
    return _DTYPES[amp]


def amp_context(amp: str, device: torch.device) -> Callable[[], ContextManager]:
    """A factory of the context to run forward passes in (autocast, or a null context)."""
    global _warned_cpu
    dtype = autocast_dtype(amp, device)
    if dtype is None:
        if amp != "off" and not _warned_cpu:
            logger.info("train.amp=%s applies only to CUDA devices; %s runs in fp32", amp, device)
            _warned_cpu = True
        return contextlib.nullcontext
    return lambda: torch.autocast("cuda", dtype=dtype)


def grad_scaler(amp: str, device: torch.device) -> torch.amp.GradScaler:
    """A GradScaler active for fp16 on CUDA only (bf16 has fp32's range and needs none)."""
    enabled = autocast_dtype(amp, device) == torch.float16
    return torch.amp.GradScaler("cuda", enabled=enabled)


def loader_options(device: torch.device, num_workers: int) -> dict:
    """DataLoader keywords for `device`: pinned memory and kept-alive workers on CUDA only."""
    cuda = device.type == "cuda"
    return {"pin_memory": cuda, "persistent_workers": cuda and num_workers > 0}


def to_device_images(images: torch.Tensor, device: torch.device) -> torch.Tensor:
    """Move a batch to `device`; channels_last on CUDA (faster convolutions with autocast)."""
    if device.type != "cuda":
        return images.to(device)
    return images.to(device, non_blocking=True, memory_format=torch.channels_last)


def prepare_model(model: torch.nn.Module, device: torch.device) -> torch.nn.Module:
    """Move `model` to `device`; channels_last on CUDA only."""
    model.to(device)
    if device.type == "cuda":
        model.to(memory_format=torch.channels_last)
    return model
