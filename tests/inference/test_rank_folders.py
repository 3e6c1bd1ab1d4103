"""`fedureid rank`: rank any gallery folder for any query folder with a saved model."""

from __future__ import annotations

import csv
import shutil

import numpy as np
import pytest

from reid_core.inference.retrieval import list_images, top_k
from fedureid.cli import main as cli_main


@pytest.fixture()
def folders(tmp_path, smoke_data):
    q, g = tmp_path / "q", tmp_path / "g"
    queries = sorted((smoke_data / "edge_a" / "query").iterdir())[:3]
    (q / "sub").mkdir(parents=True)
    for p in queries[:2]:
        shutil.copy(p, q / p.name)
    shutil.copy(queries[2], q / "sub" / "cam9_x.png")  # nested, and not a Market name
    (q / "broken.jpg").write_bytes(b"")  # unreadable: skipped, not fatal
    (q / "notes.txt").write_text("not an image")
    shutil.copytree(smoke_data / "edge_a" / "bounding_box_test", g)
    shutil.copy(queries[0], g / "copy_of_first_query.png")
    return q, g, queries[0].name


def _read(path):
    with open(path) as f:
        return list(csv.DictReader(f))


def test_rank_writes_top_k_per_query_and_finds_an_identical_image_first(tmp_path, fake_run, folders):
    q, g, first = folders
    out = tmp_path / "ranking.csv"
    rc = cli_main(["rank", f"checkpoint={fake_run / 'checkpoint'}", f"query={q}", f"gallery={g}",
                   "client=edge_a", "k=5", f"out={out}"])
    assert rc == 0
    rows = _read(out)
    queries = sorted({r["query"] for r in rows})
    assert len(queries) == 3 and not any("broken" in x for x in queries)
    assert len(rows) == 3 * 5
    for qpath in queries:
        mine = [r for r in rows if r["query"] == qpath]
        assert [int(r["rank"]) for r in mine] == [1, 2, 3, 4, 5]
        dist = [float(r["distance"]) for r in mine]
        assert dist == sorted(dist)
    top = [r for r in rows if r["query"].endswith(first) and r["rank"] == "1"][0]
    assert top["gallery"].endswith("copy_of_first_query.png") and float(top["distance"]) < 1e-4


def test_rank_with_global_model_and_k_larger_than_gallery(tmp_path, fake_run, smoke_data):
    out = tmp_path / "r.csv"
    gallery = smoke_data / "edge_c" / "bounding_box_test"
    n = len(list_images(gallery))
    rc = cli_main(["rank", f"checkpoint={fake_run}", f"query={smoke_data / 'edge_c' / 'query'}",
                   f"gallery={gallery}", "model=global", "k=1000", f"out={out}"])
    assert rc == 0
    rows = _read(out)
    assert max(int(r["rank"]) for r in rows) == n


def test_rank_refuses_missing_folder(tmp_path, fake_run, capsys):
    rc = cli_main(["rank", f"checkpoint={fake_run}", f"query={tmp_path / 'nope'}", f"gallery={tmp_path}",
                   "model=global", f"out={tmp_path / 'r.csv'}"])
    assert rc == 2
    assert "image folder not found" in capsys.readouterr().err


def test_top_k_hand_worked():
    q = np.array([[1.0, 0.0], [0.0, 1.0]], dtype=np.float32)
    g = np.array([[0.0, 1.0], [1.0, 0.0], [0.6, 0.8]], dtype=np.float32)
    order, dist = top_k(q, g, 2)
    assert order.tolist() == [[1, 2], [0, 2]]
    np.testing.assert_allclose(dist, [[0.0, 0.8], [0.0, 0.4]], atol=1e-6)
    with pytest.raises(ValueError, match="k must be"):
        top_k(q, g, 0)
