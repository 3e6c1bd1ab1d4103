"""Ablation outputs: per-metric method x client tables, compute, traffic, curves, ablation.md."""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from lab.ablation_checks import wall_seconds
from reid_core.federation.diagnostics_table import diagnostics_markdown

METRIC_LABELS = {"rank1": "rank-1", "mAP": "mAP"}
# Pairs that differ only in Personalized Epoch: (without PE, with PE).
PE_PAIRS = (("baseline", "pe"), ("pc", "pc_pe"), ("baseline", "fedureid"), ("cc_baseline", "cc_fedureid"))
MB = 1024 * 1024


def final_table(results: Mapping[str, Mapping[str, Any]], clients: Sequence[str],
                metric: str) -> list[list[Any]]:
    """Rows [method, value per client..., mean]; NaN where a client has no result."""
    rows = []
    for variant, metrics in results.items():
        values = [float(metrics.get("final", {}).get(c, {}).get(metric, math.nan)) for c in clients]
        rows.append([variant, *values, float(np.nanmean(values)) if not all(map(math.isnan, values)) else math.nan])
    return rows


def table_markdown(rows: Sequence[Sequence[Any]], clients: Sequence[str], metric: str) -> str:
    """Paper-style table; the best value of each column is bold."""
    header = ["method", *clients, "mean"]
    best = [np.nanmax([r[i] for r in rows]) if rows and any(not math.isnan(r[i]) for r in rows) else math.nan
            for i in range(1, len(header))]
    lines = [f"| {METRIC_LABELS.get(metric, metric)} (%) | " + " | ".join(header[1:]) + " |",
             "|---" * len(header) + "|"]
    for r in rows:
        cells = []
        for i, v in enumerate(r[1:]):
            text = "n/a" if math.isnan(v) else f"{v:.1f}"
            cells.append(f"**{text}**" if not math.isnan(v) and v == best[i] and len(rows) > 1 else text)
        lines.append(f"| {r[0]} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def table_csv(rows: Sequence[Sequence[Any]], clients: Sequence[str]) -> str:
    """The same table as CSV (2 decimals, empty cell for a missing value)."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(["method", *clients, "mean"])
    for r in rows:
        writer.writerow([r[0], *("" if math.isnan(v) else f"{v:.2f}" for v in r[1:])])
    return buf.getvalue()


def total_epochs(metrics: Mapping[str, Any]) -> int:
    """Local epochs summed over rounds and clients (the PE saving shows here)."""
    return int(sum(m.get("epochs", 0) for r in metrics.get("rounds", []) for m in r["clients"].values()))


def compute_seconds(metrics: Mapping[str, Any]) -> float:
    """Clients' local training + clustering time (`time-compute`) summed over rounds."""
    return float(sum(m.get("time-compute", 0.0) for r in metrics.get("rounds", []) for m in r["clients"].values()))


def model_nbytes(arrays: Mapping[str, np.ndarray]) -> int:
    """Bytes of a model's arrays (what one upload or one download carries)."""
    return int(sum(np.asarray(a).nbytes for a in arrays.values()))


def communication(model_bytes: int, num_clients: int, mu: float, pu_where: str,
                  train_from: str = "personalized") -> dict[str, Any]:
    """Model bytes per round between cloud and edges (training messages; metrics are tiny).

    Every edge uploads its model (K x S up) and downloads one model (S each, K x S in
    all over point-to-point gRPC). What differs is how many *distinct* models the
    cloud builds and pushes into the SuperLink (Flower stores objects by content):
    cloud PU (mu > 0) makes K personalised models, edge PU, mu = 0 and PU whose edges train from the
    global model (`pu.train_from=global`) one broadcast.
    The evaluation step sends the same model again (another K x S down).
    """
    personal = mu > 0 and pu_where == "cloud" and train_from == "personalized"
    distinct = num_clients if personal else 1
    return {"model_MB": model_bytes / MB, "up_MB": num_clients * model_bytes / MB,
            "down_per_edge_MB": model_bytes / MB, "down_total_MB": num_clients * model_bytes / MB,
            "distinct_down": distinct, "distinct_down_MB": distinct * model_bytes / MB}


def _change(before: float, after: float) -> str:
    """'13% less' or '7% more' (compute can rise when fewer epochs meet more merging)."""
    pct = 100 * (before - after) / before
    return f"{pct:.0f}% less" if pct >= 0 else f"{-pct:.0f}% more"


def compute_markdown(results: Mapping[str, Mapping[str, Any]]) -> str:
    """Total local epochs, compute seconds and wall time per variant, plus PE savings."""
    lines = ["| method | local epochs (sum) | client compute s (sum) | wall s |", "|---|---|---|---|"]
    for v, m in results.items():
        lines.append(f"| {v} | {total_epochs(m)} | {compute_seconds(m):.0f} | {wall_seconds(m):.0f} |")
    savings = []
    for without, with_pe in PE_PAIRS:
        if without in results and with_pe in results:
            a, b = total_epochs(results[without]), total_epochs(results[with_pe])
            ca, cb = compute_seconds(results[without]), compute_seconds(results[with_pe])
            if a and ca:
                savings.append(f"- {with_pe} vs {without}: {b} vs {a} local epochs "
                               f"({100 * (a - b) / a:.0f}% fewer), compute {cb:.0f} s vs {ca:.0f} s "
                               f"({_change(ca, cb)})")
    return "\n".join(lines + ([""] + savings if savings else []))


def measured_traffic(metrics: Mapping[str, Any]) -> dict[str, float] | None:
    """MB per round as the strategy counted them (ArrayRecord bytes), from the last round
    that has them (round 1 always sends one global model; later rounds show PU), or None."""
    for rec in sorted(metrics.get("rounds", []), key=lambda r: -r["round"]):
        t = rec.get("traffic")
        if t and "train_up_bytes" in t:
            return {"round": rec["round"], **{k: v / MB for k, v in t.items() if k.endswith("_bytes")},
                    "train_down_distinct": t.get("train_down_distinct", 0)}
    return None


def communication_markdown(results: Mapping[str, Mapping[str, Any]], model_bytes: int,
                           num_clients: int) -> str:
    """Per-round traffic table of the federated variants (cloud vs edge PU for mu > 0).

    Computed columns follow from the model size; measured ones are the strategy's own
    count of the ArrayRecords it sent and received (when the run recorded them).
    """
    lines = [f"Model: {model_bytes / MB:.2f} MB of arrays; {num_clients} edges; per training round.", "",
             "| method | mu | PU at | up (MB) | down per edge (MB) | down total (MB) | distinct models pushed down "
             "| measured: up / down total / distinct down (MB) |",
             "|---|---|---|---|---|---|---|---|"]
    seen_pu = False
    notes = ["", "Each edge uploads and downloads one model per round; Flower's evaluate step sends the "
             "(personalised) model down once more (another K x model down), metrics up are a few bytes."]
    for v, m in results.items():
        if v in ("standalone", "cc_standalone"):
            continue
        mu, where = float(m.get("mu", 0.0)), str(m.get("pu_where", "cloud"))
        start = str(m.get("pu_train_from", "personalized"))
        measured = measured_traffic(m)
        rows = [(where, communication(model_bytes, num_clients, mu, where, start), measured)]
        if mu > 0:
            seen_pu = True
            other = "edge" if where == "cloud" else "cloud"
            rows.append((f"{other} (computed)", communication(model_bytes, num_clients, mu, other, start), None))
        for at, c, got in rows:
            meas = (f"{got['train_up_bytes']:.2f} / {got['train_down_bytes']:.2f} / "
                    f"{got['train_down_distinct_bytes']:.2f} (round {got['round']})" if got else "-")
            lines.append(f"| {v} | {mu:g} | {at} | {c['up_MB']:.2f} | {c['down_per_edge_MB']:.2f} | "
                         f"{c['down_total_MB']:.2f} | {c['distinct_down']} ({c['distinct_down_MB']:.2f} MB) | {meas} |")
    if seen_pu:
        lines += ["", "Cloud PU builds one personalised model per edge; edge PU broadcasts the global "
                  "model and mu, and each edge mixes with its own last local model (same result)."]
    return "\n".join(lines + notes)


def plot_ablation_curves(results: Mapping[str, Mapping[str, Any]], clients: Sequence[str],
                         metric: str, path: str | Path) -> None:
    """One panel for the mean over clients and one per client; one line per method."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    panels = ["mean", *clients]
    cols = min(len(panels), 4)
    rows = math.ceil(len(panels) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(4 * cols, 3.2 * rows), squeeze=False)
    for ax, panel in zip(axes.flat, panels):
        for variant, m in results.items():
            pts = []
            for rec in sorted(m.get("rounds", []), key=lambda r: r["round"]):
                if rec["round"] < 1:
                    continue  # standalone's round-0 evaluation has no federated counterpart
                vals = [rec["clients"].get(c, {}).get(metric) for c in (clients if panel == "mean" else [panel])]
                if all(v is not None for v in vals):
                    pts.append((rec["round"], float(np.mean(vals))))
            if pts:
                ax.plot(*zip(*pts), marker="o", markersize=3, label=variant,
                        linestyle="--" if variant.endswith("standalone") else "-")
        ax.set_title(f"{panel}: {METRIC_LABELS.get(metric, metric)}")
        ax.set_xlabel("round")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(alpha=0.3)
    for ax in list(axes.flat)[len(panels):]:
        ax.axis("off")
    axes.flat[0].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def write_table_files(run_dir: Path, stem: str, markdown: str, csv_text: str) -> list[Path]:
    """`stem`.md and `stem`.csv in `run_dir`."""
    paths = []
    for suffix, text in (("md", markdown + "\n"), ("csv", csv_text)):
        path = Path(run_dir) / f"{stem}.{suffix}"
        path.write_text(text)
        paths.append(path)
    return paths


def wall_time_markdown(wall_s: Mapping[str, float]) -> str:
    """Seconds per variant as run now (a variant complete from an earlier run takes ~0 s)."""
    total = sum(wall_s.values())
    rows = [f"| {v} | {s:.0f} |" for v, s in wall_s.items()]
    return "\n".join(["| variant | seconds |", "|---|---|", *rows, f"| **total** | **{total:.0f}** ({total / 60:.1f} min) |"])


def write_ablation_outputs(run_dir: Path, results: Mapping[str, Mapping[str, Any]], clients: Sequence[str],
                           setting_lines: Sequence[str], model_bytes: int | None = None,
                           failed: Sequence[str] = (), wall_s: Mapping[str, float] | None = None) -> list[Path]:
    """Write ablation_{rank1,mAP}.{md,csv}, ablation_curves_{rank1,mAP}.png and ablation.md."""
    run_dir = Path(run_dir)
    files: list[Path] = []
    md = ["# Ablation", "", *setting_lines, ""]
    if failed:
        md += [f"**Failed or incomplete (left out): {', '.join(failed)}**", ""]
    for metric in METRIC_LABELS:
        rows = final_table(results, clients, metric)
        table = table_markdown(rows, clients, metric)
        files += write_table_files(run_dir, f"ablation_{metric}", table, table_csv(rows, clients))
        md += [f"## Final {METRIC_LABELS[metric]} per client", "", table, ""]
        if results:
            png = run_dir / f"ablation_curves_{metric}.png"
            plot_ablation_curves(results, clients, metric, png)
            files.append(png)
            md += [f"![{metric} per round]({png.name})", ""]
    md += ["## Local compute", "", compute_markdown(results), ""]
    if wall_s:
        md += ["## Wall time of this invocation", "", wall_time_markdown(wall_s), ""]
    diagnostics = diagnostics_markdown(results, clients)
    if diagnostics:
        md += ["## Learning diagnostics per round", "", diagnostics, ""]
    if model_bytes:
        md += ["## Communication per round", "", communication_markdown(results, model_bytes, len(clients)), ""]
    path = run_dir / "ablation.md"
    path.write_text("\n".join(md))
    return [*files, path]
