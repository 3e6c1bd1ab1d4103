"""Small frozen dataclasses that core code receives (never a whole config tree), and `Settings`,
one experiment's set of them.

`reid_core.config.settings` builds them from the Hydra-composed `conf/` tree; each core
function takes only the dataclass it needs. The defaults below are conf/config.yaml's
(with its default model, tiny), for code that builds a config by hand; a test holds the
two to agree, so conf/ stays the one statement of each default.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from reid_core.config.choices import PU_PLACES, PU_TRAIN_STARTS, mu_problem


@dataclass(frozen=True)
class ModelConfig:
    """Backbone + embedding head."""

    arch: str = "tiny"  # resnet50 | resnet18 | mobilenet_v2 | tiny
    embed_dim: int = 128  # 0 = no embedding head (memory works on pooled features)
    dropout: float = 0.5
    weights: str | None = None  # local ImageNet weights file, "torchvision" (cache), or None
    device: str = "auto"  # auto | cpu | cuda | cuda:N


@dataclass(frozen=True)
class ImageConfig:
    """Input size and loaders."""

    height: int = 64
    width: int = 32
    batch_size: int = 32
    eval_batch_size: int = 128
    num_workers: int = 0
    photometric: float = 0.0  # camera-like colour/brightness augmentation strength (0 = paper)
    decode_cache: bool = True  # feature passes read training images decoded once, kept in the edge's state folder


@dataclass(frozen=True)
class TrainConfig:
    """Local SGD schedule."""

    first_round_epochs: int = 20  # round 1: every image its own cluster
    first_round_lr: float = 0.1
    epochs: int = 2  # later rounds: max local epochs (PE may stop earlier)
    lr: float = 0.01
    backbone_lr_mult: float = 0.1
    momentum: float = 0.9
    weight_decay: float = 5e-4
    nesterov: bool = True
    temperature: float = 0.1
    memory_init: str = "mean"  # mean (cluster means of current features) | zeros (paper)
    local_bn: bool = False  # keep this edge's BatchNorm statistics over the received ones (FedBN-style)
    cross_camera_weight: float = 0.0  # weight of each image's nearest other-camera image as a second target (0 = paper)
    cross_camera_mutual: bool = False  # keep only mutual cross-camera nearest neighbours
    progress: bool = True
    amp: str = "off"  # off | bf16 | fp16: autocast on CUDA edges only (CPU runs fp32 whatever this says)
    seed: int = 0


@dataclass(frozen=True)
class EarlyStopConfig:
    """Personalized Epoch: when local training stops."""

    rule: str = "none"  # none (fixed epochs) | precision (official) | plateau | trend
    precision_threshold: float = 0.95
    patience: int = 1
    min_delta: float = 0.01  # relative loss improvement counted as progress
    window: int | None = None  # trend: epochs averaged on each side; None: a fifth of the round's epochs
    min_epochs: int = 1


@dataclass(frozen=True)
class ClusterConfig:
    """BUC merging and Personalized Clustering."""

    lam: float = 0.003
    mode: str = "fixed"  # fixed (merge_percent of N per round) | personalized (profiler)
    merge_percent: float = 0.05
    num_identities: int | None = None  # known #identities of this client, if the operator knows
    feature: str = "pool"  # features used to cluster: pool | embed
    camera_normalize: bool = False  # remove each camera's mean feature before merging (camera ids only)
    camera_floor: bool = False  # never merge below ceil(N / cameras) clusters (camera ids only)
    max_merge_percent: float | None = None  # personalized: merge at most this share of N per step
    target_ratio: float = 1.0  # personalized: end at target_ratio x the identities
    estimator: str = "inverse_count"  # identities unknown: inverse_count | per_camera


@dataclass(frozen=True)
class CCConfig:
    """Cluster-contrast learner (`learner=cc`): Jaccard + DBSCAN pseudo-labels, cluster memory."""

    k1: int = 30  # k-reciprocal neighbourhood (cut to the edge's image count)
    k2: int = 6  # query expansion
    eps: float = 0.6  # DBSCAN radius on the Jaccard distance, in (0, 1)
    min_samples: int = 0  # DBSCAN core size; 0 = by edge size (2 below 2,000 images, else 4)
    cluster_every: str = "epoch"  # epoch (cluster-contrast) | round (once, on the received model)
    momentum: float = 0.2  # centroid update c <- m c + (1 - m) f
    temperature: float = 0.05  # ClusterNCE
    lr: float = 3.5e-4  # Adam
    weight_decay: float = 5e-4
    instances: int = 4  # K images per pseudo-identity in a batch (P = image.batch_size // K)
    iters: int = 0  # batches per epoch; 0 = one pass (see epoch_size)
    epoch_size: str = "clustered"  # iters=0: one pass over the clustered images | all (every image: BUC's steps)
    erasing: float = 0.5  # random erasing probability
    dropout: float = 0.0  # embedding dropout while training (cluster-contrast has none)
    camera_means: bool = False  # cluster on features with each camera's mean removed (camera ids only)
    camera_penalty: float = 0.0  # added to the squared distance of two images of one camera before Jaccard
    memory: str = "cluster"  # cluster (ClusterNCE, one centroid each) | camera (CAP-style camera-aware proxies)
    hard_negatives: int = 50  # memory=camera: other pseudo-identities' proxies in the inter-camera loss
    inter_camera_weight: float = 0.5  # memory=camera: weight of the inter-camera loss


@dataclass(frozen=True)
class PersonalizedUpdate:
    """Personalized Update's settings (`pu.*`), passed whole to every engine, the edges and inference.

    `mu`: theta_k = mu * theta_k(local) + (1 - mu) * theta_global; `where`: `cloud` mixes one
    model per edge and sends it, `edge` broadcasts the global model and each edge mixes it with
    its own; `local_bn`: each edge keeps its own BatchNorm layers (FedBN); `train_from`:
    `personalized` (the paper) trains each round from theta_k, `global` trains from the global
    model as FedAvg does and keeps theta_k for what the edge evaluates and deploys. The maths:
    `reid_core.federation.aggregation.personalize` and `edge_start`.
    """

    mu: float = 0.0
    where: str = "cloud"
    local_bn: bool = False
    train_from: str = "personalized"

    def __post_init__(self) -> None:  # the config reports these naming the key; this also guards direct use
        if mu_problem(self.mu):
            raise ValueError(f"pu.mu: must be a number in [0, 1], got {self.mu!r}")
        if self.where not in PU_PLACES:
            raise ValueError(f"pu.where: must be one of {PU_PLACES}, got {self.where!r}")
        if self.train_from not in PU_TRAIN_STARTS:
            raise ValueError(f"pu.train_from: must be one of {PU_TRAIN_STARTS}, got {self.train_from!r}")

    @property
    def at_edge(self) -> bool:
        return self.where == "edge"

    def mixes(self, training: bool) -> bool:
        """Whether the model an edge starts from is theta_k (else the global model) in this phase."""
        return not (training and self.train_from == "global")


@dataclass(frozen=True)
class FederationConfig:
    """Cloud-side settings."""

    min_clients: int = 2
    fraction_train: float = 1.0  # the share of the edges online that train a round, drawn by name (at least min_clients)
    timeout: float = 3600.0
    grace: float | None = None  # quorum met: a phase goes on after this many quiet seconds (None: waits for all)
    client_cpus: int = 1  # simulation: CPUs per virtual SuperNode (Flower takes whole CPUs)
    client_gpus: float = 0.0
    checkpoint: bool = True
    resume: bool = True
    count_growth: float = 2.0  # screening: an edge weighs at most this x its first accepted count (0: off)
    max_share: float = 1.0     # screening: no edge's share of the weight above this (1: off)
    outlier_k: float = 0.0     # screening: leave out updates changed > k x the round's median norm (0: off)
    evaluate_every: int = 1    # the edges evaluate after every k-th round (and round 0 and the last)
    screen_models: bool = True  # screening: leave out models no training produces (negative variance, unchanged)
    aggregation: str = "fedavg"  # fedavg | median | trimmed | krum | multikrum | bulyan (fedureid.aggregators)
    num_malicious: int = 1       # krum, multikrum, bulyan: the hostile edges to withstand
    trim: float = 0.2            # trimmed: share of the updates cut at each end
    secure_aggregation: bool = False  # Flower's SecAgg+: the cloud sees only the weighted mean change
    secagg_num_shares: float = 1.0
    secagg_reconstruction_threshold: float = 0.67
    secagg_max_weight: float = 10000.0
    secagg_clipping_range: float = 8.0
    secagg_quantization_range: int = 4194304
    secagg_modulus_range: int = 4294967296
    secagg_clip_norm: float = 0.0  # an edge's change is scaled to at most this L2 norm before masking (0: off)
    dp_noise_multiplier: float = 0.0  # DP: Gaussian noise of this x the clipped change's sensitivity (0: off)
    dp_clipping_norm: float = 1.0     # DP: each edge's change is clipped to this L2 norm
    dp_delta: float = 1e-5            # DP: the delta epsilon is reported at


@dataclass(frozen=True)
class Settings:
    """Everything one experiment needs, split into the dataclasses core code takes."""

    experiment: str
    algorithm: str
    rounds: int
    seed: int
    run_dir: str
    data_root: str
    clients: tuple[str, ...]
    synth_preset: str | None
    synth_seed: int
    num_identities: Mapping[str, int]
    model: ModelConfig
    image: ImageConfig
    train: TrainConfig
    early_stop: EarlyStopConfig
    cluster: ClusterConfig
    federation: FederationConfig
    pu: PersonalizedUpdate = field(default_factory=PersonalizedUpdate)
    overrides: tuple[str, ...] = field(default=())
    learner: str = "buc"
    cc: CCConfig = field(default_factory=CCConfig)
    pseudo_cameras: tuple[str, ...] = ()  # clients whose camera ids are not real cameras (data.pseudo_cameras)
    learner_for: Mapping[str, str] = field(default_factory=dict)  # client -> its own learner (key learner_for)
    misbehave: Mapping[str, str] = field(default_factory=dict)  # client -> how it misbehaves on purpose (tests)

    def client_dir(self, name: str) -> str:
        """Data folder of one simulated client (data=paper: also under the data set's usual spellings)."""
        from reid_core.data.registry import dataset_folder

        return dataset_folder(self.data_root, name)

    def cluster_for(self, client: str) -> ClusterConfig:
        """ClusterConfig with the operator-known #identities of this client, if any."""
        n = self.num_identities.get(client)
        if n is None:
            return self.cluster
        return ClusterConfig(**{**self.cluster.__dict__, "num_identities": int(n)})

    def learner_of(self, client: str) -> str:
        """The learner of one client: `learner_for` names some edges' own, `learner` is everyone else's."""
        return self.learner_for.get(client, self.learner)

    def cc_for(self, client: str) -> CCConfig:
        """CCConfig of one client: its camera-aware options are off where its camera ids are not real cameras."""
        if client not in self.pseudo_cameras:
            return self.cc
        return CCConfig(**{**self.cc.__dict__, "camera_means": False, "camera_penalty": 0.0, "memory": "cluster"})
