"""The composition root: the CLI loads a service only when one of its commands runs."""

from __future__ import annotations

import subprocess
import sys

from typer.testing import CliRunner

from shiptrack.app.cli import app

SERVICES = ("api", "ingest", "simulator")


def _loaded_after(statement: str) -> list[str]:
    top = "{m.split('.')[0] for m in sys.modules}"
    code = f"import sys\n{statement}\nprint(' '.join(sorted({top} & {set(SERVICES)!r})))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    return out.stdout.split()


def test_importing_the_cli_loads_no_service() -> None:
    assert _loaded_after("import shiptrack.app.cli") == []


def test_the_main_help_lists_simulate_without_loading_the_simulator() -> None:
    statement = ("from typer.testing import CliRunner\nfrom shiptrack.app.cli import app\n"
                 "result = CliRunner().invoke(app, ['--help'])\n"
                 "assert result.exit_code == 0 and 'simulate' in result.output, result.output")
    assert _loaded_after(statement) == []


def test_the_simulate_command_runs_the_simulator_command() -> None:
    result = CliRunner().invoke(app, ["simulate", "--help"])
    assert result.exit_code == 0, result.output
    assert "--scenario" in result.output and "--devices" in result.output
    bad = CliRunner().invoke(app, ["simulate", "--mqtt-url", "http://example.org",
                                   "--count", "1"])
    assert bad.exit_code == 2
    assert "mqtt" in bad.output.lower()
