"""The config boundary: compose, override, refuse bad values naming the key."""

import re

import pytest

from reid_core.config.settings import ConfigError, load_settings


def test_default_is_the_demo_with_the_one_fedureid():
    """The demo runs algorithm=fedureid, the same as on real sets (docs/results.md); the command line still picks."""
    s = load_settings([])
    assert s.experiment == "demo" and s.algorithm == "fedureid" and s.train.epochs == 16
    assert len(s.clients) >= 4
    assert (s.pu.mu, s.pu.train_from) == (0.8, "global") and s.federation.max_share == 0.4
    assert s.cluster.mode == "personalized" and s.early_stop.rule == "trend"
    assert load_settings(["algorithm=baseline"]).federation.max_share == 1.0
    paper = load_settings(["experiment=paper"], check_data=False)  # the paper's setting, its algorithm
    assert paper.algorithm == "paper" and paper.pu.mu == 0.5 and paper.train.cross_camera_weight == 0.0
    assert paper.federation.max_share == 1.0 and paper.cluster.max_merge_percent is None


@pytest.mark.parametrize(
    "algorithm, pc, pe, mu",
    [("baseline", "fixed", "none", 0.0), ("pc", "personalized", "none", 0.0), ("pe", "fixed", "trend", 0.0),
     ("pc_pe", "personalized", "trend", 0.0), ("pu", "fixed", "none", 0.8),
     ("fedureid", "personalized", "trend", 0.8), ("paper", "personalized", "precision", 0.5)],
)
def test_algorithms(algorithm, pc, pe, mu):
    s = load_settings(["experiment=smoke", f"algorithm={algorithm}"])
    assert (s.cluster.mode, s.early_stop.rule, s.pu.mu) == (pc, pe, mu)


def test_overrides_and_custom_clients(tmp_path):
    for name in ("a", "b"):
        (tmp_path / name).mkdir()
    s = load_settings(["experiment=smoke", f"data.root={tmp_path}", "data.clients=[a,b]",
                       "data.synth_preset=null", "pu.mu=0.3", "rounds=4", "+data.num_identities.a=7"])
    assert s.clients == ("a", "b") and s.rounds == 4 and s.pu.mu == 0.3
    assert s.cluster_for("a").num_identities == 7 and s.cluster_for("b").num_identities is None


@pytest.mark.parametrize(
    "override, key",
    [("pu.mu=1.5", "mu"), ("pu.mu=-0.1", "mu"), ("rounds=0", "rounds"), ("algorithm=fedsgd", "algorithm"),
     ("experiment=huge", "experiment"), ("model.arch=vgg", "model.arch"), ("pe.rule=magic", "pe.rule"),
     ("pc.mode=random", "pc.mode"), ("pc.estimator=guess", "pc.estimator"), ("pu.where=moon", "pu.where"),
     ("nonexistent.key=1", "nonexistent.key"), ("federation.fraction_train=0", "federation.fraction_train"),
     ("federation.fraction_train=1.2", "federation.fraction_train"), ("pe.window=0", "pe.window"),
     ("pe.patience=0", "pe.patience")],
)
def test_bad_values_name_the_key(override, key):
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
        load_settings(["experiment=smoke", override])


def test_missing_data_dir_is_refused(tmp_path):
    with pytest.raises(ConfigError, match="data.root"):
        load_settings(["experiment=smoke", f"data.root={tmp_path / 'nope'}", "data.synth_preset=null"])
    with pytest.raises(ConfigError, match="client folder not found"):
        load_settings(["experiment=smoke", f"data.root={tmp_path}", "data.synth_preset=null"])


def test_cloud_and_deployed_edges_skip_data_folder_check(tmp_path):
    s = load_settings(["experiment=smoke", f"data.root={tmp_path / 'nope'}", "data.synth_preset=null"],
                      check_data=False)
    assert s.data_root.endswith("nope")


@pytest.mark.parametrize("algorithm", ["fedureid", "baseline"])
def test_real_cpu_schedule_and_camera_options_win_over_the_algorithm(algorithm):
    """The one-seed ablation's schedule (docs/results.md): the experiment's keys override
    the algorithm file's, for every variant alike."""
    s = load_settings(["experiment=real_cpu", f"algorithm={algorithm}"], check_data=False)
    assert list(s.clients) == ["cuhk03", "viper", "prid2011", "ilids"]
    assert (s.rounds, s.train.first_round_epochs, s.train.epochs) == (3, 4, 6)
    assert (s.image.height, s.image.width) == (128, 64)
    assert s.federation.client_cpus == 2  # one simulated client at a time on 2 cores
    assert s.cluster.camera_floor and s.train.cross_camera_weight == 0.5


def test_fedureid_carries_the_measured_settings_and_paper_the_published_ones():
    """algorithm=fedureid: PC uncapped toward twice the per-camera count, PE's trend rule at 3% after 2 epochs, mu 0.8 with
    edges training from the global model, no edge above 40% of the weight (docs/results.md sections 15, 17, 18 and 21-23);
    algorithm=paper with the documented overrides is FedUReID and its learner as published."""
    s = load_settings(["experiment=real_cpu", "algorithm=fedureid"], check_data=False)
    assert (s.cluster.max_merge_percent, s.cluster.target_ratio) == (None, 2.0)
    assert (s.early_stop.min_epochs, s.pu.mu, s.pu.train_from) == (2, 0.8, "global")
    assert (s.early_stop.rule, s.early_stop.min_delta, s.early_stop.window) == ("trend", 0.03, None)
    assert s.cluster.estimator == "per_camera"
    assert s.federation.max_share == 0.4
    paper = load_settings(["experiment=real_cpu", "algorithm=paper", "train.cross_camera_weight=0",
                           "pc.camera_floor=false"], check_data=False)
    assert paper.algorithm == "paper" and paper.cluster.mode == "personalized"
    assert paper.cluster.max_merge_percent is None and not paper.cluster.camera_floor
    assert paper.cluster.target_ratio == 1.0
    assert (paper.early_stop.rule, paper.early_stop.min_epochs, paper.pu.mu) == ("precision", 1, 0.5)
    assert paper.pu.train_from == "personalized"  # every edge trains from its theta_k, as published
    assert paper.train.cross_camera_weight == 0.0
    for component in ("pc", "pc_pe"):  # the ablation's PC rows use fedureid's PC
        cluster = load_settings([f"algorithm={component}"]).cluster
        assert (cluster.max_merge_percent, cluster.target_ratio, cluster.estimator) == (None, 2.0, "per_camera")


def test_the_ablation_rows_take_each_part_from_one_file():
    """pc_pe and fedureid compose pc, pe and pu: each part's settings are those of its single-part row,
    and an override on the command line still wins over them."""
    rows = {name: load_settings([f"algorithm={name}"], check_data=False)
            for name in ("pc", "pe", "pu", "pc_pe", "fedureid", "baseline")}
    for name in ("pc_pe", "fedureid"):
        assert rows[name].cluster == rows["pc"].cluster and rows[name].early_stop == rows["pe"].early_stop
    assert rows["fedureid"].pu == rows["pu"].pu and rows["pc_pe"].pu == rows["baseline"].pu
    assert rows["pc_pe"].algorithm == "pc_pe" and rows["fedureid"].algorithm == "fedureid"
    assert rows["pe"].cluster == rows["baseline"].cluster  # PE alone leaves clustering as the baseline's
    s = load_settings(["algorithm=fedureid", "pe.rule=none", "pu.mu=0.3"], check_data=False)
    assert (s.early_stop.rule, s.pu.mu) == ("none", 0.3)


def test_dataclass_defaults_are_conf_defaults():
    """conf/config.yaml states each default once; the dataclasses agree with it."""
    from reid_core.config.schema import (CCConfig, ClusterConfig, EarlyStopConfig, FederationConfig, ImageConfig,
                                         ModelConfig, PersonalizedUpdate, TrainConfig)
    from reid_core.config.settings import compose, settings_from_cfg

    shared = settings_from_cfg(compose(["~experiment", "algorithm=baseline"]), check_data=False)
    assert shared.model == ModelConfig()
    assert shared.image == ImageConfig()
    assert shared.train == TrainConfig()
    assert shared.early_stop == EarlyStopConfig()
    assert shared.cluster == ClusterConfig()
    assert shared.cc == CCConfig()
    assert shared.federation == FederationConfig()
    assert shared.pu == PersonalizedUpdate()


def test_algorithm_files_state_only_what_differs_from_the_shared_defaults():
    import yaml

    from reid_core.config.choices import CONF_DIR, group_choices

    base = yaml.safe_load((CONF_DIR / "config.yaml").read_text())
    for name in group_choices("algorithm"):
        delta = yaml.safe_load((CONF_DIR / "algorithm" / f"{name}.yaml").read_text())
        for section, values in delta.items():
            if section in ("algorithm_name", "defaults"):  # defaults: the parts a row composes
                continue
            for key, value in values.items():
                assert base[section][key] != value, f"algorithm/{name}.yaml repeats {section}.{key}={value!r}"


@pytest.mark.parametrize("override, key", [("pu.mu=abc", "pu.mu"), ("train.lr=fast", "train.lr"),
                                           ("image.height=1.5", "image.height"), ("pc.camera_floor=3", "pc.camera_floor"),
                                           ("seed=x", "seed"), ("cc.k1=[1]", "cc.k1")])
def test_a_value_of_the_wrong_type_is_refused_naming_its_key(override, key):
    from reid_core.config.settings import ConfigError, load_settings

    with pytest.raises(ConfigError, match=rf"^{re.escape(key)}: must be "):
        load_settings(["experiment=smoke", override])


def test_experiment_and_algorithm_lists_come_from_conf():
    from reid_core.config.choices import ALGORITHMS, EXPERIMENTS

    assert "real_cpu_cc" in EXPERIMENTS and "smoke" in EXPERIMENTS
    assert set(ALGORITHMS) == {"baseline", "pc", "pe", "pc_pe", "pu", "fedureid", "paper"}
