"""The checkpoint fingerprint: what must match for a run to resume."""

from reid_core.config.settings import load_settings
from reid_core.federation.start import fingerprint


def _fp(*extra: str) -> str:
    return fingerprint(load_settings(["experiment=smoke", *extra]))


def test_paths_and_rounds_do_not_count():
    assert _fp("run_dir=/a", "rounds=2") == _fp("run_dir=/b", "rounds=5") == _fp("train.progress=true")


def test_every_personalized_update_setting_counts():
    base = _fp()
    changed = [_fp("pu.mu=0.3"), _fp("pu.where=edge"), _fp("pu.local_bn=true"), _fp("pu.train_from=personalized")]
    assert len({base, *changed}) == 5

