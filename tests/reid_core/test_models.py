"""Tests for reid_core.models and reid_core.runtime.device."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import torch
from torchvision import models as tvm

from reid_core.config.schema import ModelConfig
from reid_core.runtime.device import resolve_device
from reid_core.models import build_model, param_groups

SHARED = Path(__file__).resolve().parents[2].parent / "shared"
MOBILENET_WEIGHTS = SHARED / "weights" / "mobilenet_v2_imagenet_features.pt"


@pytest.mark.parametrize("arch, feature_dim", [
    ("tiny", 256), ("resnet18", 512), ("mobilenet_v2", 1280), ("resnet50", 2048),
])
def test_output_shapes_and_norms(arch: str, feature_dim: int) -> None:
    # Prepare
    torch.manual_seed(0)
    model = build_model(ModelConfig(arch=arch, embed_dim=64, dropout=0.5)).eval()
    # Execute
    with torch.no_grad():
        embedding, pooled = model(torch.randn(2, 3, 64, 32))
    # Assert
    assert model.feature_dim == feature_dim and model.embed_dim_out == 64
    assert embedding.shape == (2, 64) and pooled.shape == (2, feature_dim)
    torch.testing.assert_close(embedding.norm(dim=1), torch.ones(2))
    torch.testing.assert_close(pooled.norm(dim=1), torch.ones(2))


def test_no_head_embedding_is_pooled_feature() -> None:
    model = build_model(ModelConfig(arch="tiny", embed_dim=0)).eval()
    with torch.no_grad():
        embedding, pooled = model(torch.randn(3, 3, 32, 16))
    assert model.embed_dim_out == model.feature_dim == 256
    assert model.head_parameters() == []
    torch.testing.assert_close(embedding, pooled)


def test_head_init_follows_paper() -> None:
    model = build_model(ModelConfig(arch="tiny", embed_dim=32))
    assert model.embed is not None and model.embed_bn is not None
    assert torch.all(model.embed.bias == 0)
    assert torch.all(model.embed_bn.weight == 1) and torch.all(model.embed_bn.bias == 0)


@pytest.mark.parametrize("embed_dim", [0, 32])
def test_dropout_only_in_train_mode(embed_dim: int) -> None:
    """Eval is deterministic; with only dropout on, entries are 0 or x / (1 - p)."""
    # Prepare
    torch.manual_seed(0)
    model = build_model(ModelConfig(arch="tiny", embed_dim=embed_dim, dropout=0.5))
    images = torch.randn(8, 3, 32, 16)
    model.eval()
    # Execute
    with torch.no_grad():
        first, _ = model(images)
        second, _ = model(images)
        model.dropout.train()
        dropped, pooled = model(images)
    # Assert
    torch.testing.assert_close(first, second)
    alive = first != 0
    kept = dropped != 0
    torch.testing.assert_close(dropped[kept], 2 * first[kept])
    assert 0.35 < 1 - kept[alive].float().mean().item() < 0.65  # about half dropped
    torch.testing.assert_close(pooled.norm(dim=1), torch.ones(8))  # pooled never dropped
    model.train()
    assert model.dropout.training
    model.eval()
    assert not model.dropout.training


@pytest.mark.parametrize("embed_dim", [0, 32])
def test_param_groups_disjoint_and_complete(embed_dim: int) -> None:
    model = build_model(ModelConfig(arch="resnet18", embed_dim=embed_dim))
    groups = param_groups(model, lr=0.1, backbone_lr_mult=0.1)
    ids = [id(p) for g in groups for p in g["params"]]
    assert len(ids) == len(set(ids))
    assert set(ids) == {id(p) for p in model.parameters()}
    by_name = {g["name"]: g for g in groups}
    assert by_name["backbone"]["lr"] == pytest.approx(0.01)
    assert ("head" in by_name) == (embed_dim > 0)
    if embed_dim:
        assert by_name["head"]["lr"] == pytest.approx(0.1)
    torch.optim.SGD(groups, lr=0.1, momentum=0.9)  # accepted by an optimizer


def test_unknown_arch_lists_valid_ones() -> None:
    with pytest.raises(ValueError, match="resnet50.*resnet18.*mobilenet_v2.*tiny"):
        build_model(ModelConfig(arch="vgg16"))


@pytest.mark.shared
def test_loads_shared_mobilenet_weights() -> None:
    if not MOBILENET_WEIGHTS.is_file():
        pytest.skip(f"needs {MOBILENET_WEIGHTS}")
    state = torch.load(MOBILENET_WEIGHTS, map_location="cpu", weights_only=True)
    cfg = ModelConfig(arch="mobilenet_v2", embed_dim=0, weights=str(MOBILENET_WEIGHTS))
    model = build_model(cfg)
    torch.testing.assert_close(model.trunk[0][0].weight, state["features.0.0.weight"])
    torch.testing.assert_close(model.trunk[18][1].running_var, state["features.18.1.running_var"])


def test_weights_with_wrong_shape_raise(tmp_path: Path) -> None:
    state = tvm.resnet18(weights=None).state_dict()
    state["layer1.0.conv1.weight"] = torch.zeros(8, 8, 3, 3)
    path = tmp_path / "bad.pt"
    torch.save(state, path)
    with pytest.raises(ValueError, match="shape mismatch.*layer1.0.conv1.weight"):
        build_model(ModelConfig(arch="resnet18", weights=str(path)))


def test_weights_of_another_arch_raise(tmp_path: Path) -> None:
    path = tmp_path / "resnet18.pt"
    torch.save(tvm.resnet18(weights=None).state_dict(), path)
    with pytest.raises(ValueError, match="shares no key"):
        build_model(ModelConfig(arch="mobilenet_v2", weights=str(path)))


def test_weights_missing_backbone_entries_raise(tmp_path: Path) -> None:
    state = tvm.resnet18(weights=None).state_dict()
    del state["layer4.1.bn2.weight"]
    path = tmp_path / "partial.pt"
    torch.save(state, path)
    with pytest.raises(ValueError, match="lacks 1 backbone"):
        build_model(ModelConfig(arch="resnet18", weights=str(path)))


def test_weights_file_not_found() -> None:
    with pytest.raises(FileNotFoundError, match="weights file not found"):
        build_model(ModelConfig(arch="resnet18", weights="/nonexistent/w.pt"))


def test_torchvision_weights_absent_fail_fast(tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    start = time.perf_counter()
    with pytest.raises(FileNotFoundError, match="resnet50-0676ba61.pth.*never downloads"):
        build_model(ModelConfig(arch="resnet50", weights="torchvision"))
    assert time.perf_counter() - start < 10
    assert not any(tmp_path.rglob("*.pth"))


def test_torchvision_weights_loaded_from_hub_cache(tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    cache = tmp_path / "hub" / "checkpoints"
    cache.mkdir(parents=True)
    state = tvm.resnet18(weights=None).state_dict()
    torch.save(state, cache / "resnet18-f37072fd.pth")
    model = build_model(ModelConfig(arch="resnet18", weights="torchvision"))
    torch.testing.assert_close(model.trunk[0].weight, state["conv1.weight"])


def test_tiny_rejects_weights() -> None:
    with pytest.raises(ValueError, match="no pretrained weights"):
        build_model(ModelConfig(arch="tiny", weights="torchvision"))


def test_resolve_device() -> None:
    assert resolve_device("cpu") == torch.device("cpu")
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert resolve_device("auto").type == expected
    with pytest.raises(ValueError, match="unknown device"):
        resolve_device("gpu0")
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="CUDA is not available"):
            resolve_device("cuda:0")
