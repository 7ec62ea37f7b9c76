"""The artifact store, on a local directory and on an in-memory fsspec filesystem."""

from __future__ import annotations

import hashlib
import io
import os
import tracemalloc
from collections.abc import Iterator
from pathlib import Path
from uuid import uuid4

import fsspec
import pytest

from mlscale.errors import IntegrityError, NotFoundError, UserError
from mlscale.store.artifacts import ArtifactStore

DATA = b"id,age\n1,40\n"
SHA = hashlib.sha256(DATA).hexdigest()
MISSING = "f" * 64


@pytest.fixture(params=["local", "memory"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[ArtifactStore]:
    if request.param == "local":
        yield ArtifactStore(tmp_path / "artifacts")
        return
    root = f"memory://artifacts-{uuid4().hex}"
    yield ArtifactStore(root)
    memory = fsspec.filesystem("memory")
    if memory.exists(root):
        memory.rm(root, recursive=True)


def blob_path(store: ArtifactStore, sha: str) -> str:
    return f"{os.fspath(store.root)}/sha256/{sha[:2]}/{sha[2:]}"


def all_files(store: ArtifactStore) -> list[str]:
    fs, base = fsspec.core.url_to_fs(os.fspath(store.root))
    return sorted(p.removeprefix(base) for p in fs.find(base))


def test_round_trip(store: ArtifactStore) -> None:
    assert store.put_bytes(DATA) == SHA
    assert store.exists(SHA)
    assert store.get_bytes(SHA) == DATA
    assert store.size(SHA) == len(DATA)
    assert all_files(store) == [f"/sha256/{SHA[:2]}/{SHA[2:]}"]


def test_putting_twice_stores_once(store: ArtifactStore, tmp_path: Path) -> None:
    store.put_bytes(DATA)
    source = tmp_path / "data.csv"
    source.write_bytes(DATA)
    assert store.put_file(source) == SHA
    assert store.put_bytes(DATA) == SHA
    assert len(all_files(store)) == 1


def test_existing_blob_is_not_rewritten(tmp_path: Path) -> None:
    store = ArtifactStore(tmp_path)
    store.put_bytes(DATA)
    before = os.stat(blob_path(store, SHA))
    store.put_bytes(DATA)
    after = os.stat(blob_path(store, SHA))
    assert (after.st_ino, after.st_mtime_ns) == (before.st_ino, before.st_mtime_ns)


def test_corruption_is_detected(store: ArtifactStore) -> None:
    store.put_bytes(DATA)
    fs, path = fsspec.core.url_to_fs(blob_path(store, SHA))
    fs.pipe_file(path, b"id,age\n1,41\n")
    with pytest.raises(IntegrityError, match=rf"artifact {SHA} at .*{SHA[2:]} is corrupt"):
        store.get_bytes(SHA)
    with pytest.raises(IntegrityError, match=SHA), store.open_verified(SHA):
        pass


def test_corruption_on_local_disk_is_detected(tmp_path: Path) -> None:
    store = ArtifactStore(tmp_path)
    store.put_bytes(DATA)
    path = Path(blob_path(store, SHA))
    path.write_bytes(path.read_bytes().replace(b"40", b"41"))
    with pytest.raises(IntegrityError, match=str(path)):
        store.get_bytes(SHA)


def test_a_write_that_fails_verification_leaves_nothing(store: ArtifactStore) -> None:
    # What put_file sees when its source changes between hashing and copying.
    with pytest.raises(IntegrityError, match="changed while being stored"):
        store._write(MISSING, io.BytesIO(DATA), what="data.csv")
    assert not store.exists(MISSING)
    assert all_files(store) == []


def test_no_temporary_files_are_left(store: ArtifactStore, tmp_path: Path) -> None:
    for i in range(5):
        store.put_bytes(DATA * i + b"x")
    assert all(".tmp-" not in f for f in all_files(store))
    assert len(all_files(store)) == 5


def test_put_file_streams(store: ArtifactStore, tmp_path: Path) -> None:
    big = tmp_path / "big.bin"
    data = os.urandom(16 << 20)
    big.write_bytes(data)
    expected = hashlib.sha256(data).hexdigest()
    del data
    tracemalloc.start()
    try:
        sha = store.put_file(big)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert sha == expected
    if os.fspath(store.root).startswith("memory://"):
        return  # the in-memory filesystem keeps the bytes in memory by design
    assert peak < 8 << 20
    assert store.size(sha) == 16 << 20


def test_open_verified_gives_a_local_file(store: ArtifactStore) -> None:
    store.put_bytes(DATA)
    with store.open_verified(SHA) as path:
        assert path.read_bytes() == DATA
    if os.fspath(store.root).startswith("memory://"):
        assert not path.exists()  # the temporary copy is gone
    else:
        assert path == Path(blob_path(store, SHA))


def test_unknown_blob(store: ArtifactStore) -> None:
    assert not store.exists(MISSING)
    for call in (store.get_bytes, store.size):
        with pytest.raises(NotFoundError, match=f"no artifact {MISSING}"):
            call(MISSING)
    with pytest.raises(NotFoundError), store.open_verified(MISSING):
        pass


@pytest.mark.parametrize("bad", ["", "abc", SHA.upper(), SHA + "0", "g" * 64])
def test_bad_hash_is_a_user_error(store: ArtifactStore, bad: str) -> None:
    with pytest.raises(UserError, match="invalid artifact hash"):
        store.get_bytes(bad)
    with pytest.raises(UserError):
        store.exists(bad)


def test_put_file_move_hands_the_file_over(store: ArtifactStore, tmp_path: Path) -> None:
    part = tmp_path / "part.parquet"
    part.write_bytes(b"parquet bytes")
    sha = store.put_file(part, move=True)
    assert not part.exists()
    assert store.get_bytes(sha) == b"parquet bytes"
    part.write_bytes(b"parquet bytes")  # the same content again: nothing new, file still consumed
    assert store.put_file(part, move=True) == sha and not part.exists()
    assert all(".tmp-" not in f for f in all_files(store))
