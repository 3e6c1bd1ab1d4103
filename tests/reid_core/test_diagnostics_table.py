"""The edges' learning diagnostics reach report.md and ablation.md; runs without them show none."""

from __future__ import annotations

from lab.ablation_report import write_ablation_outputs
from reid_core.federation.diagnostics_table import diagnostics_markdown, diagnostics_table
from reid_core.federation.report import write_run_outputs

DIAG = {"diag-purity": 0.9, "diag-merge-precision": 0.25, "diag-clusters-per-identity": 1.5,
        "diag-nn-precision": 0.125}


def _history(with_diag: bool):
    train = {"rank1": 10.0, "mAP": 5.0, "epochs": 2, **(DIAG if with_diag else {})}
    return [{"round": 1, "clients": {"a": dict(train), "b": {"rank1": 20.0, "mAP": 8.0, "epochs": 2}}}]


def test_table_shows_each_reported_diagnostic_per_client_and_round():
    table = diagnostics_table({"rounds": _history(True)}, ["a", "b"])
    assert "| 1 | purity 0.90, merge prec. 0.25, clusters/ids 1.50, NN prec. 0.12 | - |" in table
    assert diagnostics_markdown({"x": {"rounds": _history(False)}}, ["a", "b"]) == ""


def test_run_report_and_ablation_include_diagnostics_and_wall_time(tmp_path):
    metrics = write_run_outputs(tmp_path / "run", _history(True), {"algorithm": "fedureid"})
    assert "## Learning diagnostics" in (tmp_path / "run" / "report.md").read_text()
    plain = write_run_outputs(tmp_path / "plain", _history(False), {"algorithm": "baseline"})
    assert "Learning diagnostics" not in (tmp_path / "plain" / "report.md").read_text()
    (tmp_path / "abl").mkdir()
    write_ablation_outputs(tmp_path / "abl", {"fedureid": metrics, "baseline": plain}, ["a", "b"], ["- setup"],
                           wall_s={"baseline": 60.0, "fedureid": 120.0})
    text = (tmp_path / "abl" / "ablation.md").read_text()
    assert "### fedureid" in text and "### baseline" not in text
    assert "| **total** | **180** (3.0 min) |" in text


def test_diagnostics_over_seeds_average_each_round_and_client():
    from reid_core.federation.diagnostics_table import diagnostics_over_seeds, mean_diagnostics

    def run(purity, merge):
        return {"rounds": [{"round": 1, "clients": {"a": {"diag-purity": purity, "diag-merge-precision": merge}}},
                           {"round": 2, "clients": {"a": {"diag-purity": purity / 2}}}]}

    mean = mean_diagnostics([run(0.9, 0.5), run(0.7, float("nan"))])
    assert mean["rounds"][0]["clients"]["a"] == {"diag-purity": 0.8, "diag-merge-precision": 0.5}  # NaN left out
    assert mean["rounds"][1]["clients"]["a"] == {"diag-purity": 0.4}
    text = diagnostics_over_seeds({0: {"fedureid": run(0.9, 0.5), "baseline": {"rounds": []}},
                                   1: {"fedureid": run(0.7, 0.25)}}, ["a"])
    assert "### fedureid" in text and "### baseline" not in text
    assert "| 1 | purity 0.80, merge prec. 0.38 |" in text and "| 2 | purity 0.40 |" in text
