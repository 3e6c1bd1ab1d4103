"""The one config boundary: Hydra compose of `conf/` -> validated small dataclasses.

Sources, in order: `conf/config.yaml` + the chosen experiment, then Hydra-style
`key=value` overrides (from the CLI or Flower's run_config `overrides`), then the
node's own facts (data dir, client name) which the ClientApp adds.
"""

from __future__ import annotations

import os
import shlex
from pathlib import Path
from types import UnionType
from typing import Any, Mapping, Sequence, Union, get_args, get_origin, get_type_hints

from reid_core.config.choices import CONF_DIR, group_choices
from reid_core.config.schema import (
    CCConfig,
    ClusterConfig,
    EarlyStopConfig,
    FederationConfig,
    ImageConfig,
    ModelConfig,
    PersonalizedUpdate,
    Settings,
    TrainConfig,
)
from reid_core.config.validation import ConfigError, validate


def parse_overrides(text: str | Sequence[str] | None) -> list[str]:
    """Split a space-separated override string (quotes respected) into a list."""
    if text is None:
        return []
    if isinstance(text, str):
        return shlex.split(text)
    return [str(t) for t in text]


def compose(overrides: Sequence[str] = (), conf_dir: Path = CONF_DIR) -> Any:
    """Compose `conf/` with Hydra's Compose API (never @hydra.main: Flower owns main)."""
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra
    from hydra.errors import HydraException
    from omegaconf.errors import OmegaConfBaseException

    overrides = list(overrides)
    for group in ("experiment", "algorithm", "data", "model"):
        _check_group_choice(overrides, group, conf_dir)
    GlobalHydra.instance().clear()
    try:
        with initialize_config_dir(config_dir=str(conf_dir), version_base=None):
            return hydra_compose(config_name="config", overrides=overrides)
    except (HydraException, OmegaConfBaseException) as err:
        raise ConfigError(f"invalid configuration override(s) {overrides}: {err}") from err
    finally:
        GlobalHydra.instance().clear()


def _check_group_choice(overrides: Sequence[str], group: str, conf_dir: Path) -> None:
    for item in overrides:
        key, _, value = item.partition("=")
        if key.lstrip("+~") == group and value:
            available = group_choices(group, conf_dir)
            if value not in available:
                raise ConfigError(
                    f"unknown {group} '{value}' (key '{group}'); "
                    f"choose one of: {', '.join(available)}"
                )


def load_settings(overrides: Sequence[str] = (), base_dir: str | None = None, check_data: bool = True) -> Settings:
    """Compose and validate; relative paths are resolved against `base_dir` (cwd).

    `check_data=False` where the client folders are not on this machine: the cloud
    (ServerApp) has no images, and a deployed edge only has its own `data-dir`.
    """
    cfg = compose(overrides)
    return settings_from_cfg(cfg, tuple(overrides), base_dir, check_data)


def settings_from_cfg(cfg: Any, overrides: tuple[str, ...] = (), base_dir: str | None = None,
                      check_data: bool = True) -> Settings:
    """Turn a composed tree into validated dataclasses."""
    from omegaconf import OmegaConf

    c = OmegaConf.to_container(cfg, resolve=True)
    base = Path(base_dir or os.getcwd())

    def path(value: str | None) -> str | None:
        if value in (None, ""):
            return None
        p = Path(os.path.expanduser(str(value)))
        return str(p if p.is_absolute() else (base / p).resolve())

    weights = c["model"].get("weights")
    if weights not in (None, "", "torchvision"):
        weights = path(weights)
    settings = Settings(
        experiment=str(c["experiment_name"]),
        algorithm=str(c["algorithm_name"]),
        rounds=c["rounds"],
        seed=c["seed"],
        run_dir=path(c["run_dir"]) or "",
        data_root=path(c["data"]["root"]) or "",
        clients=tuple(str(x) for x in c["data"]["clients"]),
        synth_preset=c["data"]["synth_preset"],
        synth_seed=c["data"]["synth_seed"],
        num_identities=dict(c["data"]["num_identities"] or {}),
        pseudo_cameras=tuple(c["data"]["pseudo_cameras"] or ()),
        model=_build(ModelConfig, c["model"], "model", {"weights": weights}),
        image=_build(ImageConfig, c["image"], "image"),
        train=_build(TrainConfig, c["train"], "train", {"seed": c["seed"]}, names={"seed": "seed"}),
        early_stop=_build(EarlyStopConfig, c["pe"], "pe"),
        cluster=_build(ClusterConfig, c["pc"], "pc"),
        federation=_build(FederationConfig, c["federation"], "federation"),
        pu=_build(PersonalizedUpdate, c["pu"], "pu"),
        overrides=overrides,
        learner=str(c["learner"]),
        learner_for=_learner_for(c["learner_for"]),
        misbehave=_client_map(c["misbehave"], "misbehave", "a kind of misbehaviour", "{edge_b: scale}"),
        cc=_build(CCConfig, c["cc"], "cc"),
    )
    validate(settings, check_data)
    return settings


def _learner_for(value: Any) -> dict[str, str]:
    """`learner_for` as {client: learner}; anything but a mapping is refused, naming the key."""
    return _client_map(value, "learner_for", "a learner", "{cuhk03: cc}")


def _client_map(value: Any, key: str, what: str, example: str) -> dict[str, str]:
    """A {client: name} key; anything but a mapping is refused, naming the key."""
    if value in (None, ""):
        return {}
    if not isinstance(value, Mapping):
        raise ConfigError(f"{key}: must map client names to {what}, e.g. {example}, got {value!r}")
    return {str(k): str(v) for k, v in value.items()}


def _build(cls: type, values: Mapping[str, Any], prefix: str, extra: Mapping[str, Any] | None = None,
           names: Mapping[str, str] | None = None) -> Any:
    """`cls` from a config section; unknown keys and values of the wrong type are refused, naming the key."""
    fields = set(cls.__dataclass_fields__)
    unknown = sorted(set(values) - fields)
    if unknown:
        raise ConfigError(f"unknown key(s): {', '.join(prefix + '.' + u for u in unknown)}")
    hints = get_type_hints(cls)
    typed = {}
    for key, value in {**values, **(extra or {})}.items():
        typed[key] = _typed(value, hints[key], (names or {}).get(key, f"{prefix}.{key}"))
    try:
        return cls(**typed)
    except ConfigError:
        raise
    except ValueError as e:  # the dataclass's own check (e.g. PersonalizedUpdate), its message names the key
        raise ConfigError(str(e)) from None


_TYPE_WORDS = {float: "a number", int: "an integer", bool: "true or false", str: "a string"}


def _typed(value: Any, hint: Any, key: str) -> Any:
    """`value` as the field's type (an integer where a number is asked is a number), or ConfigError."""
    allowed = get_args(hint) if get_origin(hint) in (Union, UnionType) else (hint,)
    if value is None and type(None) in allowed:
        return None
    for kind in allowed:
        if kind is type(None):  # a value was given: it must be one of the other kinds
            continue
        if kind is float and isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        if kind in (int, str) and isinstance(value, kind) and not isinstance(value, bool):
            return value
        if kind is bool and isinstance(value, bool):
            return value
        if kind not in _TYPE_WORDS:  # containers: checked where they are used
            return value
    wanted = " or ".join(_TYPE_WORDS.get(k, "null") if k is not type(None) else "null" for k in allowed)
    raise ConfigError(f"{key}: must be {wanted}, got {value!r}")
