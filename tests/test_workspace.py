import os
from pathlib import Path

import pytest

import mlscale
from mlscale import (
    ConfigError,
    MissingDependencyError,
    UserError,
    Workspace,
    WorkspaceNotFoundError,
)
from mlscale._lazy import require
from mlscale.quickstart.loans import write_loans_csv


def test_public_api_is_listed() -> None:
    public = {n for n in dir(mlscale) if not n.startswith("_") and n[0].isupper()}
    assert public == set(mlscale.__all__)


def test_missing_extra_names_the_install_line() -> None:
    with pytest.raises(MissingDependencyError, match=r'pip install "mlscale\[ray\]"'):
        require("surely_not_installed_module", extra="ray")


def test_init_open_and_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    ws = Workspace.init(tmp_path / "p")
    assert (ws.root / "mlscale.toml").is_file() and (ws.root / ".mlscale").is_dir()
    assert ws.config.db_url == f"sqlite:///{ws.root / '.mlscale' / 'metadata.db'}"
    monkeypatch.chdir(tmp_path / "p" / ".mlscale")
    assert Workspace.open().root == ws.root
    monkeypatch.chdir(tmp_path)
    with pytest.raises(WorkspaceNotFoundError, match="mlscale init"):
        Workspace.open()
    monkeypatch.setenv("MLSCALE_WORKSPACE", str(ws.root))
    assert Workspace.open().root == ws.root
    with pytest.raises(WorkspaceNotFoundError, match="is not an mlscale workspace"):
        Workspace.open(tmp_path)


def test_config_file_and_overrides(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    ws = Workspace.init(tmp_path)
    (tmp_path / "mlscale.toml").write_text(
        '[store]\ndb_url = "sqlite:///meta.db"\nartifacts = "blobs"\n'
    )
    config = Workspace.open(tmp_path).config
    assert config.db_url == f"sqlite:///{ws.root / 'meta.db'}"
    assert config.artifacts == str(ws.root / "blobs")
    monkeypatch.setenv("MLSCALE_ARTIFACTS", "memory://x")
    assert Workspace.open(tmp_path).config.artifacts == "memory://x"
    (tmp_path / "mlscale.toml").write_text("[store\n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        Workspace.open(tmp_path)


def test_compute_settings_from_the_file_and_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ws = Workspace.init(tmp_path)
    assert (ws.config.backend, ws.config.ray_address) == ("local", None)
    config = tmp_path / "mlscale.toml"
    config.write_text('[compute]\nbackend = "ray"\nray_address = "10.0.0.5:6379"\n')
    assert Workspace.open(tmp_path).config.backend == "ray"
    assert Workspace.open(tmp_path).config.ray_address == "10.0.0.5:6379"
    monkeypatch.setenv("MLSCALE_BACKEND", "local")
    monkeypatch.setenv("MLSCALE_RAY_ADDRESS", "10.0.0.6:6379")
    assert Workspace.open(tmp_path).config.backend == "local"
    assert Workspace.open(tmp_path).config.ray_address == "10.0.0.6:6379"
    monkeypatch.setenv("MLSCALE_BACKEND", "spark")
    with pytest.raises(ConfigError, match="MLSCALE_BACKEND is 'spark'; expected one of local, ray"):
        Workspace.open(tmp_path)
    monkeypatch.delenv("MLSCALE_BACKEND")
    config.write_text('[compute]\nbackend = "dask"\n')
    with pytest.raises(ConfigError, match=r"mlscale.toml: \[compute\] backend is 'dask'"):
        Workspace.open(tmp_path)


def test_the_configured_backend_is_used_where_no_backend_is_given(
    tmp_path: Path, loans_csv: Path
) -> None:
    """The workspace's backend reaches train, tune and predict; an explicit one wins."""
    ws = Workspace.init(tmp_path)
    (tmp_path / "mlscale.toml").write_text('[compute]\nbackend = "ray"\nray_address = "x:1"\n')
    ws = Workspace.open(tmp_path)
    assert ws._compute({}) == {"backend": "ray", "address": "x:1"}
    assert ws._compute({"backend": None, "address": "y:2"}) == {"backend": "ray", "address": "y:2"}
    assert ws._compute({"backend": "local"}) == {"backend": "local"}
    ws.ingest(loans_csv, name="loans")
    with pytest.raises(UserError, match="model 'logistic' does not train on Ray"):
        ws.train("loans@1", target="default", model="logistic")
    assert ws.train("loans@1", target="default", model="logistic", backend="local").model


@pytest.mark.postgres
def test_the_loop_on_postgresql(
    tmp_path: Path, pg_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MLSCALE_DB_URL", pg_url)
    ws = Workspace.init(tmp_path)
    assert ws.config.db_url == pg_url and not (tmp_path / ".mlscale" / "metadata.db").exists()
    csv = write_loans_csv(tmp_path / "loans.csv", 2_000)
    assert ws.ingest(csv, name="loans").dataset.ref == "loans@1"
    assert not ws.ingest(csv, name="loans").created
    result = ws.train("loans@1", target="default")
    ws.promote("loans", result.model.version, alias="production")
    assert ws.model("loans@production").aliases == ["production"]
    rows = [dict.fromkeys(ws.predictor("loans@1").signature.feature_names)]
    assert len(ws.predictor("loans@production").predict_records(rows).predictions) == 1
    ws.metadata.close()  # type: ignore[attr-defined]


def test_unreachable_database_is_a_config_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MLSCALE_DB_URL", "postgresql://nobody:secret@127.0.0.1:1/none")
    with pytest.raises(ConfigError) as info:
        Workspace.init(tmp_path)
    assert "secret" not in str(info.value) and "127.0.0.1:1" in str(info.value)
    assert os.environ["MLSCALE_DB_URL"]
