"""Cloud state checkpointed to disk after every round, and resumed from it."""

from __future__ import annotations

import json
import logging
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

log = logging.getLogger(__name__)

ARRAYS_FILE = "state.npz"  # checkpoints written before arrays files were named by round
META_FILE = "meta.json"


@dataclass
class ServerState:
    """Global model, each client's last uploaded local model, and the history."""

    round: int = 0  # last completed round
    global_arrays: dict[str, np.ndarray] = field(default_factory=dict)
    client_arrays: dict[str, dict[str, np.ndarray]] = field(default_factory=dict)
    client_examples: dict[str, int] = field(default_factory=dict)
    client_first_examples: dict[str, int] = field(default_factory=dict)  # each edge's count when first accepted
    history: list[dict[str, Any]] = field(default_factory=list)
    fingerprint: str = ""

    def round_record(self, rnd: int) -> dict[str, Any]:
        """The history entry of round `rnd`, created on first use."""
        for rec in self.history:
            if rec["round"] == rnd:
                return rec
        rec = {"round": rnd, "clients": {}, "rejected": []}
        self.history.append(rec)
        return rec

    def save(self, directory: str | os.PathLike) -> None:
        """Write atomically: a crash mid-write never leaves a half checkpoint.

        The arrays go to a new file named by round; meta.json, written last, points to it.
        A crash between the two leaves the previous round's pair intact.
        """
        d = Path(directory)
        d.mkdir(parents=True, exist_ok=True)
        flat = {f"global/{k}": v for k, v in self.global_arrays.items()}
        names = sorted(self.client_arrays)
        for i, name in enumerate(names):
            flat.update({f"client{i}/{k}": v for k, v in self.client_arrays[name].items()})
        meta = {
            "round": self.round,
            "clients": names,
            "global_keys": list(self.global_arrays),
            "client_keys": {n: list(self.client_arrays[n]) for n in names},
            "client_examples": self.client_examples,
            "client_first_examples": self.client_first_examples,
            "history": self.history,
            "fingerprint": self.fingerprint,
            "arrays_file": f"state_round{self.round}.npz",
        }
        _atomic_write(d / meta["arrays_file"], lambda f: np.savez(f, **flat))
        _atomic_write(d / META_FILE, lambda f: f.write(json.dumps(meta, indent=1).encode()))
        for old in d.glob("state*.npz"):  # earlier rounds' arrays, now unreferenced
            if old.name != meta["arrays_file"]:
                old.unlink()
        log.info("checkpoint: round %d saved to %s", self.round, d)

    @classmethod
    def load(cls, directory: str | os.PathLike) -> "ServerState | None":
        """Read a checkpoint, or None when there is none."""
        d = Path(directory)
        if not (d / META_FILE).exists():
            return None
        meta = json.loads((d / META_FILE).read_text())
        arrays_file = d / meta.get("arrays_file", ARRAYS_FILE)
        if not arrays_file.exists():
            return None
        with np.load(arrays_file) as z:
            glob = {k: z[f"global/{k}"] for k in meta["global_keys"]}
            clients = {
                name: {k: z[f"client{i}/{k}"] for k in meta["client_keys"][name]}
                for i, name in enumerate(meta["clients"])
            }
        return cls(
            round=int(meta["round"]),
            global_arrays=glob,
            client_arrays=clients,
            client_examples={k: int(v) for k, v in meta["client_examples"].items()},
            client_first_examples={k: int(v) for k, v in meta.get("client_first_examples", {}).items()},
            history=meta["history"],
            fingerprint=meta.get("fingerprint", ""),
        )


def _atomic_write(path: Path, write: Any) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
