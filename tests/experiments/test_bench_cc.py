"""`fedureid bench clustering --learner cc` on a small size: one row, labels equal to the dense reference."""

from reid_core.experiments.bench.clustering import main


def test_cc_clustering_bench_row(capsys):
    assert main(["--learner", "cc", "--sizes", "400", "--dim", "32", "--min-samples", "2"]) == 0
    out = capsys.readouterr().out
    row = [line for line in out.splitlines() if line.strip().startswith("400 ")]
    assert len(row) == 1 and row[0].split()[-1] == "True"  # same labels as the dense reference
    assert "ours/knn" in out and "dense/ours" in out
