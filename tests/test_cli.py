"""The command line, as a user types it."""

from __future__ import annotations

import subprocess
import sys

import pytest

from hsbench.cli import build_parser, main


def test_list_shows_every_kind(capsys) -> None:
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    expected = ("datasets:", "synthetic_drive", "strategies:", "in_domain", "metrics:", "miou", "models:", "runet")
    assert all(word in out for word in expected)


def test_list_one_kind(capsys) -> None:
    assert main(["list", "metrics"]) == 0
    assert capsys.readouterr().out.split() == ["fwiou", "kappa", "macc", "mf1", "miou", "oa"]


def test_show_dataset_prints_the_card(capsys) -> None:
    assert main(["show", "dataset", "synthetic_drive"]) == 0
    out = capsys.readouterr().out
    assert "ignore index" in out and "road" in out and "nm" in out and "how to obtain" in out


def test_show_strategy_lists_its_options(capsys) -> None:
    assert main(["show", "strategy", "in_domain"]) == 0
    assert '"model": "runet"' in capsys.readouterr().out


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["show", "dataset", "synthetic_drv"], "did you mean 'synthetic_drive'"),
        (["run", "--strategy", "in_domian"], "did you mean 'in_domain'"),
        (["run", "--strategy", "in_domain", "--cfg-options", "lr"], "key=value"),
        (["run", "--strategy", "in_domain", "--split", "fraction=2"], "fraction"),
        (["run"], "--strategy"),
    ],
)
def test_user_mistakes_exit_2_with_one_clear_line(capsys, argv, message) -> None:
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err and len(err.strip().splitlines()) == 1


@pytest.mark.parametrize("command", ["run", "list", "show", "prepare", "pretrain", "sweep", "benchmark", "report"])
def test_every_command_has_help(command) -> None:
    with pytest.raises(SystemExit) as exit_info:
        build_parser().parse_args([command, "--help"])
    assert exit_info.value.code == 0


def test_run_ends_with_a_table_of_test_metrics(tmp_path, capsys) -> None:
    argv = ["run", "--strategy", "in_domain", "--dataset", "synthetic_drive", "--model", "svm", "--seeds", "0,1",
            "--results", str(tmp_path), "--no-progress", "--cfg-options", "svm_c_grid=[10]", "svm_max_pixels=300"]
    assert main(argv) == 0
    out = capsys.readouterr().out
    row = next(line for line in out.splitlines() if "in_domain/svm" in line)
    assert "synthetic_drive" in row and "| 2 |" in row and "±" in row
    assert main(argv) == 0  # second call: both runs skipped, same table
    assert row in capsys.readouterr().out


def test_config_file_supplies_the_run_and_flags_override(tmp_path, capsys) -> None:
    cfg = tmp_path / "run.yaml"
    cfg.write_text("strategy: in_domain\ndataset: synthetic_hyko\nsplit: fraction=0.25\nseeds: [0]\n"
                   "options: {model: svm, svm_c_grid: [10], svm_max_pixels: 200}\n")
    assert main(["run", "--config", str(cfg), "--results", str(tmp_path), "--no-progress"]) == 0
    assert "synthetic_hyko | fraction=0.25 | in_domain/svm" in capsys.readouterr().out


def test_console_entry_point_runs_as_a_module() -> None:
    result = subprocess.run([sys.executable, "-m", "hsbench", "list", "strategies"], capture_output=True, text=True)
    assert result.returncode == 0 and "in_domain" in result.stdout


def test_every_command_is_one_module_of_the_cli_package() -> None:
    """``hsbench/cli/`` holds one module per sub-command; ``--help`` lists them in the registry's order."""
    import importlib

    from hsbench.cli import COMMANDS

    help_text = build_parser().format_help()
    positions = []
    for name, module in COMMANDS.items():
        assert module.NAME == name and callable(module.add_parser) and callable(module.run)
        assert module.__name__.startswith("hsbench.cli.")
        assert importlib.import_module(module.__name__) is module
        positions.append(help_text.index(f"    {name} "))
    assert positions == sorted(positions)
    assert {"run", "list", "show", "prepare", "pretrain", "sweep", "benchmark", "report"} <= set(COMMANDS)
