"""Ablation runner: standalone BUC and the six federated variants on the same clients (+ cc rows).

Each federated variant is one `fedureid simulate algorithm=X run_dir=DIR/X` run; the
standalone row is one `fedureid standalone` run per client (BUC alone, the baseline's
fixed merges and epochs). The runs themselves are started by a `Runner` the caller
supplies (the CLI runs them as subprocesses), so this module stays flwr-free and
its bookkeeping can be tested with a fake runner. A variant whose metrics.json
already holds every round is not run again.

The rows, their settings and the group names (``all``, ``cc``) are listed in
conf/ablation/variants.yaml: the cluster-contrast rows (``learner=cc``), ``auto_fedureid``
(``learner=auto``) and ``paper`` (FedUReID exactly as published) sit in the same tables.
"""

from __future__ import annotations

import json
import logging
import shutil
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lab.ablation_report import write_ablation_outputs

log = logging.getLogger(__name__)

def _variants_conf() -> dict[str, Any]:
    import yaml

    from reid_core.config.choices import CONF_DIR

    return yaml.safe_load((CONF_DIR / "ablation" / "variants.yaml").read_text())


_CONF = _variants_conf()
ROWS: dict[str, dict[str, Any]] = _CONF["rows"]
GROUPS: dict[str, tuple[str, ...]] = {k: tuple(v) for k, v in _CONF["groups"].items()}
ALL_VARIANTS = tuple(ROWS)
VARIANTS = GROUPS["all"]
FEDERATED = tuple(v for v in VARIANTS if not ROWS[v].get("standalone"))
CC_VARIANTS = GROUPS["cc"]
PAPER_VARIANT = "paper"
AUTO_VARIANT = "auto_fedureid"
STANDALONE_VARIANTS = tuple(v for v, row in ROWS.items() if row.get("standalone"))
STANDALONE_ALGORITHM = ROWS["standalone"]["algorithm"]
# variant -> (algorithm, extra overrides)
VARIANT_RUNS = {v: (row["algorithm"], tuple(row.get("overrides", ()))) for v, row in ROWS.items()}

# (fedureid CLI arguments, log file) -> exit code
Runner = Callable[[Sequence[str], Path], int]


@dataclass(frozen=True)
class AblationPlan:
    """What to run: shared settings, clients, and which variants."""

    run_dir: Path
    experiment: str
    overrides: tuple[str, ...]  # shared Hydra overrides given to every variant
    clients: tuple[str, ...]
    data_root: str
    rounds: int
    variants: tuple[str, ...] = VARIANTS

    def __post_init__(self) -> None:
        unknown = [v for v in self.variants if v not in ALL_VARIANTS]
        if unknown:
            raise ValueError(f"unknown variant(s) {unknown}; choose from {', '.join(ALL_VARIANTS)}")
        if not self.variants:
            raise ValueError("variants: choose at least one")
        if self.rounds < 1:
            raise ValueError(f"rounds must be >= 1, got {self.rounds}")

    def variant_dir(self, variant: str) -> Path:
        """Run folder of one variant (standalone: one sub-folder per client inside)."""
        return self.run_dir / variant


def parse_variants(text: str) -> tuple[str, ...]:
    """`[baseline,pe]`, `baseline,pe`, `all` (the BUC rows), `cc` or `[all,cc]` -> variant names in table order."""
    text = text.strip()
    if text in ("", "all"):
        return VARIANTS
    names = [n.strip().strip("'\"") for n in text.strip("[]").split(",") if n.strip()]
    names = [v for n in names for v in GROUPS.get(n, (n,))]
    unknown = [n for n in names if n not in ALL_VARIANTS]
    if unknown:
        raise ValueError(f"variants: unknown {unknown}; choose from {', '.join(ALL_VARIANTS)}, or all | cc")
    return tuple(v for v in ALL_VARIANTS if v in names)


def read_metrics(path: Path) -> dict[str, Any] | None:
    """metrics.json as a dict, or None when missing or unreadable (a crashed write)."""
    try:
        return json.loads(Path(path).read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return None


def is_complete(metrics: Mapping[str, Any] | None, rounds: int, clients: Sequence[str]) -> bool:
    """True when rounds 1..`rounds` each hold rank-1 and mAP of every client."""
    if not metrics:
        return False
    by_round = {r["round"]: r["clients"] for r in metrics.get("rounds", [])}
    return all(
        all("rank1" in by_round.get(rnd, {}).get(c, {}) and "mAP" in by_round[rnd][c] for c in clients)
        for rnd in range(1, rounds + 1)
    )


def federated_args(plan: AblationPlan, variant: str) -> list[str]:
    """`fedureid simulate` arguments of one federated variant."""
    algorithm, extra = VARIANT_RUNS[variant]
    return ["simulate", f"experiment={plan.experiment}", *plan.overrides, *_own(extra, plan),
            f"algorithm={algorithm}", f"run_dir={plan.variant_dir(variant)}"]


def _own(extra: Sequence[str], plan: AblationPlan) -> list[str]:
    """A variant's own overrides, less the keys the shared overrides set (the user's value wins)."""
    shared = {o.split("=", 1)[0].lstrip("+~") for o in plan.overrides}
    return [o for o in extra if o.split("=", 1)[0].lstrip("+~") not in shared]


def standalone_args(plan: AblationPlan, client: str, variant: str = "standalone") -> list[str]:
    """`fedureid standalone` arguments of one client's learner-alone run."""
    algorithm, extra = VARIANT_RUNS[variant]
    return ["standalone", f"data={Path(plan.data_root) / client}", f"experiment={plan.experiment}",
            *plan.overrides, *_own(extra, plan), f"algorithm={algorithm}",
            f"run_dir={plan.variant_dir(variant) / client}"]


def combine_standalone(plan: AblationPlan, variant: str = "standalone") -> dict[str, Any] | None:
    """Merge the per-client standalone runs into one metrics dict (None if any is missing)."""
    rounds: dict[int, dict[str, Any]] = {}
    wall = 0.0
    for client in plan.clients:
        m = read_metrics(plan.variant_dir(variant) / client / "metrics.json")
        if m is None:
            return None
        wall += float(m.get("wall_s_serverapp", 0.0))
        for rec in m["rounds"]:
            rounds.setdefault(rec["round"], {"round": rec["round"], "clients": {}})["clients"].update(rec["clients"])
    final = {}
    for client in plan.clients:
        last = max((r for r in rounds.values() if "rank1" in r["clients"].get(client, {})),
                   key=lambda r: r["round"], default=None)
        if last is not None:
            final[client] = {k: round(float(last["clients"][client][k]), 2)
                             for k in ("rank1", "rank5", "rank10", "mAP")}
    return {"rounds": [rounds[r] for r in sorted(rounds)], "final": final, "experiment": plan.experiment,
            "algorithm": variant, "clients": list(plan.clients), "wall_s": round(wall, 2),
            "mu": 0.0, "pu_where": "none"}


def _run_standalone(plan: AblationPlan, runner: Runner, variant: str = "standalone") -> dict[str, Any] | None:
    base = plan.variant_dir(variant)
    for client in plan.clients:
        client_dir = base / client
        if is_complete(read_metrics(client_dir / "metrics.json"), plan.rounds, [client]):
            log.info("%s/%s: complete, not rerun", variant, client)
            continue
        # A resumed standalone run loses its earlier history: start the client over.
        shutil.rmtree(client_dir, ignore_errors=True)
        client_dir.mkdir(parents=True)
        log.info("%s/%s: running", variant, client)
        rc = runner(standalone_args(plan, client, variant), client_dir / "run.log")
        if rc != 0:
            log.error("%s/%s failed (exit %d); see %s", variant, client, rc, client_dir / "run.log")
            return None
    combined = combine_standalone(plan, variant)
    if combined is not None:
        (base / "metrics.json").write_text(json.dumps(combined, indent=1))
    return combined


def _run_federated(plan: AblationPlan, variant: str, runner: Runner) -> dict[str, Any] | None:
    vdir = plan.variant_dir(variant)
    metrics_file = vdir / "metrics.json"
    if is_complete(read_metrics(metrics_file), plan.rounds, plan.clients):
        log.info("%s: complete, not rerun", variant)
        return read_metrics(metrics_file)
    vdir.mkdir(parents=True, exist_ok=True)
    log.info("%s: running (an interrupted run resumes from its checkpoint)", variant)
    rc = runner(federated_args(plan, variant), vdir / "run.log")
    metrics = read_metrics(metrics_file)
    if rc != 0 or not is_complete(metrics, plan.rounds, plan.clients):
        log.error("%s failed or is incomplete (exit %d); see %s", variant, rc, vdir / "run.log")
        return None
    return metrics


def run_ablation(plan: AblationPlan, runner: Runner, model_bytes: int | None = None) -> dict[str, Any]:
    """Run the missing variants in table order, then write tables, curves and ablation.md.

    Parameters
    ----------
    plan : AblationPlan
    runner : Runner
        Runs one `fedureid` command (arguments, log file) and returns its exit code.
    model_bytes : int, optional
        Size of the model's arrays, for the communication table.

    Returns
    -------
    dict
        {"results": {variant: metrics}, "failed": [variant, ...], "files": [...]}; a
        failed variant is left out of the tables and reported.
    """
    plan.run_dir.mkdir(parents=True, exist_ok=True)
    results: dict[str, dict[str, Any]] = {}
    failed: list[str] = []
    timings: dict[str, float] = {}
    for variant in plan.variants:
        t0 = time.time()
        if variant in STANDALONE_VARIANTS:
            metrics = _run_standalone(plan, runner, variant)
        else:
            metrics = _run_federated(plan, variant, runner)
        timings[variant] = round(time.time() - t0, 1)
        if metrics is None:
            failed.append(variant)
        else:
            results[variant] = metrics
    files = write_ablation_outputs(plan.run_dir, results, plan.clients, settings_lines(plan),
                                   model_bytes=model_bytes, failed=failed, wall_s=timings)
    total = sum(timings.values())
    print(f"ablation wall time: {total:.0f} s ({total / 60:.1f} min): "
          + ", ".join(f"{v} {s:.0f} s" for v, s in timings.items()), flush=True)
    summary = {"results": results, "failed": failed, "files": [str(f) for f in files],
               "ablation_wall_s": timings}
    return summary


def settings_lines(plan: AblationPlan) -> list[str]:
    """Markdown bullet lines describing the shared setup."""
    shared = " ".join(plan.overrides) or "(none)"
    lines = [f"- experiment: `{plan.experiment}`, rounds: {plan.rounds}, clients: {', '.join(plan.clients)}",
             f"- data: `{plan.data_root}`",
             f"- shared overrides: `{shared}`",
             f"- standalone = `fedureid standalone algorithm={STANDALONE_ALGORITHM}` per client (no federation)"]
    if any(v in CC_VARIANTS for v in plan.variants):
        lines.append("- cc_* = the same with `learner=cc` (cluster-contrast); cc_baseline = algorithm=baseline "
                     "(FedAvg, fixed epochs), cc_fedureid = algorithm=fedureid pu.mu=0.5 (PE + PU; pc keys do not "
                     "apply to cc; a shared pu.mu wins)")
    if AUTO_VARIANT in plan.variants:
        lines.append(f"- {AUTO_VARIANT} = algorithm=fedureid with `learner=auto`: cluster-contrast on edges with "
                     ">= 2,000 training images, BUC on the smaller ones")
    return lines
