"""Results of a run: metrics.json (the contract), report.md (paper-style table), curves.png."""

from __future__ import annotations

import json
import os
from pathlib import Path

from reid_core.federation.diagnostics_table import diagnostics_markdown
from typing import Any, Mapping, Sequence

EVAL_KEYS = ("rank1", "rank5", "rank10", "mAP")


def build_metrics(history: Sequence[Mapping[str, Any]], meta: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """{"rounds": [{"round", "clients": {name: {...}}}], "final": {name: {rank1..mAP}}, ...}."""
    rounds = sorted((r for r in history if r["round"] >= 1), key=lambda r: r["round"])
    initial = {name: {k: round(float(m[k]), 2) for k in EVAL_KEYS if k in m}
               for r in history if r["round"] == 0 for name, m in r["clients"].items()}
    final: dict[str, dict[str, float]] = {}
    for rec in rounds:  # the last evaluation each client reported
        for name, m in rec["clients"].items():
            if all(k in m for k in EVAL_KEYS):
                final[name] = {k: round(float(m[k]), 2) for k in EVAL_KEYS}
    out = {"rounds": list(rounds), "final": dict(sorted(final.items())), "initial": dict(sorted(initial.items()))}
    out.update(meta or {})
    return out


def markdown_table(final: Mapping[str, Mapping[str, float]], title: str = "") -> str:
    """Per-client rank-1/5/10/mAP table plus the mean row."""
    lines = [f"### {title}", ""] if title else []
    lines += ["| client | rank-1 | rank-5 | rank-10 | mAP |", "|---|---|---|---|---|"]
    for name, m in final.items():
        lines.append(f"| {name} | {m['rank1']:.1f} | {m['rank5']:.1f} | {m['rank10']:.1f} | {m['mAP']:.1f} |")
    if final:
        mean = {k: sum(m[k] for m in final.values()) / len(final) for k in EVAL_KEYS}
        lines.append(f"| **mean** | {mean['rank1']:.1f} | {mean['rank5']:.1f} | {mean['rank10']:.1f} | {mean['mAP']:.1f} |")
    return "\n".join(lines)


def per_round_table(metrics: Mapping[str, Any], key: str = "rank1") -> str:
    """Rounds x clients table of one metric."""
    names = sorted({n for r in metrics["rounds"] for n in r["clients"]})
    lines = ["| round | " + " | ".join(names) + " |", "|---" * (len(names) + 1) + "|"]
    if metrics.get("initial"):  # round 0 = the untrained starting model
        lines.append("| 0 (init) | " + " | ".join(f"{metrics['initial'].get(n, {}).get(key, float('nan')):.1f}"
                                                 for n in names) + " |")
    for r in metrics["rounds"]:
        if not any(key in m for m in r["clients"].values()):  # no evaluation after this round (evaluate_every)
            continue
        cells = [f"{r['clients'].get(n, {}).get(key, float('nan')):.1f}" for n in names]
        lines.append(f"| {r['round']} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def plot_curves(metrics: Mapping[str, Any], path: str | os.PathLike) -> None:
    """rank-1 and mAP per round per client."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = sorted({n for r in metrics["rounds"] for n in r["clients"]})
    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    for ax, key, label in zip(axes, ("rank1", "mAP"), ("rank-1 (%)", "mAP (%)")):
        for n in names:
            pts = [(0, metrics["initial"][n][key])] if key in metrics.get("initial", {}).get(n, {}) else []
            pts += [(r["round"], r["clients"][n][key]) for r in metrics["rounds"] if key in r["clients"].get(n, {})]
            if pts:
                ax.plot(*zip(*pts), marker="o", label=n)
        ax.set_xlabel("round")
        ax.set_ylabel(label)
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=8)
    fig.suptitle(str(metrics.get("experiment", "")) + " " + str(metrics.get("algorithm", "")))
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def privacy_table(metrics: Mapping[str, Any]) -> str:
    """Per noised round: the noise and the privacy spent so far (empty without DP)."""
    rows = [r for r in metrics["rounds"] if "dp" in r]
    if not rows:
        return ""
    lines = ["| round | noise multiplier | clipping norm | noise std | epsilon spent | delta |", "|---|---|---|---|---|---|"]
    for r in rows:
        dp = r["dp"]
        eps = f"{dp['epsilon']:.2f}" if "epsilon" in dp else "-"
        lines.append(f"| {r['round']} | {dp['noise_multiplier']:g} | {dp['clipping_norm']:g} | {dp['noise_std']:.3g} | "
                     f"{eps} | {dp.get('delta', '-')} |")
    return "\n".join(lines)


def write_run_outputs(run_dir: str | os.PathLike, history: Sequence[Mapping[str, Any]],
                      meta: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Write metrics.json, report.md and curves.png into `run_dir`; return the metrics."""
    d = Path(run_dir)
    d.mkdir(parents=True, exist_ok=True)
    metrics = build_metrics(history, meta)
    (d / "metrics.json").write_text(json.dumps(metrics, indent=1))
    title = f"{metrics.get('experiment', '')} / {metrics.get('algorithm', '')}: final per-client results"
    md = [f"# Run report: {metrics.get('experiment', '')}", "", markdown_table(metrics["final"], title), "",
          "### rank-1 per round", "", per_round_table(metrics, "rank1"), "",
          "### mAP per round", "", per_round_table(metrics, "mAP"), "", "![curves](curves.png)", ""]
    diagnostics = diagnostics_markdown({metrics.get("algorithm", "run"): metrics},
                                       sorted({n for r in metrics["rounds"] for n in r["clients"]}))
    if diagnostics:
        md += ["## Learning diagnostics", "", diagnostics, ""]
    if privacy_table(metrics):
        md += ["## Differential privacy", "", privacy_table(metrics), ""]
    (d / "report.md").write_text("\n".join(md))
    if metrics["rounds"]:
        plot_curves(metrics, d / "curves.png")
    return metrics
