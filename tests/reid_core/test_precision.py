"""`train.amp`: the autocast choice per device, GradScaler only for fp16 on CUDA, config validation."""

from __future__ import annotations

import contextlib

import pytest
import torch

from reid_core.config.settings import ConfigError, load_settings
from reid_core.runtime.precision import amp_context, autocast_dtype, grad_scaler, loader_options

CPU, CUDA = torch.device("cpu"), torch.device("cuda", 0)


@pytest.mark.parametrize("amp, device, dtype", [
    ("off", CPU, None), ("bf16", CPU, None), ("fp16", CPU, None),
    ("off", CUDA, None), ("bf16", CUDA, torch.bfloat16), ("fp16", CUDA, torch.float16),
])
def test_autocast_dtype_per_device(amp, device, dtype):
    assert autocast_dtype(amp, device) == dtype


def test_unknown_amp_names_the_key():
    with pytest.raises(ValueError, match="train.amp"):
        autocast_dtype("fp8", CPU)


def test_cpu_gets_a_null_context_and_no_scaling_logged_once(caplog):
    import reid_core.runtime.precision as precision

    precision._warned_cpu = False
    with caplog.at_level("INFO", logger="reid_core.runtime.precision"):
        assert amp_context("bf16", CPU) is contextlib.nullcontext
        assert amp_context("fp16", CPU) is contextlib.nullcontext
    assert sum("applies only to CUDA" in r.message for r in caplog.records) == 1
    assert not grad_scaler("fp16", CPU).is_enabled()


def test_loader_options_pin_and_keep_workers_on_cuda_only():
    assert loader_options(CPU, 4) == {"pin_memory": False, "persistent_workers": False}
    assert loader_options(CUDA, 4) == {"pin_memory": True, "persistent_workers": True}
    assert loader_options(CUDA, 0) == {"pin_memory": True, "persistent_workers": False}


def test_config_amp_default_off_and_validated():
    assert load_settings(["experiment=smoke"]).train.amp == "off"
    assert load_settings(["experiment=smoke", "train.amp=bf16"]).train.amp == "bf16"
    with pytest.raises(ConfigError, match=r"train\.amp"):
        load_settings(["experiment=smoke", "train.amp=half"])
