"""The privacy spent, counted by Flower's accountant (`RdpAccountant`, from the `flwr[dp]` extra).

Each round with DP noise (`reid_core.federation.privacy`) is one Gaussian release of noise
multiplier z over every edge of the federation (no sampling amplification: all edges take part),
composed with the rounds before it (also those of a run this one resumes); the cumulative epsilon
at `federation.dp_delta` goes into the round record beside the noise.
"""

from __future__ import annotations

from flwr.serverapp import GaussianPrivacyEvent, NeighboringRelation, PrivacyConfig, RdpAccountant, SamplingMethod


class Accountant:
    """Composes each noised round and writes epsilon and delta into its record's `dp` entry."""

    def __init__(self, delta: float, edges: int, history: list[dict] = ()) -> None:
        self.delta, self.edges = float(delta), int(edges)
        self._rdp = RdpAccountant(PrivacyConfig(target_delta=self.delta, population_size=self.edges,
                                                neighboring_relation=NeighboringRelation.ADD_OR_REMOVE_ONE,
                                                sampling_method=SamplingMethod.NO_AMPLIFICATION))
        for record in history:  # a resumed run has spent these already
            if "dp" in record:
                self._compose(record["dp"])

    def _compose(self, dp: dict) -> None:
        sample = min(int(dp["edges"]), self.edges)
        self._rdp.compose(GaussianPrivacyEvent(noise_multiplier=float(dp["noise_multiplier"]),
                                               sample_size=sample, population_size=self.edges))

    def __call__(self, dp: dict) -> None:
        self._compose(dp)
        dp["epsilon"] = float(self._rdp.get_epsilon(self.delta))
        dp["delta"] = self.delta
