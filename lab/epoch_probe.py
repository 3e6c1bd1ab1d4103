"""Every edge's loss and memory precision after each local epoch of an in-process federation.

For choosing a Personalized Epoch rule: it shows whether a round's later epochs still lower
the loss. The federation runs in one process (`reid_core.federation.in_process`: the same core
and learners as the simulation); the epochs are read through `run_epochs`'s per-epoch
callback, so training is unchanged. BUC edges only.

Run: ``python -m lab.epoch_probe --out runs/probe.json experiment=demo run_dir=runs/probe train.epochs=8 pe.rule=none``
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import reid_core.learners.buc.trainer as buc_trainer
import reid_core.learners.epochs as epochs_module
from reid_core.config.settings import load_settings
from reid_core.federation.in_process import run_in_process


def probe(overrides: list[str]) -> dict[str, list[tuple[float, float]]]:
    """{"<client> r<round>": [(loss, precision) per epoch]} of one in-process run."""
    seen: dict[str, list[tuple[float, float]]] = {}
    run_epochs = epochs_module.run_epochs

    def recording(*args, **kwargs):
        desc, chained = kwargs.get("desc", "train"), kwargs.get("epoch_done")

        def epoch_done(epoch: int, loss: float, precision: float) -> None:
            seen.setdefault(desc, []).append((round(loss, 4), round(precision, 4)))
            if chained is not None:
                chained(epoch, loss, precision)

        return run_epochs(*args, **{**kwargs, "epoch_done": epoch_done})

    buc_trainer.run_epochs = recording
    try:
        run_in_process(load_settings(overrides))
    finally:
        buc_trainer.run_epochs = run_epochs
    return seen


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True, type=Path)
    parser.add_argument("overrides", nargs="*")
    args = parser.parse_args(argv)
    seen = probe(args.overrides)
    args.out.write_text(json.dumps(seen, indent=1))
    for key, values in seen.items():
        print(key, " ".join(f"{loss:.2f}/{prec:.2f}" for loss, prec in values))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
