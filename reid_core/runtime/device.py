"""Pick the torch device a run uses (auto = CUDA when present, else CPU)."""

from __future__ import annotations

import logging

import torch

logger = logging.getLogger(__name__)


def resolve_device(name: str = "auto") -> torch.device:
    """Turn a device name from the config into a usable ``torch.device``.

    Parameters
    ----------
    name : str
        ``"auto"`` (CUDA if available, else CPU), ``"cpu"``, ``"cuda"`` or
        ``"cuda:N"``.

    Returns
    -------
    torch.device
        The chosen device; it is logged at INFO level.

    Raises
    ------
    ValueError
        If the name is not a device name, CUDA is requested but unavailable, or
        the CUDA index does not exist on this machine.
    """
    key = name.strip().lower()
    if key == "auto":
        device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    else:
        try:
            device = torch.device(key)
        except RuntimeError as err:
            raise ValueError(
                f"unknown device {name!r}: use auto, cpu, cuda or cuda:N"
            ) from err
        if device.type not in ("cpu", "cuda"):
            raise ValueError(f"unsupported device {name!r}: use auto, cpu, cuda or cuda:N")
        if device.type == "cuda":
            if not torch.cuda.is_available():
                raise ValueError(
                    f"device {name!r} requested but CUDA is not available on this "
                    "machine; use device=cpu or device=auto"
                )
            count = torch.cuda.device_count()
            if device.index is not None and device.index >= count:
                raise ValueError(
                    f"device {name!r} requested but this machine has {count} CUDA "
                    f"device(s) (valid: cuda:0 .. cuda:{count - 1})"
                )
    if device.type == "cuda":
        index = device.index if device.index is not None else torch.cuda.current_device()
        logger.info("using device %s (%s)", device, torch.cuda.get_device_name(index))
    else:
        logger.info("using device %s (%d threads)", device, torch.get_num_threads())
    return device
