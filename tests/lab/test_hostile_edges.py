"""lab.hostile_edges: which overrides each (kind, defence) run gets, and the table it prints."""

import json

from lab.hostile_edges import DEFENCES, overrides, table


def test_overrides_of_a_run():
    assert overrides("honest", "median", "mall") == ["federation.aggregation=median"]
    assert overrides("scale", "none", "mall")[-1] == "+misbehave.mall=scale"
    assert "federation.outlier_k=0" in overrides("flip", "none", "mall")  # no defence: screening off
    assert "federation.screen_models=false" in overrides("flip", "none", "mall")
    assert overrides("honest", "default", "mall") == []  # the product's defaults
    assert set(DEFENCES) == {"none", "default", "screen", "median", "trimmed", "krum", "multikrum"}


def test_table_reads_final_means_and_round_time(tmp_path):
    run = tmp_path / "scale_median"
    run.mkdir()
    metrics = {"rounds": [{"round": 1, "wall_s": 4.0, "aggregate_s": 0.004, "clients": {}, "rejected": []},
                          {"round": 2, "wall_s": 6.0, "aggregate_s": 0.012, "rejected": [{"client": "c", "phase": "evaluate"},
                                                                    {"client": "c", "phase": "screening"}],
                           "clients": {"a": {"rank1": 10.0, "mAP": 20.0}, "b": {"rank1": 30.0, "mAP": 40.0}}}]}
    (run / "metrics.json").write_text(json.dumps(metrics))
    (tmp_path / "flip_none").mkdir()
    (tmp_path / "flip_none" / "metrics.json").write_text(json.dumps(
        {"rounds": [{"round": 1, "wall_s": 3.0, "clients": {}, "rejected": []}]}))
    out = table(tmp_path)
    assert "| scale | - | - | - | 20.0 / 30.0 (5 s; 8 ms), 1 failed, 1 screened | - | - | - |" in out
    assert "| flip | every edge failed (3 s) |" in out
