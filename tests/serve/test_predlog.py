"""The prediction log: round trip, rotation, threads, torn tails and a real ``kill -9``."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

import pyarrow as pa
import pytest

from mlscale.errors import SchemaError
from mlscale.serve.predlog import PredictionLog
from mlscale.serve.predlog_reader import LogStats, iter_log, read_log

FEATURES = {"age": [41, 29], "city": ["Oslo", None], "owner": [True, False]}
OUTPUTS = {"prediction": ["no", "yes"], "proba.no": [0.8, 0.3], "proba.yes": [0.2, 0.7]}


def segments(folder: Path, model: str = "loans") -> list[str]:
    return sorted(p.name for p in (folder / model).iterdir())


def test_round_trip(tmp_path: Path) -> None:
    with PredictionLog(tmp_path) as plog:
        plog.append("loans", 3, "r1", FEATURES, OUTPUTS, 2.5, ts=1_700_000_000.25)
        plog.append("loans", 3, "r2", {"age": [50], "city": ["Rome"], "owner": [False]},
                    {"prediction": ["no"], "proba.no": [0.9], "proba.yes": [0.1]}, 1.0)  # fmt: skip
    table = read_log(tmp_path, model="loans")
    assert table.num_rows == 3
    assert table.schema.field("ts").type == pa.timestamp("us", tz="UTC")
    types = {f.name: f.type for f in table.schema}
    assert types["f.age"] == pa.float64()
    assert types["f.city"] == pa.string()
    assert types["f.owner"] == pa.bool_()
    assert types["prediction"] == pa.string()
    assert types["proba.yes"] == pa.float64()
    assert types["version"] == pa.int64()
    first = table.to_pylist()[0]
    assert first["ts"] == datetime(2023, 11, 14, 22, 13, 20, 250000, tzinfo=UTC)
    assert (first["request_id"], first["model"], first["version"]) == ("r1", "loans", 3)
    assert (first["f.age"], first["f.city"], first["f.owner"]) == (41.0, "Oslo", True)
    assert (first["prediction"], first["proba.no"], first["latency_ms"]) == ("no", 0.8, 2.5)
    assert table.column("request_id").to_pylist() == ["r1", "r1", "r2"]
    assert all(name.endswith(".arrows") for name in segments(tmp_path))  # sealed on close


def test_since_until_and_models(tmp_path: Path) -> None:
    with PredictionLog(tmp_path) as plog:
        for i in range(10):
            plog.append(
                "loans", 1, f"r{i}", {"x": [i]}, {"prediction": [i * 2.0]}, 1.0, ts=100.0 + i
            )
        plog.append("fraud", 2, "f1", {"y": ["a"]}, {"prediction": [1.0]}, 1.0, ts=105.0)
    assert read_log(tmp_path, "loans", since=103, until=106).column("f.x").to_pylist() == [3, 4, 5]
    since = datetime.fromtimestamp(108, UTC)
    assert read_log(tmp_path, "loans", since=since).num_rows == 2
    both = read_log(tmp_path)
    assert both.num_rows == 11
    assert set(both.column("model").to_pylist()) == {"loans", "fraud"}
    assert read_log(tmp_path, "nothing").num_rows == 0
    assert read_log(tmp_path / "missing").num_rows == 0


def test_flushes_without_close(tmp_path: Path) -> None:
    plog = PredictionLog(tmp_path, flush_interval_s=0.1)
    try:
        plog.append("loans", 1, "r1", FEATURES, OUTPUTS, 1.0)
        deadline = time.monotonic() + 2
        while read_log(tmp_path).num_rows < 2 and time.monotonic() < deadline:
            time.sleep(0.02)
        assert read_log(tmp_path).num_rows == 2
        assert segments(tmp_path)[0].endswith(".arrows.open")
    finally:
        plog.close()
    plog.close()  # idempotent
    assert plog.rows_written == 2


def test_rotates_by_rows(tmp_path: Path) -> None:
    with PredictionLog(tmp_path, segment_max_rows=5) as plog:
        for i in range(3):
            plog.append("loans", 1, f"r{i}", {"x": [1, 2, 3, 4]}, {"prediction": [0, 1, 0, 1]}, 1)
        plog.flush()  # 12 rows in one flush: split 5 + 5 + 2
        plog.append("loans", 1, "r3", {"x": [5]}, {"prediction": [1]}, 1)
    names = segments(tmp_path)
    assert len(names) == 3
    stats = LogStats()
    sizes = [t.num_rows for t in iter_log(tmp_path, stats=stats)]
    assert sizes == [5, 5, 3]
    assert (stats.segments, stats.rows, stats.torn, stats.corrupt) == (3, 13, 0, 0)


def test_rotates_by_age(tmp_path: Path) -> None:
    with PredictionLog(tmp_path, flush_interval_s=0.05, segment_max_age_s=0.15) as plog:
        plog.append("loans", 1, "r1", {"x": [1]}, {"prediction": [1]}, 1)
        plog.flush()
        deadline = time.monotonic() + 2
        while not segments(tmp_path)[0].endswith(".arrows") and time.monotonic() < deadline:
            time.sleep(0.02)
        assert segments(tmp_path)[0].endswith(".arrows")  # sealed by age, not by close
        plog.append("loans", 1, "r2", {"x": [2]}, {"prediction": [1]}, 1)
    assert len(segments(tmp_path)) == 2
    assert read_log(tmp_path).column("request_id").to_pylist() == ["r1", "r2"]


def test_new_segment_when_features_or_types_change(tmp_path: Path) -> None:
    with PredictionLog(tmp_path) as plog:
        plog.append("loans", 1, "a", {"x": [1.5]}, {"prediction": [1]}, 1)
        plog.flush()
        plog.append("loans", 1, "b", {"x": [None]}, {"prediction": [0]}, 1)  # null fits float64
        plog.flush()
        plog.append("loans", 2, "c", {"x": [1.0], "z": ["new"]}, {"prediction": [0]}, 1)
        plog.flush()
        plog.append("loans", 3, "d", {"x": ["text now"]}, {"prediction": [0]}, 1)
        plog.flush()
        plog.append("loans", 1, "e", {"x": [7]}, {"prediction": [1]}, 1)  # back to the first
    assert len(segments(tmp_path)) == 3
    per_segment = [t.column("request_id").to_pylist() for t in iter_log(tmp_path)]
    assert sorted(per_segment) == [["a", "b", "e"], ["c"], ["d"]]
    table = read_log(tmp_path)  # float64 vs string for f.x across segments reads as text
    assert table.num_rows == 5
    assert table.schema.field("f.x").type == pa.string()
    assert table.schema.field("f.z").type == pa.string()


def test_mixed_values_in_one_column(tmp_path: Path) -> None:
    with PredictionLog(tmp_path) as plog:
        plog.append("m", 1, "a", {"n": [True, 2], "s": [1, "x"], "big": [2**70, 1]}, {}, 1)
    rows = read_log(tmp_path).to_pylist()
    assert [r["f.n"] for r in rows] == [1.0, 2.0]
    assert [r["f.s"] for r in rows] == ["1", "x"]
    assert [r["f.big"] for r in rows] == [2.0**70, 1.0]


def test_bad_appends_raise_at_once(tmp_path: Path) -> None:
    with PredictionLog(tmp_path) as plog:
        with pytest.raises(SchemaError, match="differ in length"):
            plog.append("loans", 1, "r", {"x": [1, 2]}, {"prediction": [1]}, 1)
        with pytest.raises(SchemaError, match="clashes"):
            plog.append("loans", 1, "r", {"x": [1]}, {"version": [1]}, 1)
        with pytest.raises(SchemaError, match="cannot name"):
            plog.append("../evil", 1, "r", {"x": [1]}, {"prediction": [1]}, 1)
    assert read_log(tmp_path).num_rows == 0


def test_append_after_close_is_dropped(tmp_path: Path) -> None:
    plog = PredictionLog(tmp_path)
    plog.close()
    plog.append("loans", 1, "late", {"x": [1]}, {"prediction": [1]}, 1)
    assert plog.rows_dropped == 1
    assert read_log(tmp_path).num_rows == 0


def test_many_threads(tmp_path: Path) -> None:
    threads, per_thread = 8, 500
    plog = PredictionLog(tmp_path, flush_interval_s=0.01, segment_max_rows=700)
    start = threading.Barrier(threads)

    def work(t: int) -> None:
        start.wait()
        for i in range(per_thread):
            plog.append("loans", 1 + i % 2, f"{t}-{i}", {"x": [i]}, {"prediction": [t]}, 0.1)

    workers = [threading.Thread(target=work, args=(t,)) for t in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    plog.close()
    ids = read_log(tmp_path).column("request_id").to_pylist()
    assert len(ids) == threads * per_thread
    assert set(ids) == {f"{t}-{i}" for t in range(threads) for i in range(per_thread)}
    assert plog.rows_written == threads * per_thread and plog.rows_dropped == 0


def write_two_batches(folder: Path) -> Path:
    with PredictionLog(folder) as plog:
        plog.append("loans", 1, "good", {"x": [1, 2, 3]}, {"prediction": [1, 1, 0]}, 1)
        plog.flush()
        plog.append("loans", 1, "last", {"x": [4, 5]}, {"prediction": [0, 0]}, 1)
    (path,) = (folder / "loans").iterdir()
    return path


def test_torn_tail_by_truncation(tmp_path: Path) -> None:
    path = write_two_batches(tmp_path)
    path.write_bytes(path.read_bytes()[:-40])  # cuts into the last batch (and its end marker)
    stats = LogStats()
    table = read_log(tmp_path, stats=stats)
    assert table.column("request_id").to_pylist() == ["good"] * 3
    assert (stats.segments, stats.torn, stats.corrupt, stats.rows) == (1, 1, 0, 3)
    assert str(path) in stats.problems[0]


def test_torn_tail_by_garbage_on_open_segment(tmp_path: Path) -> None:
    path = write_two_batches(tmp_path)
    data = path.read_bytes()[:-8]  # no end-of-stream marker, as in a segment still open
    path.unlink()
    open_path = path.with_name(path.name + ".open")
    open_path.write_bytes(data + b"\xff\xff\xff\xff\x40\x00\x00\x00partial message")
    stats = LogStats()
    assert read_log(tmp_path, stats=stats).num_rows == 5
    assert (stats.torn, stats.corrupt) == (1, 0)


def test_corrupt_segment_is_skipped(tmp_path: Path) -> None:
    write_two_batches(tmp_path)
    (tmp_path / "loans" / "seg-00000000T000000000000Z-000.arrows").write_bytes(b"not arrow " * 9)
    (tmp_path / "loans" / "seg-00000000T000000000001Z-000.arrows.open").write_bytes(b"")
    (tmp_path / "loans" / "notes.txt").write_text("not a segment")
    stats = LogStats()
    assert read_log(tmp_path, stats=stats).num_rows == 5
    assert (stats.segments, stats.torn, stats.corrupt) == (1, 0, 1)


CHILD = """
import sys, time
from mlscale.serve.predlog import PredictionLog
plog = PredictionLog(sys.argv[1], flush_interval_s=0.2)
print("ready", flush=True)
i = 0
while True:
    plog.append("loans", 1, str(i), {"x": [i]}, {"prediction": [i % 2]}, 0.5)
    i += 1
    time.sleep(0.0005)
"""


def test_survives_kill_9(tmp_path: Path) -> None:
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(tmp_path)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert child.stdout is not None
        assert child.stdout.readline().strip() == "ready"
        time.sleep(1.0)
    finally:
        os.kill(child.pid, signal.SIGKILL)
        child.wait()
        if child.stdout is not None:
            child.stdout.close()
    assert child.returncode == -signal.SIGKILL
    stats = LogStats()
    ids = [int(i) for i in read_log(tmp_path, stats=stats).column("request_id").to_pylist()]
    assert len(ids) > 0
    assert ids == list(range(len(ids)))  # a gap-free prefix: only the unflushed tail is lost
    assert stats.corrupt == 0


def test_server_rows_and_answers_log_like_plain_columns(tmp_path: Path) -> None:
    """RecordColumns / PredictionColumns (gathered at flush) give the same log as lists do,
    alone or mixed with plain columns and numpy arrays in one flush."""
    import numpy as np

    from mlscale.serve.log_columns import PredictionColumns, RecordColumns

    names = ("age", "city", "owner")
    records = [dict(zip(names, row, strict=True)) for row in zip(*FEATURES.values(), strict=True)]
    answers = PredictionColumns(["no", "yes"], np.array([[0.8, 0.2], [0.3, 0.7]]), ["no", "yes"])
    plain, gathered = tmp_path / "plain", tmp_path / "gathered"
    with PredictionLog(plain) as plog:
        for request in ("r1", "r2", "r3"):
            plog.append("loans", 3, request, FEATURES, OUTPUTS, 1.0, ts=1_700_000_000.0)
    with PredictionLog(gathered) as plog:
        plog.append(
            "loans", 3, "r1", RecordColumns(records, names), answers, 1.0, ts=1_700_000_000.0
        )
        numpy_features = {k: np.array(v, dtype=object) for k, v in FEATURES.items()}
        plog.append("loans", 3, "r2", numpy_features, answers, 1.0, ts=1_700_000_000.0)
        plog.append(
            "loans", 3, "r3", RecordColumns(records, names), answers, 1.0, ts=1_700_000_000.0
        )
    assert read_log(gathered, model="loans").equals(read_log(plain, model="loans"))
    with pytest.raises(SchemaError, match="2 rows but 1 answers"), PredictionLog(plain) as plog:
        plog.append("loans", 3, "r4", RecordColumns(records, names),
                    PredictionColumns(["no"], np.array([[0.5, 0.5]]), ["no", "yes"]), 1.0)  # fmt: skip
