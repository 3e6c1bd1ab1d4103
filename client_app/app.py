"""ClientApp: one edge. Translates Flower messages to an edge learner (`reid_core.learners`).

Only the model's arrays and scalar metrics leave the edge; images, features,
pseudo-labels and the exemplar memory stay in the node's state directory.
"""

from __future__ import annotations

import os
from logging import DEBUG, ERROR, WARNING
from typing import TYPE_CHECKING

from flwr.app import Context, Message, MetricRecord, RecordDict
from flwr.clientapp import ClientApp
from flwr.common.logger import log

from client_app.secure import secure_train_mod
from fedureid import records as rec
from reid_core.config.settings import Settings, load_settings, parse_overrides
from reid_core.federation.aggregation import edge_start
from reid_core.federation.misbehaviour import misbehave
from reid_core.federation.privacy import clip_model
from reid_core.runtime.slots import compute_slot

if TYPE_CHECKING:  # the learners import torch (seconds): a query for the client name does without them
    from reid_core.learners import EdgeLearner
    from reid_core.learners.base import StartFrom

app = ClientApp()


def _settings(context: Context) -> Settings:
    rc = context.run_config
    overrides = [f"experiment={rc.get('experiment', 'demo')}", *parse_overrides(str(rc.get("overrides", "")))]
    # A deployed edge only has its own data-dir; other clients' folders are not here.
    return load_settings(overrides, base_dir=str(rc.get("base-dir", "")) or None,
                         check_data="data-dir" not in context.node_config)


def node_identity(context: Context, settings: Settings) -> tuple[str, str]:
    """(client name, data dir): node_config in deployment, partition-id in simulation."""
    nc = context.node_config
    if "data-dir" in nc:
        data_dir = str(nc["data-dir"])
        name = str(nc.get("client-name") or os.path.basename(os.path.normpath(data_dir)))
        return name, data_dir
    if "partition-id" in nc:
        pid = int(nc["partition-id"])
        if not 0 <= pid < len(settings.clients):
            raise ValueError(f"partition-id {pid} but data.clients has {len(settings.clients)} entries")
        name = str(nc.get("client-name") or settings.clients[pid])
        return name, settings.client_dir(settings.clients[pid])
    raise ValueError("node_config needs 'data-dir' (and 'client-name'), or 'partition-id' in simulation")


def _misbehaviour(context: Context, settings: Settings, name: str) -> str | None:
    """How this edge was told to misbehave (node_config `misbehave`, or the config's), or None."""
    return str(context.node_config.get("misbehave") or "") or settings.misbehave.get(name) or None


def _learner(context: Context) -> tuple[EdgeLearner, Settings]:
    from reid_core.learners import LEARNER_CHOICES, learner_from_settings

    settings = _settings(context)
    name, data_dir = node_identity(context, settings)
    if not os.path.isdir(data_dir):  # the reason reaches the server: name the key, keep the path local
        log(ERROR, "client '%s': data folder not found: %s", name, data_dir)
        raise FileNotFoundError(f"client '{name}': its data folder (node_config 'data-dir'; data.root/{name} "
                                "in simulation) does not exist; see the edge's log")
    state_dir = str(context.node_config.get("state-dir") or os.path.join(settings.run_dir, "edge_state", name))
    # node_config 'learner' lets one deployed edge run its own learner (the config's learner_for, per node)
    kind = str(context.node_config.get("learner") or "") or None
    if kind is not None and kind not in LEARNER_CHOICES:
        raise ValueError(f"client '{name}': node_config 'learner' is '{kind}'; choose one of {LEARNER_CHOICES}")
    return learner_from_settings(settings, name, data_dir, state_dir, kind), settings


def _received(msg: Message, training: bool) -> tuple[dict, StartFrom]:
    """The model sent, and how to train or evaluate from it: as sent, or mixed here with the local model (edge PU)."""
    config = msg.content[rec.CONFIG]
    arrays = rec.from_record(msg.content[rec.ARRAYS])
    pu = rec.pu_from_config(config)
    return arrays, lambda local: edge_start(pu, arrays, local, training)


def _reply(msg: Message, learner: EdgeLearner, metrics: dict, arrays: dict | None = None) -> Message:
    content = {rec.METRICS: rec.metric_record(metrics), rec.INFO: rec.info_record(learner.name)}
    if arrays is not None:
        content[rec.ARRAYS] = rec.to_record(arrays)
    return Message(content=RecordDict(content), reply_to=msg)


def _slot(context: Context):
    """One of the host's compute slots (node config `compute-slots-dir`, `compute-slots`), or no limit."""
    nc = context.node_config
    return compute_slot(str(nc.get("compute-slots-dir") or ""), int(nc.get("compute-slots", 1)))


@app.train(mods=[secure_train_mod])  # SecAgg+ when the cloud runs it (client_app/secure.py)
def train(msg: Message, context: Context) -> Message:
    """One local round of the edge's learner on its unlabeled images."""
    with _slot(context):
        return _train(msg, context)


def _train(msg: Message, context: Context) -> Message:
    learner, settings = _learner(context)
    config = msg.content[rec.CONFIG]
    arrays, start_from = _received(msg, training=True)
    server_round = int(config[rec.SERVER_ROUND])
    trained, metrics = learner.train_round(None, server_round, int(config.get(rec.TOTAL_ROUNDS) or 0) or None,
                                           start_from)
    clip = float(config.get(rec.CLIP_NORM, 0.0))
    if clip > 0:  # differential privacy: the change leaves bounded (the cloud's noise is scaled to it)
        trained, metrics[rec.CHANGE_NORM] = clip_model(trained, arrays, clip)
    kind = _misbehaviour(context, settings, learner.name)
    if kind:  # on purpose, for tests of the defences: never on by default
        log(WARNING, "%s misbehaves on purpose: %s", learner.name, kind)
        trained, metrics["num-examples"] = misbehave(kind, trained, arrays, metrics["num-examples"],
                                                     seed=settings.seed * 1000 + server_round)
    # Mirror the edge state in context.state (the disk copy survives SuperNode restarts).
    context.state["learner"] = MetricRecord({"round": learner.round, "clusters": learner.num_clusters})
    return _reply(msg, learner, metrics, trained)


@app.evaluate()
def evaluate(msg: Message, context: Context) -> Message:
    """Rank-1/5/10 and mAP of this client's current model on its own query/gallery."""
    with _slot(context):
        learner, _ = _learner(context)
        metrics = learner.evaluate(None, _received(msg, training=False)[1])
    log(DEBUG, "%s: rank-1 %.1f mAP %.1f", learner.name, metrics["rank1"], metrics["mAP"])
    return _reply(msg, learner, metrics)


@app.query()
def query(msg: Message, context: Context) -> Message:
    """Tell the server this node's stable client name."""
    settings = _settings(context)
    name, _ = node_identity(context, settings)
    return Message(content=RecordDict({rec.INFO: rec.info_record(name)}), reply_to=msg)

