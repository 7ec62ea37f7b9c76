"""Content-addressed blobs under ``<root>/sha256/ab/cdef…``, on any fsspec filesystem.

A blob's name is the sha256 of its bytes: writes are verified before they are renamed into place,
and reads are verified before they are handed out.

>>> store = ArtifactStore("memory://doctest-artifacts")
>>> sha = store.put_bytes(b"hello")
>>> sha[:12], store.get_bytes(sha), store.size(sha)
('2cf24dba5fb0', b'hello', 5)
"""

from __future__ import annotations

import hashlib
import io
import os
import re
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO
from uuid import uuid4

from fsspec.core import url_to_fs
from fsspec.implementations.local import LocalFileSystem

from mlscale.errors import IntegrityError, NotFoundError, UserError

_CHUNK = 1 << 20
_SHA = re.compile(r"^[0-9a-f]{64}$")


class ArtifactStore:
    """Immutable blobs named by their sha256, under a local path or an fsspec URL.

    ``root`` is a directory (``.mlscale/artifacts``) or a URL (``s3://bucket/prefix``).
    """

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = root
        self._fs, self._base = url_to_fs(os.fspath(root))
        self._local = isinstance(self._fs, LocalFileSystem)

    def __repr__(self) -> str:
        return f"ArtifactStore({os.fspath(self.root)!r})"

    def put_bytes(self, data: bytes) -> str:
        """Store ``data`` (a no-op if it is already there) and return its sha256."""
        sha = hashlib.sha256(data).hexdigest()
        if not self.exists(sha):
            self._write(sha, io.BytesIO(data), what="the bytes")
        return sha

    def put_file(self, path: str | os.PathLike[str], *, move: bool = False) -> str:
        """Store a file, streamed in chunks, and return its sha256.

        ``move=True`` hands the file over: on a local store on the same filesystem it is renamed
        into place instead of copied (a staged Parquet part, say), and it is gone afterwards.
        """
        with open(path, "rb") as src:
            sha = _pump(src)
        if self.exists(sha):
            if move:
                os.remove(path)
            return sha
        if move and self._local:
            dest = self._path(sha)
            os.makedirs(os.path.dirname(dest), exist_ok=True)
            try:
                os.replace(path, dest)  # atomic; the bytes were hashed just above
                return sha
            except OSError:
                pass  # another filesystem: copy below
        with open(path, "rb") as src:
            self._write(sha, src, what=os.fspath(path))
        if move:
            os.remove(path)
        return sha

    def get_bytes(self, sha: str) -> bytes:
        """The bytes of blob ``sha``, verified against it."""
        path = self._path(sha)
        try:
            data = self._fs.cat_file(path)
        except FileNotFoundError:
            raise self._not_found(sha) from None
        _check(sha, hashlib.sha256(data).hexdigest(), path)
        return data

    @contextmanager
    def open_verified(self, sha: str) -> Iterator[Path]:
        """A local path to blob ``sha``, verified, for libraries that want a file (pyarrow).

        Local roots yield the stored file itself (do not modify it); remote roots yield a
        temporary copy that is deleted afterwards.
        """
        path = self._path(sha)
        if self._local:
            try:
                with open(path, "rb") as src:
                    _check(sha, _pump(src), path)
            except FileNotFoundError:
                raise self._not_found(sha) from None
            yield Path(path)
            return
        with tempfile.TemporaryDirectory(prefix="mlscale-") as tmp:
            local = Path(tmp) / sha
            try:
                with self._fs.open(path, "rb") as src, open(local, "wb") as dst:
                    _check(sha, _pump(src, dst), path)
            except FileNotFoundError:
                raise self._not_found(sha) from None
            yield local

    def exists(self, sha: str) -> bool:
        return bool(self._fs.exists(self._path(sha)))

    def size(self, sha: str) -> int:
        """The size of blob ``sha`` in bytes."""
        try:
            return int(self._fs.size(self._path(sha)))
        except FileNotFoundError:
            raise self._not_found(sha) from None

    def _path(self, sha: str) -> str:
        if not isinstance(sha, str) or not _SHA.match(sha):
            raise UserError(
                f"invalid artifact hash {sha!r}: expected 64 lowercase hex characters (sha256)"
            )
        return f"{self._base}/sha256/{sha[:2]}/{sha[2:]}"

    def _write(self, sha: str, src: BinaryIO, *, what: str) -> None:
        """Copy ``src`` to a temporary name beside the blob, check its hash, rename into place."""
        dest = self._path(sha)
        folder = dest.rsplit("/", 1)[0]
        tmp = f"{folder}/.tmp-{uuid4().hex}"
        self._fs.makedirs(folder, exist_ok=True)
        try:
            with self._fs.open(tmp, "wb") as dst:
                actual = _pump(src, dst)
            if actual != sha:
                raise IntegrityError(f"{what} changed while being stored: expected {sha}")
            if self._local:
                os.replace(tmp, dest)
            else:
                self._fs.mv(tmp, dest)
        except BaseException:
            if self._fs.exists(tmp):
                self._fs.rm(tmp)
            raise

    def _not_found(self, sha: str) -> NotFoundError:
        return NotFoundError(f"no artifact {sha} in {os.fspath(self.root)}")


def _pump(src: BinaryIO, dst: BinaryIO | None = None) -> str:
    """Read ``src`` to the end in chunks, copying to ``dst`` if given; return the sha256."""
    digest = hashlib.sha256()
    while chunk := src.read(_CHUNK):
        digest.update(chunk)
        if dst is not None:
            dst.write(chunk)
    return digest.hexdigest()


def _check(sha: str, actual: str, path: str) -> None:
    if actual != sha:
        raise IntegrityError(
            f"artifact {sha} at {path} is corrupt: its bytes hash to {actual}; "
            "restore it from a backup or store it again"
        )
