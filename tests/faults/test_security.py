"""Nothing the server keeps or logs holds image data: the checkpoint holds exactly the model's
arrays; checkpoint, run outputs and server-side logs name no image and no edge folder."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from federations import model_reference, private_strings

pytestmark = [pytest.mark.faults, pytest.mark.slow]

META_KEYS = {"round", "clients", "global_keys", "client_keys", "client_examples", "client_first_examples", "history",
             "fingerprint"}


def leaks(text: str, secrets: set[str]) -> list[str]:
    return sorted(s for s in secrets if s in text)


def test_checkpoint_holds_exactly_the_model_arrays(faulty_run):
    reference = model_reference(faulty_run.rc)
    ckpt = faulty_run.run_dir / "checkpoint"
    meta = faulty_run.checkpoint_meta()
    assert META_KEYS <= set(meta) and set(meta) - META_KEYS <= {"arrays_file"}, sorted(meta)
    assert meta["clients"] == ["edge_a", "edge_b"]
    expected = {f"global/{k}" for k in reference}
    expected |= {f"client{i}/{k}" for i in range(len(meta["clients"])) for k in reference}
    npz_files = sorted(ckpt.glob("*.npz"))
    assert len(npz_files) == 1, npz_files
    with np.load(npz_files[0], allow_pickle=False) as z:
        assert set(z.files) == expected
        for key in z.files:
            ref = reference[key.split("/", 1)[1]]
            assert (z[key].shape, z[key].dtype) == (ref.shape, ref.dtype), key
    assert meta["global_keys"] == list(reference)


def test_server_files_and_logs_name_no_image(faulty_run):
    secrets = private_strings(faulty_run.data_root, faulty_run.state_root)
    edge_log = faulty_run.logs.text(edge_side=True)
    # the capture sees file names where they legitimately are: the edge's own log
    damaged = faulty_run.extra["damaged_train"]["edge_a"]
    assert any(name in edge_log for name in damaged), edge_log[-2000:]
    server_log = faulty_run.logs.text(edge_side=False)
    assert "round 2" in server_log and not leaks(server_log, secrets)
    files = [p for p in Path(faulty_run.run_dir).rglob("*") if p.is_file()]
    assert {"metrics.json", "report.md", "meta.json"} <= {p.name for p in files}
    for path in files:
        text = path.read_bytes().decode("latin-1")  # npz/png too: a name would show as bytes
        assert not leaks(text, secrets), (path, leaks(text, secrets)[:5])
