"""`python -m dagsync`: the operator CLI runs the same engine as the handler."""

import json

import pytest

from dagsync.__main__ import main


def test_plan_prints_the_dry_run_and_changes_nothing(deployment, panos, capsys):
    assert main(["plan"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["dry_run"] is True
    assert len(summary["targets"][0]["plan"]["register"]) == 17
    assert panos.table() == {}


def test_sync_registers_and_exits_zero(deployment, panos, capsys):
    assert main(["sync"]) == 0
    assert json.loads(capsys.readouterr().out)["targets"][0]["registered"] == 17
    assert len(panos.table()) == 6  # five workload IPs and the canary


def test_reconcile_reads_the_device(deployment, capsys):
    main(["sync"])
    capsys.readouterr()
    assert main(["reconcile"]) == 0
    assert json.loads(capsys.readouterr().out)["targets"][0]["reconciled"] is True


def test_configuration_errors_exit_two_with_the_variable_named(deployment, monkeypatch, capsys):
    monkeypatch.setenv("BATCH_SIZE", "0")
    assert main(["sync"]) == 2
    assert "BATCH_SIZE" in capsys.readouterr().err


def test_unknown_command_is_refused():
    with pytest.raises(SystemExit):
        main(["purge"])
