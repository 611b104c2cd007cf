"""`offerloop user create|list` on a SQLite file: the password from stdin, refusals as one line and exit 1."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from offerloop.cli.main import app

runner = CliRunner()


def test_user_create_reads_the_password_from_stdin_and_refuses_bad_input(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("OFFERLOOP_DATABASE_URL", f"sqlite:///{tmp_path / 'cli.db'}")
    ws = json.loads(runner.invoke(app, ["workspace", "create", "CLI", "--json"]).stdout)["id"]
    made = runner.invoke(app, ["user", "create", "-w", ws, "--email", " Ana@Example.COM ", "--role", "reviewer"],
                         input="a very good password\n")  # fmt: skip
    assert made.exit_code == 0, made.output
    assert made.stdout.startswith("user usr_") and "ana@example.com  reviewer  (workspace " in made.stdout
    listed = runner.invoke(app, ["user", "list", "-w", ws])
    assert listed.stdout.split()[1:3] == ["ana@example.com", "reviewer"]
    for args, stdin, message in (
        (["--email", "ana@example.com", "--role", "owner"], "another good password\n", "already a user"),
        (["--email", "bo@example.com", "--role", "admin"], "another good password\n", "role must be one of"),
        (["--email", "not-an-email", "--role", "owner"], "another good password\n", "not an e-mail address"),
        (["--email", "bo@example.com", "--role", "owner"], "short\n", "a password has 12 to 1024 characters"),
    ):
        refused = runner.invoke(app, ["user", "create", "-w", ws, *args], input=stdin)
        assert refused.exit_code == 1 and message in refused.output, (args, refused.output)
    unknown = runner.invoke(app, ["user", "create", "-w", "ws_missing", "--email", "c@example.com", "--role",
                                  "owner"], input="a very good password\n")  # fmt: skip
    assert unknown.exit_code == 1
