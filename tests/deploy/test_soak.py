"""The chaos soak (scripts/soak.py) as a test: 16 SuperNodes, 10 rounds, kills and a SuperLink restart.

Out of `make test` (a pass takes 13-14 minutes on 2 cores, docs/deployment.md): `make soak` or `pytest -m soak`.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.soak, pytest.mark.deploy, pytest.mark.slow, pytest.mark.timeout(1800, method="signal")]

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "scripts"))


def test_the_federation_holds_through_kills_and_a_superlink_restart(no_leftovers: Path, capsys):
    import soak

    rc = soak.main(["--work", str(no_leftovers / "soak")])
    out = capsys.readouterr().out
    print(out)
    assert rc == 0, out[-4000:]
    assert "soak: passed" in out
