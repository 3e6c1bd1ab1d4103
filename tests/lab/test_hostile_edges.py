"""lab.hostile_edges: which overrides each (kind, defence) run gets, and the table it prints."""

import json

from lab.hostile_edges import DEFENCES, finished_metrics, overrides, table


def test_overrides_of_a_run():
    assert overrides("honest", "median", "mall") == ["federation.aggregation=median", "federation.outlier_k=0"]
    assert overrides("scale", "none", "mall")[-1] == "+misbehave.mall=scale"
    assert "federation.outlier_k=0" in overrides("flip", "none", "mall")  # no defence: screening off
    assert "federation.screen_models=false" in overrides("flip", "none", "mall")
    assert overrides("honest", "default", "mall") == ["federation.outlier_k=0"]  # count bound, impossible models
    # the weight cap is the algorithm's: every column runs the same FedUReID, the defence alone differs
    assert not any("max_share" in o for d in DEFENCES for o in overrides("count", d, "mall"))
    assert set(DEFENCES) == {"none", "default", "screen", "median", "trimmed", "krum", "multikrum"}


def test_table_reads_final_means_and_round_time(tmp_path):
    run = tmp_path / "scale_median"
    run.mkdir()
    metrics = {"rounds_total": 2, "rounds": [{"round": 1, "wall_s": 4.0, "aggregate_s": 0.004, "clients": {}, "rejected": []},
                          {"round": 2, "wall_s": 6.0, "aggregate_s": 0.012, "rejected": [{"client": "c", "phase": "evaluate"},
                                                                    {"client": "c", "phase": "screening"}],
                           "clients": {"a": {"rank1": 10.0, "mAP": 20.0}, "b": {"rank1": 30.0, "mAP": 40.0}}}]}
    (run / "metrics.json").write_text(json.dumps(metrics))
    (tmp_path / "flip_none").mkdir()
    (tmp_path / "flip_none" / "metrics.json").write_text(json.dumps(
        {"rounds_total": 1, "rounds": [{"round": 1, "wall_s": 3.0, "clients": {}, "rejected": []}]}))
    (tmp_path / "noise_none").mkdir()  # cut off after round 1 of 2: not a result yet
    (tmp_path / "noise_none" / "metrics.json").write_text(json.dumps({**metrics, "rounds": metrics["rounds"][:1]}))
    out = table(tmp_path)
    assert "| scale | - | - | - | 20.0 / 30.0 (5 s; 8 ms), 1 failed, 1 screened | - | - | - |" in out
    assert "| flip | every edge failed (3 s) |" in out
    assert "| noise | - |" in out


def _write(folder, r1_a, wall, screened=0):
    folder.mkdir(parents=True)
    rejected = [{"client": "mall", "phase": "screening"}] * screened
    clients = {} if r1_a is None else {"a": {"rank1": r1_a, "mAP": r1_a + 10}, "b": {"rank1": r1_a + 2, "mAP": r1_a + 12}}
    (folder / "metrics.json").write_text(json.dumps(
        {"rounds_total": 1, "rounds": [{"round": 1, "wall_s": wall, "aggregate_s": 0.01, "clients": clients,
                                        "rejected": rejected}]}))


def test_table_of_means_over_seeds(tmp_path):
    seeds = [tmp_path / f"s{i}" for i in range(3)]
    for seed, r1 in zip(seeds, (10.0, 20.0, 30.0)):
        _write(seed / "honest_none", r1, wall=6.0)
    for seed, r1 in zip(seeds, (10.0, None, 40.0)):  # one seed where every edge failed
        _write(seed / "flip_default", r1, wall=3.0, screened=2)
    _write(seeds[0] / "scale_none", 5.0, wall=3.0)  # the other seeds not run yet
    out = table(seeds)
    assert "| honest | 21.0 / 31.0 (6 s; 10 ms) |" in out
    assert "| flip | - | 26.0 / 36.0 (3 s; 10 ms), every edge failed in 1 of 3 seeds, 6 screened |" in out
    assert "| scale | - |" in out  # a cell is shown only when every seed has it


def test_a_run_cut_off_is_not_finished(tmp_path):
    """A rerun resumes a run whose metrics.json stops before the last round instead of skipping it."""
    path = tmp_path / "metrics.json"
    assert finished_metrics(path) is None
    path.write_text(json.dumps({"rounds_total": 3, "rounds": [{"round": 1}, {"round": 2}]}))
    assert finished_metrics(path) is None
    done = {"rounds_total": 3, "rounds": [{"round": 1}, {"round": 2}, {"round": 3}]}
    path.write_text(json.dumps(done))
    assert finished_metrics(path) == done
