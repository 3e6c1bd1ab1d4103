"""The soak's checks on hand-made records: each can fail."""

from __future__ import annotations

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "scripts"))

from soak_checks import GROWTH_MB, Row, check_growth, check_rounds, floor, went_backwards  # noqa: E402


def test_an_edge_may_redo_one_round_after_a_resume_but_never_fall_further_or_gain_clusters():
    assert went_backwards({"a": [(1, 40), (2, 30), (1, 40), (2, 30), (3, 25)]}) == []
    assert "fell from round 4 to 2" in went_backwards({"a": [(4, 20), (2, 30)]})[0]
    assert "clusters grew from 30 (round 2) to 35 (round 3)" in went_backwards({"a": [(2, 30), (3, 35)]})[0]


def test_rounds_recorded_once_each_with_min_clients(tmp_path: Path):
    def write(rounds):
        (tmp_path / "metrics.json").write_text(json.dumps({"rounds": rounds}))

    full = {"clients": {n: {"num_examples": 48} for n in "abc"}}
    write([{"round": r, **full} for r in (1, 2, 3)])
    assert check_rounds(tmp_path, 3, min_clients=3) == []
    write([{"round": r, **full} for r in (1, 2, 2, 3)])
    assert "not 1..3 once each" in check_rounds(tmp_path, 3, min_clients=3)[0]
    write([{"round": 1, **full}, {"round": 2, "clients": {"a": {"num_examples": 48}, "b": {"rank1": 1.0}}}])
    assert check_rounds(tmp_path, 2, min_clients=2) == ["round 2 aggregated 1 update(s) < min_clients=2"]


def test_growth_counts_within_one_process_life_after_its_warm_up(tmp_path: Path):
    (tmp_path / "checkpoint").mkdir()
    (tmp_path / "checkpoint" / "meta.json").write_text(json.dumps({"history": []}))

    def rows(rss_by_round, pid=7):
        return [Row(r, 1.0, tmp_path, {"superlink": (pid, rss, 50), "serverapp": (None, None, None)})
                for r, rss in rss_by_round]

    steady = rows([(1, 100.0), (2, 150.0), (3, 160.0), (4, 161.0), (5, 162.0)])  # warm-up growth is allowed
    assert check_growth(steady) == []
    leaking = rows([(1, 100.0), (2, 110.0), (3, 120.0), (4, 130.0 + GROWTH_MB), (5, 140.0 + GROWTH_MB)])
    assert "superlink (pid 7) grew" in check_growth(leaking)[0]
    restarted = rows([(1, 100.0), (2, 110.0), (3, 120.0)]) + rows([(4, 300.0), (5, 310.0), (6, 320.0)], pid=8)
    assert check_growth(restarted) == []  # a new process is a new life


def test_a_rounds_figure_is_its_floor_within_the_latest_life():
    none = (None, None, None)
    samples = [{"superlink": (7, 230.0, 66), "serverapp": (9, 880.0, 6)},
               {"superlink": (7, 212.0, 68), "serverapp": none},  # between ServerApp samples: not seen
               {"superlink": (7, 221.0, 65), "serverapp": (9, 875.0, 5)}]
    assert floor(samples) == {"superlink": (7, 212.0, 65), "serverapp": (9, 875.0, 5)}
    restarted = samples + [{"superlink": (8, 240.0, 70), "serverapp": none}]
    assert floor(restarted)["superlink"] == (8, 240.0, 70)  # the old life's floor is not the new one's
    assert floor([{"superlink": none, "serverapp": none}]) == {"superlink": none, "serverapp": none}
