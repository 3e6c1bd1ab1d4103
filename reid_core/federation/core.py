"""The cloud's side of a federated round, without Flower: what every engine drives.

A round, as data flows through it:
1. `downlink(name, global, training)`: the model each edge trains or evaluates from (PU at the
   cloud), or the global model for every edge (PU at the edge, one broadcast);
2. each reply is checked (`examples_problem`, `update_problem`); a bad one is
   `reject`ed with its reason, the others go to `aggregate` (FedAvg weighted by #images);
3. `record_evaluation` per edge, then `finish_round`: the round's wall time, the
   checkpoint and the console lines.

The Flower strategy (`server_app.strategy`) translates messages into these calls; the
in-process driver (`reid_core.federation.in_process`) calls them directly. Both keep the
same `ServerState`, so metrics.json and checkpoints agree by construction.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import numpy as np

from reid_core.config.schema import PersonalizedUpdate
from reid_core.federation.aggregation import check_update, edge_start, personalize, weighted_average
from reid_core.federation.privacy import Privacy, add_noise, clip_model, noise_std
from reid_core.federation.sampling import train_sample
from reid_core.federation.screening import (Screening, bounded_count, capped_shares, change_norms, impossible_model,
                                            screen_reasons)
from reid_core.federation.secure_sum import apply_change
from reid_core.federation.state import ServerState

log = logging.getLogger(__name__)

MAX_EXAMPLES = 10_000_000  # an example count above this is absurd for one edge
# Averaged over the accepted edges (weighted by #images) for the one-line summary of a round
TRAIN_SUMMARY_KEYS = ("train-loss", "precision", "epochs", "clusters", "diag-purity")
# (each update's float arrays in the global model's order, their weights) -> the aggregate's float arrays
AggregationRule = Callable[[list[list[np.ndarray]], list[float]], list[np.ndarray]]

Say = Callable[[int, str], None]  # (logging level, message): where the core's messages go


def python_log(level: int, message: str) -> None:
    log.log(level, "%s", message)


def scalar_metrics(values: Mapping[str, Any]) -> dict[str, float | int]:
    """What an edge reports: numbers only; bools become 0/1 and non-finite floats -1 (a reply stays valid)."""
    out: dict[str, float | int] = {}
    for key, value in values.items():
        if isinstance(value, bool):
            value = int(value)
        if isinstance(value, float) and not math.isfinite(value):
            value = -1.0
        out[key] = value
    return out


def _summary(metrics: Mapping[str, Mapping[str, Any]], weights: list[float]) -> dict[str, float]:
    """The round's weighted mean of `TRAIN_SUMMARY_KEYS` over the aggregated edges (in `metrics`' order)."""
    total = float(sum(weights))
    return {k: sum(m[k] * w for m, w in zip(metrics.values(), weights)) / total for k in TRAIN_SUMMARY_KEYS
            if all(isinstance(m.get(k), (int, float)) for m in metrics.values())}


def round_line(rnd: int, name: str, m: Mapping[str, Any]) -> str:
    """One console line per client and round: what it trained (if it did) and how it ranks."""
    line = f"round {rnd:2d}  {name:<10}"
    if "epochs" in m:
        line += (f" epochs {int(m['epochs']):2d}  loss {float(m['train-loss']):6.3f}"
                 f"  prec {float(m['precision']):4.2f}  clusters {int(m['clusters']):4d}")
    return line + f"  | rank-1 {float(m['rank1']):5.1f}  mAP {float(m['mAP']):5.1f}"


class FederationCore:
    """Global model, each edge's last local model and the history, and the rules of a round.

    Edges are known by their stable client name (Flower's node ids change on restart).
    """

    def __init__(self, state: ServerState, pu: PersonalizedUpdate = PersonalizedUpdate(), min_clients: int = 2,
                 checkpoint_dir: str | None = None, say: Say = python_log,
                 screening: Screening = Screening(), rule: AggregationRule | None = None,
                 evaluate_every: int = 1, privacy: Privacy = Privacy(),
                 account: Callable[[dict], None] | None = None, fraction_train: float = 1.0, seed: int = 0) -> None:
        self.state = state
        self.pu = pu
        self.min_clients = min_clients
        self.checkpoint_dir = checkpoint_dir
        self.say = say
        self.screening = screening
        self.rule = rule  # None: FedAvg weighted by #images
        self.evaluate_every = evaluate_every
        self.privacy = privacy
        self.account = account  # counts the privacy each noised round spends (the ServerApp's accountant)
        self.fraction_train, self.seed = fraction_train, seed

    def train_edges(self, rnd: int, names: Iterable[str]) -> list[str]:
        """The edges of `names` (those online) that train in round `rnd`."""
        return train_sample(names, self.fraction_train, self.seed, rnd, least=self.min_clients)

    def evaluates(self, rnd: int, total_rounds: int) -> bool:
        """Whether the edges evaluate after round `rnd`: round 0, every `evaluate_every`-th, and the last."""
        return rnd == 0 or rnd >= total_rounds or rnd % self.evaluate_every == 0

    # ---- downlink -------------------------------------------------------------
    def personalized_arrays(self, name: str, global_arrays: Mapping[str, np.ndarray]) -> dict:
        """theta_k for one client (the global model when it has no local model yet)."""
        return personalize(self.pu, self.state.client_arrays.get(name), global_arrays)

    def edge_model(self, name: str, global_arrays: Mapping[str, np.ndarray], training: bool) -> Mapping[str, np.ndarray]:
        """The model edge `name` trains or evaluates from, wherever PU mixes it: its theta_k, or the
        global model when PU does not mix for this phase (`pu.train_from=global` trains from it)."""
        return self.personalized_arrays(name, global_arrays) if self.pu.mixes(training) else global_arrays

    def downlink(self, name: str, global_arrays: Mapping[str, np.ndarray], training: bool) -> Mapping[str, np.ndarray]:
        """What is sent to edge `name` to train or evaluate: the global model when the edge mixes
        (`pu.where=edge`), else `edge_model`."""
        return global_arrays if self.pu.at_edge else self.edge_model(name, global_arrays, training)

    def start_from(self, sent: Mapping[str, np.ndarray], training: bool):
        """What an edge sent `sent` (its downlink) starts from, given its own last local model (edge PU mixes)."""
        return lambda local: edge_start(self.pu, sent, local, training)

    def received(self, name: str, global_arrays: Mapping[str, np.ndarray], training: bool):
        """`start_from` of edge `name`'s downlink: one edge's whole downlink, for the in-process engine."""
        return self.start_from(self.downlink(name, global_arrays, training), training)

    # ---- uplink ---------------------------------------------------------------
    @staticmethod
    def examples_problem(n: object) -> str | None:
        """Why an edge's example count cannot weigh its update, or None."""
        if isinstance(n, bool) or not isinstance(n, (int, float)) or not math.isfinite(n) or not 0 < n <= MAX_EXAMPLES:
            return f"bad num-examples {n!r}"
        return None

    def update_problem(self, arrays: Mapping[str, np.ndarray]) -> str | None:
        """Why an uploaded model cannot be averaged (names, shapes, dtypes, NaN/Inf), or None."""
        return check_update(arrays, self.state.global_arrays)

    def reject(self, rnd: int, name: str, reason: str, phase: str) -> None:
        """Leave a reply out, saying so in the log and in the round record."""
        self.say(logging.WARNING, f"round {rnd}: rejected {'evaluation' if phase == 'evaluate' else 'update'} "
                                  f"from '{name}': {reason}")
        self.state.round_record(rnd)["rejected"].append({"client": name, "reason": reason, "phase": phase})

    def aggregate(self, rnd: int, accepted: Mapping[str, tuple[Mapping[str, np.ndarray], Mapping[str, Any]]]
                  ) -> tuple[dict[str, np.ndarray] | None, dict[str, float]]:
        """FedAvg of the accepted (arrays, metrics) by #images; each edge's model and metrics kept.

        Returns the new global model and the round's weighted mean of `TRAIN_SUMMARY_KEYS`;
        (None, {}) when no update is left: the global model is kept. Fewer than `min_clients`
        updates are averaged all the same (as Flower's FedAvg does), with a warning.
        """
        record = self.state.round_record(rnd)
        started = time.perf_counter()
        accepted, weight = self._screen(rnd, accepted)
        if len(accepted) < self.min_clients:
            self.say(logging.WARNING, f"round {rnd}: {len(accepted)} usable update(s) < min_clients="
                                      f"{self.min_clients}; " + ("averaging them" if accepted else "global model kept"))
        if not accepted:
            return None, {}
        self.say(logging.INFO, f"round {rnd}: aggregating {len(accepted)} update(s) {sorted(accepted)}")
        names = sorted(accepted)  # FedAvg pairs arrays by position: one fixed order
        local = {n: {k: accepted[n][0][k] for k in self.state.global_arrays} for n in names}
        weights = [weight[n] for n in names]
        if self.privacy.on:  # the cloud clips again what it can see: the noise's scale holds whatever an edge did
            local = {n: clip_model(local[n], self.state.global_arrays, self.privacy.clipping_norm)[0] for n in names}
        try:
            combined = self._combine([local[n] for n in names], weights)
        except ValueError as err:  # e.g. Bulyan with too few edges: nothing half-aggregated
            self.say(logging.WARNING, f"round {rnd}: aggregation failed ({err}); global model kept")
            return None, {}
        self.state.global_arrays = self._privatize(rnd, combined, weights)
        record["aggregate_s"] = round(time.perf_counter() - started, 4)  # screening + the rule: what a defence costs
        for n in names:
            reported = int(accepted[n][1]["num-examples"])
            self.state.client_arrays[n] = local[n]
            self.state.client_examples[n] = reported
            self.state.client_first_examples.setdefault(n, reported)
            # metrics.json spells it num_examples; the edges' reply key is num-examples
            record["clients"].setdefault(n, {}).update({**accepted[n][1], "num_examples": reported,
                                                         "weight": round(weight[n], 3)})
        return self.state.global_arrays, _summary({n: accepted[n][1] for n in names}, weights)

    def aggregate_sum(self, rnd: int, mean_change: list[np.ndarray], reports: Mapping[str, Mapping[str, Any]]
                      ) -> tuple[dict[str, np.ndarray] | None, dict[str, float]]:
        """Secure aggregation: the global model moves by the edges' weighted mean change (all the cloud
        learns of their models); `reports` holds each summed edge's metrics. Nothing here sees one edge's
        update, so nothing is screened (the edges clip their own). (None, {}) when the sum is unusable."""
        record = self.state.round_record(rnd)
        record["secure"] = True
        if len(reports) < self.min_clients:
            self.say(logging.WARNING, f"round {rnd}: {len(reports)} update(s) in the sum < min_clients="
                                      f"{self.min_clients}; applying it")
        try:
            new_global = apply_change(self.state.global_arrays, mean_change)
        except ValueError as err:
            self.say(logging.WARNING, f"round {rnd}: the secure sum is unusable ({err}); global model kept")
            return None, {}
        self.say(logging.INFO, f"round {rnd}: applying the secure sum of {len(reports)} update(s) {sorted(reports)}")
        names = sorted(reports)
        new_global = self._privatize(rnd, new_global, [float(reports[n]["num-examples"]) for n in names])
        self.state.global_arrays = new_global
        for n in names:
            reported = int(reports[n]["num-examples"])
            self.state.client_examples[n] = reported
            self.state.client_first_examples.setdefault(n, reported)
            record["clients"].setdefault(n, {}).update({**reports[n], "num_examples": reported, "weight": reported})
        return new_global, _summary({n: reports[n] for n in names}, [float(reports[n]["num-examples"]) for n in names])

    def _privatize(self, rnd: int, arrays: dict[str, np.ndarray], weights: list[float]) -> dict[str, np.ndarray]:
        """Gaussian noise on the aggregate when DP is on (privacy.py says its scale), recorded with the round."""
        if not self.privacy.on:
            return arrays
        p = self.privacy
        std = noise_std(p.noise_multiplier, p.clipping_norm, weights)
        dp = {"noise_multiplier": p.noise_multiplier, "clipping_norm": p.clipping_norm, "noise_std": std,
              "edges": len(weights)}
        if self.account is not None:
            self.account(dp)
        self.state.round_record(rnd)["dp"] = dp
        spent = f"; privacy spent: epsilon {dp['epsilon']:.2f} at delta {dp['delta']:g}" if "epsilon" in dp else ""
        self.say(logging.INFO, f"round {rnd}: DP noise std {std:.3g} (z {p.noise_multiplier:g}, C {p.clipping_norm:g}){spent}")
        return add_noise(arrays, std, p.rng(rnd))

    def _combine(self, models: list[dict[str, np.ndarray]], weights: list[float]) -> dict[str, np.ndarray]:
        """FedAvg, or the robust rule on the float arrays (integer buffers: their maximum, as in FedAvg)."""
        averaged = weighted_average(models, weights)
        if self.rule is None:
            return averaged
        keys = [k for k, v in averaged.items() if np.issubdtype(v.dtype, np.floating)]
        combined = self.rule([[m[k] for k in keys] for m in models], weights)
        return {**averaged, **{k: np.asarray(v, dtype=averaged[k].dtype) for k, v in zip(keys, combined)}}

    def _screen(self, rnd: int, accepted: Mapping[str, tuple[Mapping[str, np.ndarray], Mapping[str, Any]]]
                ) -> tuple[dict, dict[str, float]]:
        """The updates left after screening, and the weight each is averaged with (reasons logged)."""
        rules = self.screening
        kept = dict(accepted)
        # each update's change from the model that edge started from: recorded, and screened when asked
        started = {n: self.edge_model(n, self.state.global_arrays, training=True) for n in kept}
        norms = change_norms({n: a for n, (a, _) in kept.items()}, started)
        record = self.state.round_record(rnd)["clients"]
        for name, norm in norms.items():
            record.setdefault(name, {})["change_norm"] = round(norm, 6)
        impossible = {}
        if rules.models:
            for name in kept:
                reason = impossible_model(kept[name][0], started[name], norms[name])
                if reason:
                    impossible[name] = reason
        reasons = screen_reasons(norms, impossible, rules.outlier_k)
        for name, reason in sorted(reasons.items()):
            self.reject(rnd, name, f"screened out: {reason}", "screening")
            del kept[name]
        weight = {}
        for name, (_, metrics) in kept.items():
            reported = float(metrics["num-examples"])
            weight[name] = bounded_count(reported, self.state.client_first_examples.get(name), rules.count_growth)
            if weight[name] < reported:
                self.say(logging.WARNING, f"round {rnd}: '{name}' reported {int(reported)} images, first accepted "
                                          f"with {self.state.client_first_examples[name]}: weighed as {weight[name]:g}")
        capped = capped_shares(weight, rules.max_share)
        for name in sorted(capped):
            if capped[name] < weight[name] - 1e-9:
                self.say(logging.INFO, f"round {rnd}: '{name}' share capped at {rules.max_share:g} of the weight")
        return kept, capped

    def record_evaluation(self, rnd: int, name: str, metrics: Mapping[str, Any]) -> None:
        """Keep an edge's rank-1/5/10 and mAP (and its query count) in the round record."""
        evaluation = {k: float(v) for k, v in metrics.items() if k != "num-examples"}
        evaluation["num_queries"] = int(metrics["num-examples"])
        self.state.round_record(rnd)["clients"].setdefault(name, {}).update(evaluation)

    def finish_round(self, rnd: int, wall_s: float) -> None:
        """Close round `rnd`: its wall time, the checkpoint, one console line per client."""
        record = self.state.round_record(rnd)
        record["wall_s"] = round(wall_s, 3)
        self.state.round = rnd
        if self.checkpoint_dir:
            self.state.save(self.checkpoint_dir)
        for name, m in sorted(record["clients"].items()):
            if "rank1" in m:
                self.say(logging.INFO, round_line(rnd, name, m))
