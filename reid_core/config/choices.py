"""The allowed values the config checks and the code that uses them share: each stated once, here."""

from __future__ import annotations

from pathlib import Path

CONF_DIR = Path(__file__).resolve().parents[2] / "conf"


def group_choices(group: str, conf_dir: Path = CONF_DIR) -> tuple[str, ...]:
    """The names a config group offers: its files in conf/ (experiment, algorithm, data, model)."""
    return tuple(sorted(p.stem for p in (conf_dir / group).glob("*.yaml")))


ALGORITHMS = group_choices("algorithm")
EXPERIMENTS = group_choices("experiment")
ARCHS = ("resnet50", "resnet18", "mobilenet_v2", "tiny")
LEARNERS = ("buc", "cc")  # reid_core.learners.make_learner builds them
LEARNER_CHOICES = (*LEARNERS, "auto")  # auto: each edge picks by its size (reid_core.learners.choose_learner)

# federation.aggregation: the core's FedAvg, or one of Flower's robust rules (fedureid.aggregators)
AGGREGATIONS = ("fedavg", "median", "trimmed", "krum", "multikrum", "bulyan")
# misbehave / node_config misbehave: what an edge told to misbehave sends (reid_core.federation.misbehaviour)
MISBEHAVIOURS = ("scale", "flip", "noise", "stale", "count")
# pc.estimator: how Personalized Clustering estimates an edge's identities (reid_core.personalization)
ESTIMATORS = ("inverse_count", "per_camera")
# pe.rule: when Personalized Epoch stops an edge's round (reid_core.personalization.personalized_epoch)
EARLY_STOP_RULES = ("none", "precision", "plateau", "trend")
# pu.where: where Personalized Update mixes the personalised model
PU_PLACES = ("cloud", "edge")
# pu.train_from: what an edge trains from (it evaluates and deploys its personalised model either way)
PU_TRAIN_STARTS = ("personalized", "global")


def mu_problem(mu: object) -> str | None:
    """Why `mu` cannot be Personalized Update's mixing weight, or None."""
    if isinstance(mu, bool) or not isinstance(mu, (int, float)) or not 0.0 <= float(mu) <= 1.0:
        return f"mu must be a number in [0, 1], got {mu!r}"
    return None
