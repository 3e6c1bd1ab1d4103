"""Each client's identity-count estimate against its true count, on the features Personalized
Clustering sees; the features (with camera ids and file-name identities) are kept for study.

The features are the ones Personalized Clustering sees: `cluster.feature`, each camera's mean
removed where `pc.camera_normalize` says so, from the model an edge trained last (a run's
`edge_state/<client>/local_model.npz`, else its checkpoint) or, without `--run`, the initial model.

Run: ``python -m lab.identity_features --out runs/idfeat/real_r3 --run RUN_DIR experiment=real_cpu``
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np

from reid_core.config.settings import load_settings
from reid_core.federation.start import ensure_synthetic_data
from reid_core.learners import learner_from_settings
from reid_core.features import remove_camera_means
from reid_core.federation.state import ServerState
from reid_core.personalization.identity_count import estimate_identities


def local_model(run: Path, name: str) -> dict[str, np.ndarray]:
    """The model edge `name` trained last: its own file where the edge mixes (edge-side PU), else the
    run's checkpoint, which holds every edge's last model (cloud-side PU writes no file at the edge)."""
    path = run / "edge_state" / name / "local_model.npz"
    if path.exists():
        with np.load(path) as z:
            return {k: z[k] for k in z.files}
    state = ServerState.load(run / "checkpoint")
    if state is None or name not in state.client_arrays:
        raise FileNotFoundError(f"{run}: neither {path} nor a checkpoint holding '{name}'s model")
    return state.client_arrays[name]


def dump(out: Path, run: Path | None, overrides: list[str]) -> None:
    settings = load_settings(overrides)
    ensure_synthetic_data(settings)
    out.mkdir(parents=True, exist_ok=True)
    for name in settings.clients:
        with tempfile.TemporaryDirectory() as state:
            learner = learner_from_settings(settings, name, settings.client_dir(name), state, kind="buc")
            model = learner.build(None if run is None else local_model(run, name))
            feats = learner._features(model, learner.cfg.cluster.feature)
            camids = learner._camids()
            if learner.cfg.cluster.camera_normalize:
                feats = remove_camera_means(feats, camids)
            pids = learner._identities()
        np.savez(out / f"{name}.npz", features=feats, camids=camids, pids=pids)
        est, true = estimate_identities(feats, camids), len(np.unique(pids))
        shares = ", ".join(f"{c.duplicate_share:.2f}" for c in est.cameras)
        print(f"{name}: {len(feats)} images, {len(np.unique(camids))} cameras, {true} identities; "
              f"estimate {est.count} ({100 * (est.count - true) / true:+.0f}%), "
              f"{'trusted' if est.trusted else 'untrusted'}; near-duplicate share per camera {shares}", flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True, type=Path)
    parser.add_argument("--run", type=Path, default=None)
    parser.add_argument("overrides", nargs="*")
    args = parser.parse_args(argv)
    dump(args.out, args.run, args.overrides)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
