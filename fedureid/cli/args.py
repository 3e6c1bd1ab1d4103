"""`key=value` arguments: a command's own keys, the rest are Hydra overrides of `conf/`."""

from __future__ import annotations

import sys
from typing import Sequence


def key_values(args: Sequence[str], own_keys: Sequence[str], command: str) -> tuple[dict[str, str], list[str]]:
    """Split `key=value` arguments into this command's own keys and the rest (Hydra overrides)."""
    own, rest = {}, []
    for a in args:
        key, sep, value = a.partition("=")
        if not sep:
            raise SystemExit(f"error: {command}: expected key=value, got '{a}' (see `fedureid {command} --help`)")
        if key in own_keys:
            own[key] = value
        else:
            rest.append(a)
    return own, rest


def settings_or_exit(overrides: list[str]):
    """Compose and validate the settings, or exit 2 with the message naming the key."""
    from reid_core.config.settings import ConfigError, load_settings

    try:
        return load_settings(overrides)
    except ConfigError as err:
        print(f"error: {err}", file=sys.stderr)
        raise SystemExit(2) from err


def usage_error(command: str, message: str) -> SystemExit:
    return SystemExit(f"error: {command}: {message} (see `fedureid {command} --help`)")
