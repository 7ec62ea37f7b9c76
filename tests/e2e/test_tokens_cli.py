"""``mlscale tokens create|list|revoke`` in subprocesses, as a user runs them."""

from __future__ import annotations

import json
from pathlib import Path

from mlscale.workspace import Workspace
from tests.e2e.conftest import run_cli


def test_token_lifecycle_on_the_cli(tmp_path: Path) -> None:
    assert run_cli(tmp_path, "init").returncode == 0
    empty = run_cli(tmp_path, "tokens", "list")
    assert empty.returncode == 0 and "no API tokens yet" in empty.stdout

    created = run_cli(tmp_path, "tokens", "create", "ci")
    assert created.returncode == 0, created.stderr
    secret = created.stdout.strip()  # the secret alone on stdout, so it can be redirected
    assert secret.startswith("mls_") and len(secret) == 47
    assert "cannot be shown again" in created.stderr and "role predict" in created.stderr

    admin = run_cli(tmp_path, "tokens", "create", "ops", "--role", "admin", "--json")
    assert admin.returncode == 0, admin.stderr
    ops = json.loads(admin.stdout)
    assert (ops["name"], ops["role"], ops["revoked_at"]) == ("ops", "admin", None)
    assert ops["last4"] == ops["secret"][-4:]

    ws = Workspace.open(tmp_path)
    assert ws.metadata.verify_token(secret).name == "ci"
    assert ws.metadata.verify_token(ops["secret"]).role == "admin"

    duplicate = run_cli(tmp_path, "tokens", "create", "ci")
    assert duplicate.returncode == 2
    assert duplicate.stderr.startswith("error: an active token named 'ci' already exists")
    bad_role = run_cli(tmp_path, "tokens", "create", "x", "--role", "root")
    assert bad_role.returncode == 2 and "'predict', 'admin'" in bad_role.stderr

    revoked = run_cli(tmp_path, "tokens", "revoke", "ci")
    assert revoked.returncode == 0, revoked.stderr
    assert "revoked token ci" in revoked.stdout
    assert ws.metadata.verify_token(secret) is None
    again = run_cli(tmp_path, "tokens", "revoke", "ci")
    assert again.returncode == 2 and "already revoked" in again.stderr

    listed = run_cli(tmp_path, "tokens", "list")
    assert listed.returncode == 0
    assert secret not in listed.stdout and ops["secret"] not in listed.stdout
    rows = {line.split()[0]: line for line in listed.stdout.splitlines()[2:]}
    assert set(rows) == {"ci", "ops"}
    assert secret[-4:] in rows["ci"] and ops["last4"] in rows["ops"]
    as_json = json.loads(run_cli(tmp_path, "tokens", "list", "--json").stdout)
    assert [(t["name"], t["revoked_at"] is None) for t in as_json] == [("ci", False), ("ops", True)]
    assert all("secret" not in t for t in as_json)
    ws.metadata.close()
