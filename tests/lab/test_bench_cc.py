"""`fedureid bench clustering --learner cc` on a small size: one row, labels equal to the dense reference."""

from lab.bench.clustering import main


def test_cc_clustering_bench_row(capsys):
    assert main(["--learner", "cc", "--sizes", "400", "--dim", "32", "--min-samples", "2"]) == 0
    out = capsys.readouterr().out
    row = [line for line in out.splitlines() if line.strip().startswith("400 ")]
    assert len(row) == 1 and row[0].split()[-1] == "True"  # same labels as the dense reference
    assert "ours/knn" in out and "dense/ours" in out


def test_cc_clustering_bench_with_a_camera_penalty_matches_the_dense_reference(capsys):
    """The camera-aware step (one search per camera, merged) gives the dense reference's labels."""
    assert main(["--learner", "cc", "--sizes", "400", "--dim", "32", "--min-samples", "2",
                 "--camera-penalty", "0.3", "--cameras", "3"]) == 0
    out = capsys.readouterr().out
    row = [line for line in out.splitlines() if line.strip().startswith("400 ")]
    assert "same-camera penalty 0.3 over 3 cameras" in out and "k-NN pass (k=30)" in out
    assert len(row) == 1 and row[0].split()[-1] == "True"
    # the penalty reached both sides: the same features without it give other neighbourhoods
    assert main(["--learner", "cc", "--sizes", "400", "--dim", "32", "--min-samples", "2"]) == 0
    plain = [line for line in capsys.readouterr().out.splitlines() if line.strip().startswith("400 ")]
    pairs_clusters = lambda line: (line.split("|")[1].split()[-1], line.split("|")[3].split()[:2])  # noqa: E731
    assert pairs_clusters(row[0]) != pairs_clusters(plain[0])


def test_cc_clustering_bench_refuses_a_negative_penalty(capsys):
    import pytest

    with pytest.raises(SystemExit) as err:
        main(["--learner", "cc", "--sizes", "400", "--camera-penalty", "-1"])
    assert err.value.code == 2 and "--camera-penalty" in capsys.readouterr().err
