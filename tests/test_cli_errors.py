"""Every command line reports a GldfnError the same way: one ``error:`` line on stderr and exit status 1;
command-line usage errors exit with 2 (README "Exit status")."""
from __future__ import annotations

import subprocess
import sys

import pytest
import typer
from typer.testing import CliRunner

from gldfn_model.common.cli_errors import EXIT_ERROR, EXIT_USAGE, GldfnTyper
from gldfn_model.common.errors import GldfnError


class _Problem(GldfnError, ValueError):
    pass


def _app(commands: int) -> GldfnTyper:
    app = GldfnTyper(add_completion=False)

    @app.command("fail")
    def fail(kind: str = "gldfn") -> None:
        if kind == "gldfn":
            raise _Problem("the file is bad; use another one")
        if kind == "usage":
            raise typer.BadParameter("not like this")
        raise RuntimeError("a bug")

    if commands > 1:
        @app.command("other")
        def other() -> None:
            """A second command makes the app a group."""

    return app


@pytest.mark.parametrize("commands", [1, 2], ids=["single-command app", "group"])
def test_gldfn_error_is_one_line_and_status_1(commands):
    args = ["fail"] if commands > 1 else []
    result = CliRunner().invoke(_app(commands), [*args, "--kind", "gldfn"])
    assert result.exit_code == EXIT_ERROR == 1
    assert result.stderr == "error: the file is bad; use another one\n"
    assert result.stdout == ""


def test_usage_errors_keep_status_2_and_bugs_keep_their_exception():
    app = _app(2)
    usage = CliRunner().invoke(app, ["fail", "--kind", "usage"])
    assert usage.exit_code == EXIT_USAGE == 2 and "not like this" in usage.output
    assert CliRunner().invoke(app, ["fail", "--no-such-option"]).exit_code == 2
    bug = CliRunner().invoke(app, ["fail", "--kind", "bug"])
    assert isinstance(bug.exception, RuntimeError) and "error:" not in bug.output


def _project_apps() -> dict[str, typer.Typer]:
    from gldfn_calibration.cli import app as calibrate
    from gldfn_export.cli import app as export
    from gldfn_model.cli import app as gldfn
    from gldfn_runtime.cli.main import app as trt

    return {"gldfn": gldfn, "gldfn-export": export, "gldfn-trt": trt, "gldfn-calibrate": calibrate}


def test_every_command_line_is_a_gldfn_typer():
    assert all(isinstance(app, GldfnTyper) for app in _project_apps().values())


@pytest.mark.parametrize("command,args,message", [
    ("gldfn", ["upscale", "absent.png", "-o", "out", "--backend", "bicubic"], "absent.png: no such file or folder"),
    ("gldfn-export", ["--checkpoint", "absent.pt"], "checkpoint absent.pt does not exist"),
    ("gldfn-trt", ["inspect", "absent.engine"], "engine absent.engine does not exist"),
    ("gldfn-calibrate", ["absent.onnx", "--images", ".", "-o", "x.onnx", "--sensitivity", "--no-eval"],
     "--sensitivity needs the evaluation"),
])
def test_each_command_line_reports_a_user_error_in_one_line(command, args, message, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(_project_apps()[command], args)
    assert result.exit_code == 1, result.output
    assert result.stderr.startswith("error: ") and message in result.stderr and result.stderr.count("\n") == 1
    assert list(tmp_path.iterdir()) == []


def test_the_installed_entry_point_reports_the_same_way(tmp_path):
    """Through main() (what the console script runs), not the test runner."""
    done = subprocess.run([sys.executable, "-c", "from gldfn_runtime.cli.main import main; main()", "inspect", "absent.engine"],
                          cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert done.returncode == 1 and done.stderr.startswith("error: engine absent.engine does not exist")
    assert "Traceback" not in done.stderr and done.stderr.count("\n") == 1
