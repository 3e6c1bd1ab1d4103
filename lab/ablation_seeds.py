"""The ablation over several seeds: one full ablation per seed, then mean +- std tables.

With 60-316 queries per client one query is 0.3-1.7 rank-1 points, so a single seed
cannot tell most variants apart; the spread over seeds says which differences hold.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from lab.ablation import AblationPlan
from lab.ablation_checks import checks_markdown, curves_markdown, learner_checks, learning_checks
from lab.ablation_report import METRIC_LABELS, compute_seconds, total_epochs, write_table_files
from reid_core.federation.diagnostics_table import diagnostics_over_seeds

Results = Mapping[str, Mapping[str, Any]]  # variant -> metrics.json of one seed


def parse_seeds(text: str) -> tuple[int, ...]:
    """`[0,1,2]` or `0,1,2` -> (0, 1, 2); duplicates and non-integers are refused."""
    parts = [p.strip() for p in text.strip().strip("[]").split(",") if p.strip()]
    try:
        seeds = tuple(int(p) for p in parts)
    except ValueError as err:
        raise ValueError(f"seeds: expected a list of integers like [0,1,2], got {text!r}") from err
    if not seeds:
        raise ValueError("seeds: give at least one seed, e.g. seeds=[0,1,2]")
    if len(set(seeds)) != len(seeds):
        raise ValueError(f"seeds: duplicates in {list(seeds)}")
    return seeds


def seed_plan(plan: AblationPlan, seed: int) -> AblationPlan:
    """The same ablation with `seed=S`, in its own folder `run_dir/seed_S`."""
    overrides = tuple(o for o in plan.overrides if not o.startswith("seed=")) + (f"seed={seed}",)
    return replace(plan, run_dir=plan.run_dir / f"seed_{seed}", overrides=overrides)


def _final(metrics: Mapping[str, Any], client: str, metric: str) -> float:
    return float(metrics.get("final", {}).get(client, {}).get(metric, math.nan))


def _mean_std(values: Sequence[float]) -> tuple[float, float]:
    v = np.array([x for x in values if not math.isnan(x)], dtype=float)
    if v.size == 0:
        return math.nan, math.nan
    return float(v.mean()), float(v.std(ddof=1)) if v.size > 1 else 0.0


def seeds_rows(per_seed: Mapping[int, Results], clients: Sequence[str], metric: str) -> list[list[Any]]:
    """Rows [method, (mean, std) per client..., (mean, std) of the client mean, #seeds]."""
    variants = [v for r in per_seed.values() for v in r]
    rows = []
    for variant in dict.fromkeys(variants):  # table order, each once
        runs = [r[variant] for r in per_seed.values() if variant in r]
        cells = [_mean_std([_final(m, c, metric) for m in runs]) for c in clients]
        client_means = [float(np.nanmean([_final(m, c, metric) for c in clients])) for m in runs]
        rows.append([variant, *cells, _mean_std(client_means), len(runs)])
    return rows


def wins(per_seed: Mapping[int, Results], clients: Sequence[str], metric: str,
         better: str = "fedureid", than: str = "baseline") -> dict[str, tuple[int, int]]:
    """Per client: (#seeds where `better` > `than`, #seeds with both)."""
    out = {}
    for c in clients:
        pairs = [(_final(r[better], c, metric), _final(r[than], c, metric))
                 for r in per_seed.values() if better in r and than in r]
        out[c] = (sum(a > b for a, b in pairs), len(pairs))
    return out


def seeds_markdown(rows: Sequence[Sequence[Any]], clients: Sequence[str], metric: str) -> str:
    lines = [f"| {METRIC_LABELS.get(metric, metric)} (%), mean ± std | " + " | ".join(clients) + " | mean | seeds |",
             "|---" * (len(clients) + 3) + "|"]
    for r in rows:
        cells = ["n/a" if math.isnan(m) else f"{m:.1f} ± {s:.1f}" for m, s in r[1:-1]]
        lines.append(f"| {r[0]} | " + " | ".join(cells) + f" | {r[-1]} |")
    return "\n".join(lines)


def seeds_csv(rows: Sequence[Sequence[Any]], clients: Sequence[str]) -> str:
    head = ["method", *(f"{c}_{s}" for c in [*clients, "mean"] for s in ("mean", "std")), "seeds"]
    body = [[r[0], *(("" if math.isnan(x) else f"{x:.2f}") for cell in r[1:-1] for x in cell), str(r[-1])]
            for r in rows]
    return "\n".join(",".join(line) for line in [head, *body]) + "\n"


def compute_over_seeds(per_seed: Mapping[int, Results]) -> str:
    """Local epochs and compute seconds per variant, mean over seeds."""
    lines = ["| method | local epochs (mean over seeds) | client compute s (mean) |", "|---|---|---|"]
    variants = dict.fromkeys(v for r in per_seed.values() for v in r)
    for v in variants:
        runs = [r[v] for r in per_seed.values() if v in r]
        lines.append(f"| {v} | {np.mean([total_epochs(m) for m in runs]):.1f} | "
                     f"{np.mean([compute_seconds(m) for m in runs]):.0f} |")
    return "\n".join(lines)


def write_seed_summary(run_dir: Path, per_seed: Mapping[int, Results], clients: Sequence[str],
                       setting_lines: Sequence[str], failed: Mapping[int, Sequence[str]],
                       rounds: int | None = None) -> list[Path]:
    """ablation_seeds_{rank1,mAP}.{md,csv} and the top-level ablation.md linking each seed's.

    With `rounds`, also the client-mean rank-1 per round (round 0 = untrained) with each
    variant's best round and erosion, and the learning checks of FedUReID (`ablation_checks`).
    """
    run_dir = Path(run_dir)
    files: list[Path] = []
    md = ["# Ablation over seeds", "", *setting_lines, f"- seeds: {', '.join(map(str, per_seed))} "
          "(each seed's own tables, curves and traffic: " +
          ", ".join(f"[seed {s}](seed_{s}/ablation.md)" for s in per_seed) + ")", ""]
    bad = {s: f for s, f in failed.items() if f}
    if bad:
        md += ["**Failed or incomplete (left out): " +
               "; ".join(f"seed {s}: {', '.join(f)}" for s, f in bad.items()) + "**", ""]
    for metric in METRIC_LABELS:
        rows = seeds_rows(per_seed, clients, metric)
        table = seeds_markdown(rows, clients, metric)
        files += write_table_files(run_dir, f"ablation_seeds_{metric}", table, seeds_csv(rows, clients))
        won = wins(per_seed, clients, metric)
        md += [f"## Final {METRIC_LABELS[metric]} per client", "", table, "",
               "fedureid > baseline in " + ", ".join(f"{c}: {a}/{n} seeds" for c, (a, n) in won.items()), ""]
    if rounds:
        md += ["## Mean rank-1 over clients per round (mean over seeds)", "",
               curves_markdown(per_seed, clients, rounds), ""]
        checks = [*learning_checks(per_seed, clients, rounds),
                  *learning_checks(per_seed, clients, rounds, "cc_fedureid", "cc_baseline", "cc_standalone"),
                  *learner_checks(per_seed, clients), *learner_checks(per_seed, clients, cc="auto_fedureid")]
        if checks:
            md += ["## Learning checks", "", checks_markdown(checks), ""]
    diagnostics = diagnostics_over_seeds(per_seed, clients)
    if diagnostics:
        md += ["## Learning diagnostics per round (mean over seeds)", "", diagnostics, ""]
    md += ["## Local compute", "", compute_over_seeds(per_seed), ""]
    path = run_dir / "ablation.md"
    path.write_text("\n".join(md))
    return [*files, path]
