import os
import struct
import subprocess
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from mlscale.data.profile import Profile, profile_table
from mlscale.data.report import render_html, write_html
from mlscale.data.schema import Column, Schema

CHROMIUM = Path("/usr/bin/chromium")


@pytest.fixture(scope="module")
def profile() -> Profile:
    rng = np.random.default_rng(0)
    n = 3_000
    table = pa.table(
        {
            "amount": rng.lognormal(8, 1, n),
            "term": rng.choice([12, 36, 60], n),
            "signed_at": pa.array(1_700_000_000_000_000 + rng.integers(0, 9 * 10**13, n)).cast(
                pa.timestamp("us")
            ),
            "city <b>": rng.choice(["Paris", "Lyon", "<script>alert('x')</script>"], n),
            "code": [f"C{i % 40:03d}" for i in range(n)],
            "active": rng.random(n) < 0.4,
            "nothing": pa.nulls(n, pa.float64()),
        }
    )
    schema = Schema(
        [
            Column("amount", "float64"),
            Column("term", "int64"),
            Column("signed_at", "timestamp[us]"),
            Column("city <b>", "string"),
            Column("code", "string"),
            Column("active", "bool"),
            Column("nothing", "float64"),
        ]
    )
    return profile_table(table, schema)


def test_renders_every_column_kind(profile: Profile) -> None:
    page = render_html(profile, title="loans@3", subtitle="3,000 rows")
    assert page.startswith("<!DOCTYPE html>")
    assert page.count("<svg") == len(profile.columns) == 7
    assert "3,000" in page and "loans@3" in page
    assert "2023-11-" in page  # timestamps read as dates
    assert page.count("<rect") > 30
    assert "all others" in page  # 40 codes: the top 15 and the rest
    assert "no values" in page
    assert "http" not in page.replace("http-equiv", "")  # nothing fetched


def test_escapes_user_strings(profile: Profile) -> None:
    page = render_html(profile, title="<i>t</i>", subtitle="a & b")
    assert "<script" not in page
    assert "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt;" in page
    assert "city &lt;b&gt;" in page and "city <b>" not in page
    assert "&lt;i&gt;t&lt;/i&gt;" in page and "a &amp; b" in page


def test_write_html_is_atomic(profile: Profile, tmp_path: Path) -> None:
    out = write_html(profile, tmp_path / "profile.html", title="t")
    assert out.read_text() == render_html(profile, title="t")
    assert [p.name for p in tmp_path.iterdir()] == ["profile.html"]


@pytest.fixture
def chromium() -> Path:
    """Debian's chromium: skipped where it is missing, but a failure where CI requires it."""
    if not CHROMIUM.exists():
        reason = f"needs {CHROMIUM} (Debian's chromium package) to render the page"
        if os.environ.get("MLSCALE_REQUIRE_CHROMIUM") == "1":
            pytest.fail(f"MLSCALE_REQUIRE_CHROMIUM=1 but {reason}")
        pytest.skip(reason)
    return CHROMIUM


def test_renders_in_headless_chromium(profile: Profile, tmp_path: Path, chromium: Path) -> None:
    page = write_html(profile, tmp_path / "profile.html", title="loans@3")
    shot = tmp_path / "shot.png"
    subprocess.run(
        [str(chromium), "--headless", "--no-sandbox", "--disable-gpu",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--no-first-run", f"--user-data-dir={tmp_path / 'chromium'}", f"--screenshot={shot}",
         "--window-size=1200,2000", page.as_uri()],
        check=True, capture_output=True, timeout=60,
    )  # fmt: skip
    header = shot.read_bytes()[:24]
    assert header[:8] == b"\x89PNG\r\n\x1a\n"
    assert struct.unpack(">II", header[16:24]) == (1200, 2000)
    assert shot.stat().st_size > 20_000  # a blank page compresses to a few kilobytes
