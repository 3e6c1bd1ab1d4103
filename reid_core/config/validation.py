"""Refusing a bad configuration before any work starts, naming the key: the range, choice and
combination checks `reid_core.config.settings` runs on the dataclasses it built."""

from __future__ import annotations

import os

from reid_core.config.choices import (
    AGGREGATIONS,
    ALGORITHMS,
    ARCHS,
    EARLY_STOP_RULES,
    ESTIMATORS,
    LEARNER_CHOICES,
    MISBEHAVIOURS,
)
from reid_core.config.schema import CCConfig, FederationConfig, ImageConfig, PersonalizedUpdate, Settings


class ConfigError(ValueError):
    """A configuration value is invalid; the message names the key."""


def _require(ok: bool, key: str, message: str) -> None:
    if not ok:
        raise ConfigError(f"{key}: {message}")


def _check_secure(fed: FederationConfig, pu: PersonalizedUpdate) -> None:
    """Secure aggregation's needs; SecAggPlusWorkflow checks its own arguments again when it starts."""
    if not fed.secure_aggregation:
        return
    _require(pu.at_edge, "federation.secure_aggregation",
             "needs pu.where=edge: Personalized Update at the cloud mixes each edge's last model, which secure "
             "aggregation keeps from the cloud; pu.where=edge gives the same personalised model, mixed at the edge")
    _require(fed.fraction_train == 1, "federation.fraction_train",
             "must be 1 with federation.secure_aggregation: SecAgg+ is run over every edge of the round")
    _require(fed.grace is None, "federation.grace",
             "must be null with federation.secure_aggregation: SecAgg+ waits for its own reconstruction threshold")
    _require(fed.aggregation == "fedavg", "federation.secure_aggregation",
             f"sums the updates, so only aggregation=fedavg applies, got aggregation={fed.aggregation}")
    _require(fed.secagg_num_shares > 2 if fed.secagg_num_shares > 1 else fed.secagg_num_shares > 0,
             "federation.secagg_num_shares", f"must be a fraction in (0, 1] or a count > 2, got {fed.secagg_num_shares!r}")
    _require(0 < fed.secagg_reconstruction_threshold, "federation.secagg_reconstruction_threshold",
             f"must be a fraction in (0, 1] or a count >= 2, got {fed.secagg_reconstruction_threshold!r}")
    _require(fed.secagg_max_weight > 0, "federation.secagg_max_weight", f"must be > 0, got {fed.secagg_max_weight!r}")
    _require(fed.secagg_clipping_range > 0, "federation.secagg_clipping_range",
             f"must be > 0, got {fed.secagg_clipping_range!r}")
    _require(0 < fed.secagg_quantization_range < fed.secagg_modulus_range, "federation.secagg_quantization_range",
             "must be > 0 and below federation.secagg_modulus_range")
    _require(fed.secagg_modulus_range & (fed.secagg_modulus_range - 1) == 0, "federation.secagg_modulus_range",
             f"must be a power of 2, got {fed.secagg_modulus_range!r}")
    _require(fed.secagg_clip_norm >= 0, "federation.secagg_clip_norm", f"must be >= 0 (0: off), got {fed.secagg_clip_norm!r}")


def _check_dp(fed: FederationConfig, pu: PersonalizedUpdate) -> None:
    _require(fed.dp_noise_multiplier >= 0, "federation.dp_noise_multiplier",
             f"must be >= 0 (0: off), got {fed.dp_noise_multiplier!r}")
    if fed.dp_noise_multiplier == 0:
        return
    _require(pu.at_edge, "federation.dp_noise_multiplier",
             "needs pu.where=edge: the noise's scale holds for changes from one global model every edge received")
    _require(fed.aggregation == "fedavg", "federation.dp_noise_multiplier",
             f"the noise's scale is that of FedAvg's weighted mean; got aggregation={fed.aggregation}")
    _require(fed.dp_clipping_norm > 0, "federation.dp_clipping_norm", f"must be > 0, got {fed.dp_clipping_norm!r}")
    _require(0 < fed.dp_delta < 1, "federation.dp_delta", f"must be in (0, 1), got {fed.dp_delta!r}")


def validate(s: Settings, check_data: bool = True) -> None:
    """Refuse out-of-range or unknown values before any training, naming the key."""
    _require(isinstance(s.rounds, int) and not isinstance(s.rounds, bool) and s.rounds >= 1, "rounds",
             f"must be an integer >= 1, got {s.rounds!r}")
    _require(isinstance(s.synth_seed, int) and not isinstance(s.synth_seed, bool), "data.synth_seed",
             f"must be an integer, got {s.synth_seed!r}")
    _require(s.learner in LEARNER_CHOICES, "learner", f"unknown '{s.learner}', choose one of {LEARNER_CHOICES}")
    for name, kind in s.learner_for.items():
        _require(kind in LEARNER_CHOICES, f"learner_for.{name}", f"unknown '{kind}', choose one of {LEARNER_CHOICES}")
    _require(s.algorithm in ALGORITHMS, "algorithm", f"unknown '{s.algorithm}', choose one of {ALGORITHMS}")
    fed = s.federation
    _require(fed.min_clients >= 1, "federation.min_clients", f"must be >= 1, got {fed.min_clients!r}")
    _require(0 < fed.fraction_train <= 1, "federation.fraction_train",
             f"must be in (0, 1] (1: every edge trains every round), got {fed.fraction_train!r}")
    _require(fed.timeout > 0, "federation.timeout", "must be > 0")
    _require(fed.grace is None or fed.grace >= 0, "federation.grace",
             f"must be null (wait for every edge) or seconds >= 0, got {fed.grace!r}")
    _require(fed.count_growth == 0 or fed.count_growth >= 1, "federation.count_growth",
             f"must be 0 (off) or >= 1 (an honest edge's count does not shrink its weight), got {fed.count_growth!r}")
    _require(fed.aggregation in AGGREGATIONS, "federation.aggregation",
             f"unknown '{fed.aggregation}', choose one of {AGGREGATIONS}")
    _require(fed.num_malicious >= 0, "federation.num_malicious", f"must be >= 0, got {fed.num_malicious!r}")
    _require(0 <= fed.trim < 0.5, "federation.trim", f"must be in [0, 0.5), got {fed.trim!r}")
    _require(0 < fed.max_share <= 1, "federation.max_share", f"must be in (0, 1] (1: off), got {fed.max_share!r}")
    _require(fed.evaluate_every >= 1, "federation.evaluate_every",
             f"must be an integer >= 1 (evaluate after every k-th round), got {fed.evaluate_every!r}")
    _require(fed.outlier_k == 0 or fed.outlier_k > 1, "federation.outlier_k",
             f"must be 0 (off) or > 1 (times the round's median change), got {fed.outlier_k!r}")
    _check_secure(fed, s.pu)
    _check_dp(fed, s.pu)
    _require(s.model.arch in ARCHS, "model.arch", f"unknown '{s.model.arch}', choose one of {ARCHS}")
    _require(s.model.embed_dim >= 0, "model.embed_dim", "must be >= 0")
    _require(0.0 <= s.model.dropout < 1.0, "model.dropout", "must be in [0, 1)")
    _require(s.image.height >= 16 and s.image.width >= 8, "image.height/width", "image too small (min 16x8)")
    _require(s.image.batch_size >= 2, "image.batch_size", "must be >= 2")
    t = s.train
    _require(t.first_round_epochs >= 1, "train.first_round_epochs", "must be >= 1")
    _require(t.epochs >= 1, "train.epochs", "must be >= 1")
    _require(t.lr > 0 and t.first_round_lr > 0, "train.lr", "learning rates must be > 0")
    _require(t.temperature > 0, "train.temperature", "must be > 0")
    _require(t.memory_init in ("mean", "zeros"), "train.memory_init", "must be 'mean' or 'zeros'")
    _require(t.amp in ("off", "bf16", "fp16"), "train.amp", f"must be off, bf16 or fp16, got {t.amp!r}")
    _require(0.0 <= t.cross_camera_weight < 1.0, "train.cross_camera_weight", f"must be in [0, 1), got {t.cross_camera_weight!r}")
    e = s.early_stop
    _require(e.rule in EARLY_STOP_RULES, "pe.rule", f"unknown '{e.rule}', choose {'|'.join(EARLY_STOP_RULES)}")
    _require(e.patience >= 1, "pe.patience", f"must be >= 1, got {e.patience!r}")
    _require(e.window is None or e.window >= 1, "pe.window", f"must be null or >= 1, got {e.window!r}")
    _require(0.0 < e.precision_threshold <= 1.0, "pe.precision_threshold", "must be in (0, 1]")
    c = s.cluster
    _require(c.mode in ("fixed", "personalized"), "pc.mode", f"unknown '{c.mode}', choose fixed|personalized")
    _require(0.0 < c.merge_percent < 1.0, "pc.merge_percent", "must be in (0, 1)")
    _require(c.target_ratio >= 1.0, "pc.target_ratio", f"must be >= 1 (clusters per identity), got {c.target_ratio!r}")
    _require(c.estimator in ESTIMATORS, "pc.estimator", f"unknown '{c.estimator}', choose {'|'.join(ESTIMATORS)}")
    _require(c.lam >= 0.0, "pc.lam", "must be >= 0")
    _require(c.max_merge_percent is None or 0.0 < c.max_merge_percent < 1.0, "pc.max_merge_percent",
             f"must be null or in (0, 1), got {c.max_merge_percent!r}")
    _validate_cc(s.cc, s.image)
    _require(len(s.clients) >= 1, "data.clients", "needs at least one client")
    _require(len(set(s.clients)) == len(s.clients), "data.clients", "client names must be unique")
    _require(all(isinstance(name, str) and name for name in s.pseudo_cameras), "data.pseudo_cameras",
             f"must be a list of client names, got {list(s.pseudo_cameras)!r}")
    for name, n in s.num_identities.items():
        _require(isinstance(n, int) and n >= 1, f"data.num_identities.{name}", "must be an integer >= 1")
    for name, kind in s.misbehave.items():
        _require(kind in MISBEHAVIOURS, f"misbehave.{name}", f"unknown '{kind}', choose one of {MISBEHAVIOURS}")
    if check_data:  # a deployed edge (check_data off) is named by its node_config, not data.clients
        for key, mapping in (("learner_for", s.learner_for), ("misbehave", s.misbehave)):
            unknown = sorted(set(mapping) - set(s.clients))
            _require(not unknown, key, f"names client(s) {unknown} not in data.clients {list(s.clients)}")
    if check_data and s.synth_preset:  # before any work: a folder of something else is left as it is
        from reid_core.data.federation import synthetic_root_problem, unknown_synthetic_clients
        from reid_core.data.synth import PRESETS

        _require(s.synth_preset in PRESETS, "data.synth_preset", f"unknown '{s.synth_preset}', choose one of {sorted(PRESETS)}")
        unknown = unknown_synthetic_clients(s.synth_preset, s.clients)
        _require(not unknown, "data.clients", f"{unknown} are not clients of the synthetic federation '{s.synth_preset}'")
        problem = synthetic_root_problem(s.data_root, s.synth_seed, s.synth_preset)
        _require(problem is None, "data.root", str(problem))
    if check_data and not s.synth_preset:
        _require(os.path.isdir(s.data_root), "data.root", f"data folder not found: {s.data_root}")
        for name in s.clients:
            _require(os.path.isdir(s.client_dir(name)), "data.clients", f"client folder not found: {s.client_dir(name)}")


def _validate_cc(cc: CCConfig, image: ImageConfig) -> None:
    """The cluster-contrast learner's keys (checked whichever learner runs: a typo fails early)."""
    _require(isinstance(cc.k1, int) and cc.k1 >= 2, "cc.k1", f"must be an integer >= 2, got {cc.k1!r}")
    _require(isinstance(cc.k2, int) and 1 <= cc.k2 <= cc.k1, "cc.k2", f"must be an integer in 1..cc.k1, got {cc.k2!r}")
    _require(0.0 < cc.eps < 1.0, "cc.eps", f"must be in (0, 1) (pairs sharing no neighbour are at 1), got {cc.eps!r}")
    _require(isinstance(cc.min_samples, int) and cc.min_samples >= 0, "cc.min_samples",
             f"must be an integer >= 0 (0 = by edge size), got {cc.min_samples!r}")
    _require(cc.cluster_every in ("epoch", "round"), "cc.cluster_every", f"choose epoch|round, got {cc.cluster_every!r}")
    _require(0.0 <= cc.momentum <= 1.0, "cc.momentum", f"must be in [0, 1], got {cc.momentum!r}")
    _require(cc.temperature > 0, "cc.temperature", "must be > 0")
    _require(cc.lr > 0, "cc.lr", "must be > 0")
    _require(cc.weight_decay >= 0, "cc.weight_decay", "must be >= 0")
    _require(isinstance(cc.instances, int) and 1 <= cc.instances <= image.batch_size, "cc.instances",
             f"must be an integer in 1..image.batch_size ({image.batch_size}), got {cc.instances!r}")
    _require(isinstance(cc.iters, int) and cc.iters >= 0, "cc.iters", "must be an integer >= 0 (0 = one pass)")
    _require(cc.epoch_size in ("clustered", "all"), "cc.epoch_size", f"choose clustered|all, got {cc.epoch_size!r}")
    _require(0.0 <= cc.erasing <= 1.0, "cc.erasing", f"must be in [0, 1], got {cc.erasing!r}")
    _require(isinstance(cc.camera_means, bool), "cc.camera_means", f"must be true or false, got {cc.camera_means!r}")
    _require(isinstance(cc.camera_penalty, (int, float)) and not isinstance(cc.camera_penalty, bool) and 0.0 <= cc.camera_penalty <= 4.0, "cc.camera_penalty",
             f"must be in [0, 4] (squared distances of unit features lie in [0, 4]), got {cc.camera_penalty!r}")
    _require(cc.memory in ("cluster", "camera"), "cc.memory", f"choose cluster|camera, got {cc.memory!r}")
    _require(isinstance(cc.hard_negatives, int) and cc.hard_negatives >= 1, "cc.hard_negatives",
             f"must be an integer >= 1, got {cc.hard_negatives!r}")
    _require(cc.inter_camera_weight >= 0, "cc.inter_camera_weight", f"must be >= 0, got {cc.inter_camera_weight!r}")
    _require(0.0 <= cc.dropout < 1.0, "cc.dropout", f"must be in [0, 1), got {cc.dropout!r}")
