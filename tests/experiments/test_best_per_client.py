"""scripts/best_per_client.py: each client's best mAP over runs, on hand-made metrics.json files."""

import importlib.util
import json
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "best_per_client.py"
spec = importlib.util.spec_from_file_location("best_per_client", SCRIPT)
best_per_client = importlib.util.module_from_spec(spec)
spec.loader.exec_module(best_per_client)


def _run(folder: Path, final: dict, rounds: list) -> None:
    folder.mkdir(parents=True)
    (folder / "metrics.json").write_text(json.dumps({"final": final, "rounds": rounds}))


def test_best_final_and_best_round_per_client(tmp_path, capsys):
    _run(tmp_path / "fed", {"a": {"mAP": 10.0}, "b": {"mAP": 4.0}},
         [{"round": 1, "clients": {"a": {"mAP": 12.0}, "b": {"mAP": 3.0}}}])
    _run(tmp_path / "alone" / "b", {"b": {"mAP": 6.0}}, [{"round": 1, "clients": {"b": {"mAP": 6.0}}}])
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "metrics.json").write_text("{not json")
    best = best_per_client.best_per_client([tmp_path], ["a", "b"])
    assert {c: v for c, (v, _) in best.items()} == {"a": 10.0, "b": 6.0}
    assert best["b"][1].endswith("alone/b (final)")
    assert best_per_client.best_per_client([tmp_path], ["a"], any_round=True)["a"][0] == 12.0
    assert best_per_client.main([str(tmp_path), "--clients", "a", "b"]) == 0
    out = capsys.readouterr()
    assert "mean  mAP   8.0" in out.out and "skipped" in out.err  # (10 + 6) / 2; the broken file is said
    with pytest.raises(SystemExit) as err:
        best_per_client.main([str(tmp_path), "--clients", "a", "z"])
    assert err.value.code == 2 and "['z']" in capsys.readouterr().err
