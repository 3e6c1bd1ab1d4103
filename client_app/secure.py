"""The edge's side of secure aggregation: Flower's SecAgg+ mod around the unchanged train handler.

`secaggplus_mod` speaks Flower's legacy fit layout (FitIns in, FitRes out) and runs the protocol's
four stages; only its third calls the handler. The adapter between them turns the FitIns back into
the records the handler reads, and its reply into a FitRes holding the change of each float array
(`reid_core.federation.secure_sum`), which the mod weighs by the edge's image count, quantises and
masks. The handler's metrics and name still go up in the clear, as in the plain mode.

An edge whose node config sets `secure-aggregation = true` answers a plain train message with an
error: the cloud cannot ask it for its model in the clear.
"""

from __future__ import annotations

from logging import INFO

from flwr.app import ConfigRecord, Context, Message, MetricRecord, RecordDict
from flwr.client.mod import secaggplus_mod
from flwr.clientapp.typing import ClientAppCallable
from flwr.common import Code, FitRes, Status, ndarrays_to_parameters, parameters_to_ndarrays
from flwr.common.logger import log
from flwr.common.secure_aggregation.secaggplus_constants import RECORD_KEY_CONFIGS
from flwr.compat.common import recorddict_compat as compat

from fedureid import records as rec
from reid_core.federation.secure_sum import clip_change, model_change


def requires_secure(context: Context) -> bool:
    """Whether this edge's owner demands secure aggregation (node config `secure-aggregation`)."""
    return str(context.node_config.get("secure-aggregation", "false")).lower() in ("true", "1", "yes")


def secure_train_mod(msg: Message, context: Context, call_next: ClientAppCallable) -> Message:
    """Run SecAgg+ when the cloud asks for it; refuse a plain round where the edge demands it."""
    if RECORD_KEY_CONFIGS in msg.content.config_records:
        return secaggplus_mod(msg, context, _in_records(call_next))
    if requires_secure(context):
        raise PermissionError("this edge's node config sets secure-aggregation: it sends its model only "
                              "masked (run the federation with federation.secure_aggregation=true)")
    return call_next(msg, context)


def _in_records(call_next: ClientAppCallable) -> ClientAppCallable:
    def train_on_records(msg: Message, context: Context) -> Message:
        log(INFO, "secure round: training; the change will leave masked")
        fitins = compat.recorddict_to_fitins(msg.content, keep_input=True)
        config = dict(fitins.config)
        names = str(config.pop(rec.ARRAY_NAMES)).split(rec.NAME_SEPARATOR)
        sent = dict(zip(names, parameters_to_ndarrays(fitins.parameters), strict=True))
        delivered = msg.content
        msg.content = RecordDict({rec.ARRAYS: rec.to_record(sent), rec.CONFIG: ConfigRecord(config)})
        try:
            reply = call_next(msg, context)
        finally:  # the request stays as it came (the mod and the SuperNode may read it again)
            msg.content = delivered
        if reply.has_error():  # the mod cannot mask an error: the edge drops out of this round's sum
            raise RuntimeError(f"training failed: {reply.error.reason}")
        metrics = dict(rec.metric_record(reply.content[rec.METRICS]))
        change = model_change(rec.from_record(reply.content[rec.ARRAYS]), sent)
        change, norm = clip_change(change, float(config.get(rec.CLIP_NORM, 0.0)))
        metrics[rec.CHANGE_NORM] = norm
        log(INFO, "secure round: change norm %.4f, masked before it leaves", norm)
        fitres = FitRes(Status(Code.OK, ""), ndarrays_to_parameters(change), int(metrics[rec.NUM_EXAMPLES]), metrics)
        content = compat.fitres_to_recorddict(fitres, keep_input=True)
        content[rec.METRICS] = MetricRecord(metrics)
        content[rec.INFO] = reply.content[rec.INFO]
        return Message(content, reply_to=msg)

    return train_on_records
