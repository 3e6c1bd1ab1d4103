"""ReID network: CNN trunk, global average pooling and an optional embedding head.

Mirrors FedUReID/BUC's ``BUCModel``: ``forward`` returns ``(embedding, pool5)``,
both L2-normalised; the embedding is dropped out in train mode only.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Mapping
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torchvision import models as tvm

from reid_core.config.schema import ModelConfig

logger = logging.getLogger(__name__)

TINY_CHANNELS = (32, 64, 128, 256)
# Head keys of the torchvision classifiers: a backbone-only weights file may lack them.
CLASSIFIER_PREFIXES = ("fc.", "classifier.")
# ImageNet checkpoints torchvision would download, in order of preference (V1 = the
# paper's ``pretrained=True``). Only ever looked up in the local hub cache.
TORCHVISION_WEIGHTS: dict[str, tuple[Any, ...]] = {
    "resnet50": (tvm.ResNet50_Weights.IMAGENET1K_V1, tvm.ResNet50_Weights.IMAGENET1K_V2),
    "resnet18": (tvm.ResNet18_Weights.IMAGENET1K_V1,),
    "mobilenet_v2": (
        tvm.MobileNet_V2_Weights.IMAGENET1K_V1, tvm.MobileNet_V2_Weights.IMAGENET1K_V2
    ),
}


def _resnet_trunk(net: tvm.ResNet) -> nn.Module:
    """Cut a torchvision ResNet before its average pool (pool5 = layer4 output)."""
    return nn.Sequential(
        net.conv1, net.bn1, net.relu, net.maxpool, net.layer1, net.layer2, net.layer3, net.layer4
    )


def _tiny_trunk() -> nn.Module:
    """Four stride-2 conv+BN+ReLU blocks: a CPU-fast stand-in for tests."""
    layers: list[nn.Module] = []
    in_channels = 3
    for out_channels in TINY_CHANNELS:
        layers += [
            nn.Conv2d(in_channels, out_channels, 3, stride=2, padding=1, bias=False),
            nn.BatchNorm2d(out_channels),
            nn.ReLU(inplace=True),
        ]
        in_channels = out_channels
    return nn.Sequential(*layers)


# arch -> (torchvision constructor or None, trunk cutter, pooled feature size)
ARCHITECTURES: dict[str, tuple[Callable[[], nn.Module] | None, Callable[..., nn.Module], int]] = {
    "resnet50": (lambda: tvm.resnet50(weights=None), _resnet_trunk, 2048),
    "resnet18": (lambda: tvm.resnet18(weights=None), _resnet_trunk, 512),
    "mobilenet_v2": (lambda: tvm.mobilenet_v2(weights=None), lambda net: net.features, 1280),
    "tiny": (None, _tiny_trunk, TINY_CHANNELS[-1]),
}


class ReIDNet(nn.Module):
    """Trunk -> global average pooling -> [Linear + BatchNorm1d] -> L2 norm -> dropout.

    Parameters
    ----------
    trunk : nn.Module
        Convolutional part; maps (B, 3, H, W) to (B, feature_dim, h, w).
    feature_dim : int
        Channels of the trunk output (size of the pooled feature).
    embed_dim : int
        Size of the embedding head; 0 means no head (embedding = pooled feature).
    dropout : float
        Dropout probability on the normalised embedding (train mode only).
    """

    def __init__(self, trunk: nn.Module, feature_dim: int, embed_dim: int, dropout: float) -> None:
        super().__init__()
        if embed_dim < 0:
            raise ValueError(f"embed_dim must be >= 0 (0 = no embedding head), got {embed_dim}")
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {dropout}")
        self.trunk = trunk
        self._feature_dim = feature_dim
        self._embed_dim = embed_dim
        self.embed: nn.Linear | None = None
        self.embed_bn: nn.BatchNorm1d | None = None
        if embed_dim > 0:
            self.embed = nn.Linear(feature_dim, embed_dim)
            nn.init.kaiming_normal_(self.embed.weight, mode="fan_out")
            nn.init.constant_(self.embed.bias, 0.0)
            self.embed_bn = nn.BatchNorm1d(embed_dim)
            nn.init.constant_(self.embed_bn.weight, 1.0)
            nn.init.constant_(self.embed_bn.bias, 0.0)
        self.dropout = nn.Dropout(dropout)

    @property
    def feature_dim(self) -> int:
        """Size of the pooled (pool5) feature."""
        return self._feature_dim

    @property
    def embed_dim_out(self) -> int:
        """Size of the embedding returned first by ``forward``."""
        return self._embed_dim or self._feature_dim

    def forward(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Return ``(embedding, pooled)``, both L2-normalised, shapes (B, E) and (B, F).

        In train mode the embedding is dropped out after normalisation (as in BUC),
        so its rows are no longer unit length; the pooled feature never is.
        """
        pooled = self.trunk(images).mean(dim=(2, 3))
        embedding = pooled
        if self.embed is not None and self.embed_bn is not None:
            embedding = self.embed_bn(self.embed(pooled))
        embedding = self.dropout(F.normalize(embedding, dim=1))
        return embedding, F.normalize(pooled, dim=1)

    def backbone_parameters(self) -> list[nn.Parameter]:
        """Parameters of the (pretrained) trunk: trained at ``lr * backbone_lr_mult``."""
        return list(self.trunk.parameters())

    def head_parameters(self) -> list[nn.Parameter]:
        """Parameters of the new embedding head: trained at the full ``lr``."""
        trunk_ids = {id(p) for p in self.trunk.parameters()}
        return [p for p in self.parameters() if id(p) not in trunk_ids]


def param_groups(model: ReIDNet, lr: float, backbone_lr_mult: float) -> list[dict[str, Any]]:
    """Split a model's parameters into optimizer groups (backbone at a reduced lr).

    Each group carries ``name`` and ``lr_mult`` so a schedule can later set
    ``group["lr"] = new_lr * group["lr_mult"]``. Empty groups are left out (no head
    when ``embed_dim == 0``).
    """
    groups = [
        {"name": "backbone", "params": model.backbone_parameters(), "lr_mult": backbone_lr_mult},
        {"name": "head", "params": model.head_parameters(), "lr_mult": 1.0},
    ]
    return [
        {**group, "lr": lr * group["lr_mult"]} for group in groups if group["params"]
    ]


def _torchvision_checkpoint(arch: str) -> str:
    """Find torchvision's ImageNet checkpoint for ``arch`` in the local hub cache only."""
    checkpoint_dir = os.path.join(torch.hub.get_dir(), "checkpoints")
    candidates = [os.path.basename(w.url) for w in TORCHVISION_WEIGHTS[arch]]
    for file_name in candidates:
        path = os.path.join(checkpoint_dir, file_name)
        if os.path.isfile(path):
            return path
    raise FileNotFoundError(
        f"weights='torchvision' for {arch}: no cached ImageNet checkpoint in {checkpoint_dir} "
        f"(looked for {', '.join(candidates)}). This code never downloads: copy the file "
        "there (or set TORCH_HOME), or pass a local state_dict path as weights"
    )


def _read_state_dict(path: str) -> Mapping[str, torch.Tensor]:
    """Load a plain state_dict (optionally wrapped under ``state_dict``) from a file."""
    if not os.path.isfile(path):
        raise FileNotFoundError(f"weights file not found: {path}")
    state = torch.load(path, map_location="cpu", weights_only=True)
    if isinstance(state, Mapping) and isinstance(state.get("state_dict"), Mapping):
        state = state["state_dict"]
    if not isinstance(state, Mapping):
        raise ValueError(
            f"weights file {path} does not hold a state_dict (got {type(state).__name__})"
        )
    return state


def load_backbone_weights(net: nn.Module, path: str) -> None:
    """Copy ImageNet weights from ``path`` into a torchvision model, checking the match.

    A backbone-only file may lack the classifier (``fc.*`` / ``classifier.*``) and
    BN ``num_batches_tracked`` counters; anything else missing, any shape mismatch
    or a file sharing no key with the model is an error (wrong file or wrong arch).
    """
    state = _read_state_dict(path)
    own = net.state_dict()
    matched = [k for k in state if k in own]
    if not matched:
        raise ValueError(
            f"weights file {path} shares no key with {type(net).__name__} "
            f"(file keys start {list(state)[:3]}, model keys start {list(own)[:3]}): "
            "wrong file or wrong model.arch?"
        )
    mismatched = [f"{k}: file {tuple(state[k].shape)} vs model {tuple(own[k].shape)}"
                  for k in matched if state[k].shape != own[k].shape]
    if mismatched:
        raise ValueError(
            f"weights file {path} has {len(mismatched)} shape mismatch(es) with "
            f"{type(net).__name__}, e.g. {mismatched[:3]}: wrong file or wrong model.arch?"
        )
    missing = [k for k in own if k not in state and not k.startswith(CLASSIFIER_PREFIXES)
               and not k.endswith("num_batches_tracked")]
    if missing:
        raise ValueError(
            f"weights file {path} lacks {len(missing)} backbone entries, e.g. {missing[:3]}"
        )
    unexpected = [k for k in state if k not in own]
    if unexpected:
        logger.warning("weights file %s: ignoring %d unknown keys, e.g. %s",
                       path, len(unexpected), unexpected[:3])
    net.load_state_dict(state, strict=False)
    logger.info("loaded %d weight tensors from %s", len(matched), path)


def build_model(cfg: ModelConfig) -> ReIDNet:
    """Build the ReID network described by ``cfg`` (weights from local files only).

    Parameters
    ----------
    cfg : ModelConfig
        ``arch`` (resnet50 | resnet18 | mobilenet_v2 | tiny), ``embed_dim``,
        ``dropout`` and ``weights``: a local state_dict path for the torchvision
        model, ``"torchvision"`` (the torch hub cache, never downloaded) or None
        (random init).

    Returns
    -------
    ReIDNet
        On CPU, in train mode.
    """
    if cfg.arch not in ARCHITECTURES:
        raise ValueError(f"unknown model.arch {cfg.arch!r}; valid: {', '.join(ARCHITECTURES)}")
    constructor, cut_trunk, feature_dim = ARCHITECTURES[cfg.arch]
    if constructor is None:
        if cfg.weights is not None:
            raise ValueError(f"model.arch {cfg.arch!r} has no pretrained weights; set weights=None")
        trunk = cut_trunk()
    else:
        net = constructor()
        if cfg.weights is not None:
            torchvision_cache = cfg.weights == "torchvision"
            load_backbone_weights(
                net, _torchvision_checkpoint(cfg.arch) if torchvision_cache else cfg.weights
            )
        trunk = cut_trunk(net)
    model = ReIDNet(trunk, feature_dim, cfg.embed_dim, cfg.dropout)
    logger.info("built %s (pool %d-d, embedding %d-d, weights=%s)",
                cfg.arch, model.feature_dim, model.embed_dim_out, cfg.weights)
    return model
