import threading
import time

import pytest

from mlscale.data.overlap import WriteBehind, read_ahead


def test_read_ahead_passes_the_source_error_to_the_consumer() -> None:
    def source():  # type: ignore[no-untyped-def]
        yield 1
        raise ValueError("bad part 2")

    got = []
    with pytest.raises(ValueError, match="bad part 2"):
        for item in read_ahead(source()):
            got.append(item)
    assert got == [1]


def test_read_ahead_stops_its_thread_when_the_consumer_stops() -> None:
    produced = []

    def endless():  # type: ignore[no-untyped-def]
        n = 0
        while True:
            produced.append(n)
            yield n
            n += 1

    before = threading.active_count()
    for item in read_ahead(endless(), depth=2):
        if item == 3:
            break
    assert threading.active_count() == before
    assert len(produced) <= 4 + 2 + 1  # never more than depth ahead


def test_write_behind_writes_in_order_and_raises_write_errors() -> None:
    written = []
    with WriteBehind(written.append) as writer:
        for i in range(50):
            writer.put(i)
    assert written == list(range(50))

    def failing(item: int) -> None:
        if item == 2:
            raise OSError("disk full")
        time.sleep(0.001)

    with pytest.raises(OSError, match="disk full"), WriteBehind(failing) as writer:
        for i in range(100):
            writer.put(i)
