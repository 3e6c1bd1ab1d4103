"""learner=auto: each edge picks its learner by its number of training images (no labels read)."""

import logging

import pytest

from reid_core.config.settings import ConfigError, load_settings
from reid_core.data.federation import ensure_federation
from lab.ablation import AUTO_VARIANT, AblationPlan, federated_args, parse_variants
from reid_core.learners import AUTO_CC_MIN_IMAGES, choose_learner, learner_from_settings
from reid_core.learners.buc.learner import BUCLearner
from reid_core.learners.cc.learner import CCLearner


def test_choose_learner_splits_at_the_large_edge_size():
    assert AUTO_CC_MIN_IMAGES == 2000
    assert [choose_learner(n) for n in (1, 632, 1999, 2000, 4104, 12936)] == ["buc"] * 3 + ["cc"] * 3


def test_auto_is_a_learner_setting_and_a_learner_for_value():
    assert load_settings(["experiment=smoke", "learner=auto"]).learner_of("edge_a") == "auto"
    assert load_settings(["experiment=smoke", "+learner_for.edge_b=auto"]).learner_of("edge_b") == "auto"
    with pytest.raises(ConfigError, match=r"learner: unknown 'biggest'.*'auto'"):
        load_settings(["experiment=smoke", "learner=biggest"])


@pytest.fixture(scope="module")
def smoke_data(tmp_path_factory):
    return ensure_federation(tmp_path_factory.mktemp("smoke") / "data", seed=0, preset="smoke")


def test_auto_builds_buc_on_a_small_edge_and_cc_on_a_large_one(tmp_path, smoke_data, monkeypatch, caplog):
    caplog.set_level(logging.INFO, logger="reid_core.learners")
    s = load_settings(["experiment=smoke", "learner=auto", f"data.root={smoke_data}", f"run_dir={tmp_path}"])
    small = learner_from_settings(s, "edge_a", s.client_dir("edge_a"), str(tmp_path / "a"))
    assert isinstance(small, BUCLearner)  # a smoke edge has ~70 training images
    assert "learner=auto picks buc" in caplog.text
    # the same edge counted as large (the threshold lowered below its size) gets cluster-contrast
    monkeypatch.setattr("reid_core.learners.AUTO_CC_MIN_IMAGES", len(small.paths))
    assert isinstance(learner_from_settings(s, "edge_a", s.client_dir("edge_a"), str(tmp_path / "b")), CCLearner)


def test_auto_fedureid_is_an_ablation_row_of_its_own(tmp_path):
    assert parse_variants(f"[{AUTO_VARIANT},fedureid]") == ("fedureid", AUTO_VARIANT)
    plan = AblationPlan(run_dir=tmp_path, experiment="smoke", overrides=(), clients=("a", "b"),
                        data_root=str(tmp_path), rounds=1, variants=(AUTO_VARIANT,))
    args = federated_args(plan, AUTO_VARIANT)
    assert "learner=auto" in args and "algorithm=fedureid" in args
    assert AUTO_VARIANT not in parse_variants("all") + parse_variants("cc")  # asked for by name
