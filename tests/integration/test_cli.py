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


@pytest.mark.parametrize("variable", ["PCE_URL", "PANOS_URL"])
def test_a_url_carrying_credentials_is_refused_without_echoing_them(
    deployment, monkeypatch, capsys, variable
):
    monkeypatch.setenv(variable, "https://dagsync:pw-41d0aa@device.example.com")
    assert main(["sync"]) == 2
    captured = capsys.readouterr()
    assert f"{variable} must not carry a username or password" in captured.err
    assert "pw-41d0aa" not in captured.out + captured.err


def test_a_forced_sync_says_so_in_its_summary(deployment, capsys):
    assert main(["sync", "--force"]) == 0
    assert json.loads(capsys.readouterr().out)["forced"] is True


def test_a_run_with_a_deadline_completes_when_the_time_suffices(deployment, capsys):
    assert main(["sync", "--deadline", "600"]) == 0
    assert json.loads(capsys.readouterr().out)["status"] == "ok"


@pytest.mark.parametrize("seconds", ["0", "-5", "soon", "inf"])
def test_a_deadline_must_be_a_positive_number_of_seconds(seconds, capsys):
    with pytest.raises(SystemExit):
        main(["sync", "--deadline", seconds])
    assert "--deadline" in capsys.readouterr().err


def test_plan_without_dag_definitions_prints_the_json_summary(deployment, capsys):
    assert main(["plan", "--json"]) == 0
    assert "dag_changes" not in json.loads(capsys.readouterr().out)["targets"][0]
