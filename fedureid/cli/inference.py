"""`fedureid show | rank`: a trained model's retrieval, drawn or written for a folder of queries."""

from __future__ import annotations

import sys
from typing import Sequence

from fedureid.cli.args import key_values, usage_error


def _model_kind(own: dict[str, str]) -> str:
    kind = own.get("model", "personalized")
    return "personalized" if kind == "personalised" else kind


def cmd_show(args: Sequence[str]) -> int:
    """Draw one query and its top-k gallery matches from a checkpointed model."""
    from reid_core.inference.view import show_retrieval

    own, rest = key_values(args, ("checkpoint", "data", "client", "query", "k", "out", "model"), "show")
    if "checkpoint" not in own or "data" not in own:
        raise usage_error("show", "needs checkpoint=RUN_DIR/checkpoint data=DIR")
    query: int | str = own.get("query", "0")
    query = int(query) if str(query).lstrip("-").isdigit() else str(query)
    out = own.get("out", "retrieval.png")
    try:
        scores = show_retrieval(own["checkpoint"], own["data"], out, client=own.get("client"), query=query,
                                k=int(own.get("k", 10)), kind=_model_kind(own), extra_overrides=rest)
    except (ValueError, FileNotFoundError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(f"rank-1 {scores['rank1']:.1f}  mAP {scores['mAP']:.1f}; written: {out}")
    return 0


def cmd_rank(args: Sequence[str]) -> int:
    """Rank a gallery folder for every image of a query folder with a trained model."""
    from reid_core.inference.retrieval import rank_folders

    own, rest = key_values(args, ("checkpoint", "query", "gallery", "client", "k", "out", "model"), "rank")
    missing = [k for k in ("checkpoint", "query", "gallery") if k not in own]
    if missing:
        raise usage_error("rank", f"needs {', '.join(k + '=...' for k in missing)}")
    out = own.get("out", "ranking.csv")
    try:
        counts = rank_folders(own["checkpoint"], own["query"], own["gallery"], out, client=own.get("client"),
                              kind=_model_kind(own), k=int(own.get("k", 10)), extra_overrides=rest)
    except (ValueError, FileNotFoundError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(f"{counts['queries']} queries x top-{counts['k']} of {counts['gallery']} gallery images "
          f"({counts['skipped']} unreadable skipped) -> {out}")
    return 0
