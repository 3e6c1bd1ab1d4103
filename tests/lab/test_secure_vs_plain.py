"""lab.secure_vs_plain: the overrides of each mode and the table it reads from metrics.json."""

import json

import pytest

from lab.secure_vs_plain import main, modes, table


def test_modes_and_their_overrides():
    m = modes([0.1], 10.0)
    assert m["plain"] == ("pu.where=edge",)
    assert "federation.secure_aggregation=true" in m["secure"]
    assert m["dp0.1"] == ("pu.where=edge", "federation.dp_noise_multiplier=0.1", "federation.dp_clipping_norm=10")


def test_table_reads_final_means_round_time_bytes_per_edge_and_epsilon(tmp_path):
    def run(folder, rank1, up, eps=None):
        rounds = [{"round": r, "wall_s": 4.0 + r, "traffic": {"train_up_bytes": up, "train_down_bytes": 2e6},
                   "clients": {"a": {"num_examples": 10}, "b": {"num_examples": 20}},
                   **({"dp": {"epsilon": eps * r}} if eps else {})} for r in (1, 2)]
        (tmp_path / folder).mkdir()
        (tmp_path / folder / "metrics.json").write_text(json.dumps(
            {"final": {"a": {"rank1": rank1, "mAP": 30.0}, "b": {"rank1": rank1 + 2, "mAP": 40.0}}, "rounds": rounds}))

    run("plain_s0", 10.0, 4e6)
    run("plain_s1", 20.0, 4e6)
    run("dp0.1_s0", 5.0, 4e6, eps=3.0)
    out = table(tmp_path, [0, 1], ["plain", "dp0.1"])
    assert "| plain | 0 | 11.0 | 35.0 | 5.5 | 2.00 | 1.00 | - (no DP) |" in out
    assert "| plain | mean of 2 | 16.0 | 35.0 | 5.5 | 2.00 | 1.00 | - (no DP) |" in out
    assert "| dp0.1 | 0 | 6.0 | 35.0 | 5.5 | 2.00 | 1.00 | 6 |" in out


def test_an_unknown_mode_is_refused_naming_it(tmp_path, capsys):
    with pytest.raises(SystemExit):
        main(["--out", str(tmp_path), "--modes", "plain", "experiment=real_cpu"])
    assert "unknown mode(s) ['experiment=real_cpu']" in capsys.readouterr().err
    assert not list(tmp_path.iterdir())  # nothing ran
