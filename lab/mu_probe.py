"""Can an edge tell, without labels, how much of its own model to keep (PU's mu)?

For each client of a finished run: the models mu x local + (1 - mu) x global for a few mu
(local: the client's last trained model, `edge_state/<client>/local_model.npz`; global: the
run's last checkpoint), each one's rank-1 / mAP on the client's query/gallery (the truth), and
label-free scores on its training features (camera ids only) that could stand in for it:

- `mutual`: share of images whose nearest other-camera image has them as its nearest other-camera image;
- `krec`: mean share of an image's 5 nearest other-camera images that have it among their own 5;
- `ratio`: median of (distance to the nearest other-camera image / to the nearest same-camera image).

Beside them `xprec`, the share whose nearest other-camera image is the same person (needs the
file-name identities: reported only, to see whether even a labelled score on the training images
would pick the right mu).

Run: ``python -m lab.mu_probe RUN_DIR experiment=demo [overrides]``
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

import numpy as np

from reid_core.config.settings import load_settings
from reid_core.features import remove_camera_means
from reid_core.federation.start import ensure_synthetic_data
from reid_core.learners import learner_from_settings

MUS = (0.0, 0.25, 0.5, 0.8, 1.0)


def cross_camera_scores(features: np.ndarray, camids: np.ndarray, pids: np.ndarray, k: int = 5) -> dict[str, float]:
    """The label-free scores above (and xprec) on L2-normalised features."""
    f = features / np.maximum(np.linalg.norm(features, axis=1, keepdims=True), 1e-12)
    sim = f @ f.T
    np.fill_diagonal(sim, -np.inf)
    same = camids[:, None] == camids[None, :]
    cross, within = np.where(same, -np.inf, sim), np.where(same, sim, -np.inf)
    nn = cross.argmax(1)
    best_within = within.max(1)
    has_within = np.isfinite(best_within)
    ratio = (2 - 2 * cross.max(1))[has_within] / np.maximum(2 - 2 * best_within[has_within], 1e-9)
    top = np.argsort(-cross, axis=1)[:, :k]
    krec = np.mean([np.isin(top[top[i]], i).any(axis=1).mean() for i in range(len(f))])
    return {"mutual": float(np.mean(nn[nn] == np.arange(len(f)))), "krec": float(krec),
            "ratio": float(np.median(ratio)) if ratio.size else float("nan"), "xprec": float(np.mean(pids[nn] == pids))}


def mix(local: dict[str, np.ndarray], glob: dict[str, np.ndarray], mu: float) -> dict[str, np.ndarray]:
    """PU's interpolation on floating arrays; counters stay the edge's."""
    return {k: (mu * v + (1 - mu) * glob[k]).astype(v.dtype) if np.issubdtype(v.dtype, np.floating) else v
            for k, v in local.items()}


def probe(run: Path, overrides: list[str]) -> None:
    settings = load_settings(overrides)
    ensure_synthetic_data(settings)
    with np.load(sorted((run / "checkpoint").glob("state_round*.npz"))[-1]) as z:
        glob = {k.split("/", 1)[1]: z[k] for k in z.files if k.startswith("global/")}
    for name in settings.clients:
        with np.load(run / "edge_state" / name / "local_model.npz") as z:
            local = {k: z[k] for k in z.files}
        with tempfile.TemporaryDirectory() as state:
            learner = learner_from_settings(settings, name, settings.client_dir(name), state, kind="buc")
            camids, pids = learner._camids(), learner._identities()
            for mu in MUS:
                arrays = mix(local, glob, mu)
                result = learner.evaluate(arrays)
                feats = learner._features(learner.build(arrays), learner.cfg.cluster.feature)
                if learner.cfg.cluster.camera_normalize:
                    feats = remove_camera_means(feats, camids)
                scores = cross_camera_scores(feats, camids, pids)
                print(json.dumps({"client": name, "mu": mu, "rank1": round(result["rank1"], 1),
                                  "mAP": round(result["mAP"], 1), **{k: round(v, 3) for k, v in scores.items()}}),
                      flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", type=Path)
    parser.add_argument("overrides", nargs="*")
    args = parser.parse_args(argv)
    probe(args.run, args.overrides)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
