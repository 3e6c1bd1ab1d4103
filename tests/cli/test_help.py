"""`fedureid --help` and `fedureid COMMAND --help`: every command's keys and an example."""

from __future__ import annotations

import subprocess
import sys

import pytest

from fedureid.cli import COMMANDS, main


def test_top_level_help_lists_every_command_with_an_example(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    for command in COMMANDS:
        assert command.name in out and command.example in out


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: c.name)
def test_each_command_help_prints_its_keys_and_example(command, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main([command.name, "--help"])
    assert exit_info.value.code == 0
    out = " ".join(capsys.readouterr().out.split())  # argparse may rewrap
    for line in command.keys.splitlines():
        assert line.split()[0] in out
    assert " ".join(command.example.split()) in out
    assert ("Hydra override" in out) == command.hydra


def test_unknown_command_is_refused_naming_the_choices(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["trian"])
    assert exit_info.value.code == 2
    assert "invalid choice: 'trian'" in capsys.readouterr().err


def test_help_does_not_import_torch():
    """`fedureid --help` answers at once: the handlers (torch, flwr) load only when used."""
    code = "import sys; from fedureid.cli import main\ntry: main(['--help'])\nexcept SystemExit: pass\n" \
           "print('torch' in sys.modules, 'flwr' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip().endswith("False False")
