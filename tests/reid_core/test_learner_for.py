"""learner_for: one edge runs its own learner (e.g. cluster-contrast on the large edge, BUC on the small ones)."""

from types import SimpleNamespace

import pytest

from client_app.app import _learner
from reid_core.config.settings import ConfigError, load_settings
from reid_core.data.federation import ensure_federation
from reid_core.learners.buc.learner import BUCLearner
from reid_core.learners.cc.learner import CCLearner


def test_learner_for_names_some_edges_learner_the_rest_keep_learner():
    s = load_settings(["experiment=smoke", "+learner_for.edge_a=cc"])
    assert s.learner == "buc"
    assert [s.learner_of(c) for c in s.clients] == ["cc", "buc", "buc"]
    flipped = load_settings(["experiment=smoke", "learner=cc", "+learner_for={edge_c:buc}"])
    assert [flipped.learner_of(c) for c in flipped.clients] == ["cc", "cc", "buc"]
    assert load_settings(["experiment=smoke"]).learner_for == {}


@pytest.mark.parametrize("override, message", [
    ("+learner_for.edge_a=dbscan", r"learner_for\.edge_a: unknown 'dbscan'"),
    ("+learner_for.edge_z=cc", r"learner_for: names client\(s\) \['edge_z'\] not in data\.clients"),
    ("learner_for=cc", "learner_for: must map client names to a learner"),
])
def test_bad_learner_for_is_refused_naming_the_key(override, message):
    with pytest.raises(ConfigError, match=message):
        load_settings(["experiment=smoke", override])


def test_a_deployed_edge_may_be_named_outside_data_clients():
    s = load_settings(["experiment=smoke", "+learner_for.site_7=cc"], check_data=False)
    assert s.learner_of("site_7") == "cc" and s.learner_of("edge_a") == "buc"


@pytest.fixture(scope="module")
def smoke_data(tmp_path_factory):
    return ensure_federation(tmp_path_factory.mktemp("smoke") / "data", seed=0, preset="smoke")


def _context(tmp_path, data, **node_config):
    run_config = {"experiment": "smoke", "overrides": f"run_dir={tmp_path / 'run'} data.root={data} "
                                                     "+learner_for.edge_b=cc"}
    return SimpleNamespace(run_config=run_config, node_config=node_config)


def test_client_app_builds_each_edges_learner_and_node_config_wins(tmp_path, smoke_data):
    assert isinstance(_learner(_context(tmp_path, smoke_data, **{"partition-id": 0}))[0], BUCLearner)
    assert isinstance(_learner(_context(tmp_path, smoke_data, **{"partition-id": 1}))[0], CCLearner)
    # a deployed edge names its learner in its node_config, over the run's config
    assert isinstance(_learner(_context(tmp_path, smoke_data, **{"partition-id": 0, "learner": "cc"}))[0], CCLearner)
    assert isinstance(_learner(_context(tmp_path, smoke_data, **{"partition-id": 1, "learner": "buc"}))[0], BUCLearner)
    with pytest.raises(ValueError, match="node_config 'learner' is 'magic'"):
        _learner(_context(tmp_path, smoke_data, **{"partition-id": 0, "learner": "magic"}))


def test_an_edge_that_switches_learner_restarts_its_clustering(tmp_path, smoke_data, caplog):
    """A state written by BUC is not read as cluster-contrast's (nor the reverse): the edge says so and starts over."""
    buc = _learner(_context(tmp_path, smoke_data, **{"partition-id": 0}))[0]
    buc.round = 2
    buc.save_state()
    assert _learner(_context(tmp_path, smoke_data, **{"partition-id": 0}))[0].round == 2  # same learner: resumed
    cc = _learner(_context(tmp_path, smoke_data, **{"partition-id": 0, "learner": "cc"}))[0]
    assert cc.round == 0 and (cc.labels == -1).all()
    assert "the saved state was written by learner 'buc', this edge now runs 'cc'" in caplog.text
