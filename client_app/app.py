"""ClientApp: one edge. Translates Flower messages to an edge learner (`reid_core.learners`).

Only the model's arrays and scalar metrics leave the edge; images, features,
pseudo-labels and the exemplar memory stay in the node's state directory.
"""

from __future__ import annotations

import os
from logging import DEBUG, ERROR

from flwr.app import Context, Message, MetricRecord, RecordDict
from flwr.clientapp import ClientApp
from flwr.common.logger import log

from reid_core.learners import LEARNER_CHOICES, EdgeLearner, learner_from_settings
from reid_core.personalization.personalized_update import interpolate
from reid_core.config.settings import Settings, load_settings, parse_overrides
from fedureid.records import from_record, info_record, metric_record, to_record

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


def _learner(context: Context) -> tuple[EdgeLearner, Settings]:
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


def _received_model(msg: Message, learner: EdgeLearner) -> dict:
    """The model to start from: as sent (cloud PU) or mixed here (edge PU)."""
    arrays = from_record(msg.content["arrays"])
    config = msg.content["config"]
    if str(config.get("pu-where", "cloud")) == "edge":
        arrays = interpolate(learner.local_model(), arrays, float(config.get("mu", 0.0)))
    return arrays


@app.train()
def train(msg: Message, context: Context) -> Message:
    """Local BUC round on this edge's unlabeled images."""
    learner, _ = _learner(context)
    config = msg.content["config"]
    server_round = int(config["server-round"])
    learner.start_round(server_round)  # before edge-side PU reads the local model: a resent round rewinds it
    arrays, metrics = learner.train_round(
        _received_model(msg, learner), server_round, int(config.get("total-rounds") or 0) or None
    )
    # Mirror the edge state in context.state (the disk copy survives SuperNode restarts).
    context.state["buc"] = MetricRecord({"round": learner.round, "clusters": learner.num_clusters})
    content = RecordDict({"arrays": to_record(arrays), "metrics": metric_record(metrics),
                          "info": info_record(learner.name)})
    return Message(content=content, reply_to=msg)


@app.evaluate()
def evaluate(msg: Message, context: Context) -> Message:
    """Rank-1/5/10 and mAP of this client's current model on its own query/gallery."""
    learner, _ = _learner(context)
    metrics = learner.evaluate(_received_model(msg, learner))
    log(DEBUG, "%s: rank-1 %.1f mAP %.1f", learner.name, metrics["rank1"], metrics["mAP"])
    content = RecordDict({"metrics": metric_record(metrics), "info": info_record(learner.name)})
    return Message(content=content, reply_to=msg)


@app.query()
def query(msg: Message, context: Context) -> Message:
    """Tell the server this node's stable client name."""
    settings = _settings(context)
    name, _ = node_identity(context, settings)
    return Message(content=RecordDict({"info": info_record(name)}), reply_to=msg)

