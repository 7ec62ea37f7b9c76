"""Data commands: ``ingest``, ``schema infer``, and ``data list|versions|show|diff|quarantine|profile``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from mlscale.cli.output import console, print_json, progress, table
from mlscale.errors import UserError
from mlscale.workspace import Workspace


def _ws(ctx: click.Context) -> Workspace:
    return Workspace.open(ctx.obj.get("workspace"))


def _mib(n: int) -> str:
    return f"{n / (1 << 20):,.1f} MiB"


def source_options(f: Any) -> Any:
    """Options that say where rows come from, shared by ``ingest`` and ``schema infer``."""
    options = [
        click.option("--sql", help="Read the rows of this SQL query (with --db URL)."),
        click.option("--db", "db_url", help="SQLAlchemy URL for --sql, or a .duckdb file."),
        click.option("--duckdb", "duckdb_query", help="Read the rows of a DuckDB query."),
        click.option("--records", help="HTTP: dotted path to the records in each JSON page."),
        click.option(
            "--pagination",
            type=click.Choice(["none", "cursor", "page", "link"]),
            default="none",
            show_default=True,
            help="HTTP: how to get the next page.",
        ),
        click.option("--cursor-field", help="HTTP cursor pagination: path of the next cursor."),
        click.option(
            "--cursor-param", help="HTTP cursor pagination: query parameter to send it in."
        ),
        click.option("--page-param", default="page", show_default=True),
        click.option(
            "--auth-env", help="HTTP: environment variable holding the Authorization header."
        ),
        click.option("--delimiter", help="CSV field delimiter (default: detected)."),
        click.option("--quote", help="CSV quote character."),
        click.option("--encoding", help="CSV encoding: utf-8 (default), utf-16, latin-1."),
        click.option("--no-header", is_flag=True, help="The CSV has no header row."),
    ]
    for option in reversed(options):
        f = option(f)
    return f


def build_source(location: str | None, opts: dict[str, Any]) -> Any:
    """A file path, an http(s) URL, or --sql/--duckdb: the source to read."""
    if opts.get("sql"):
        if not opts.get("db_url"):
            raise UserError("--sql needs --db URL (e.g. postgresql://user@host/db)")
        from mlscale.data.sources.sql import SqlSource

        return SqlSource(opts["db_url"], opts["sql"])
    if opts.get("duckdb_query"):
        from mlscale.data.sources.duckdb_query import DuckDBSource

        return DuckDBSource(opts["duckdb_query"], database=opts.get("db_url"))
    if not location:
        raise UserError("name a file, folder or URL to read, or pass --sql or --duckdb")
    if location.startswith(("http://", "https://")):
        from mlscale.data.sources.http import HttpSource

        return HttpSource(
            url=location,
            records=opts.get("records"),
            pagination=opts.get("pagination") or "none",
            cursor_field=opts.get("cursor_field"),
            cursor_param=opts.get("cursor_param") or "cursor",
            page_param=opts.get("page_param") or "page",
            auth_header_env=opts.get("auth_env"),
        )
    return location


def reader_options(opts: dict[str, Any]) -> dict[str, Any]:
    out = {k: opts[k] for k in ("delimiter", "quote", "encoding") if opts.get(k)}
    if opts.get("no_header"):
        out["header"] = False
    return out


_SOURCE_KEYS = (
    "sql", "db_url", "duckdb_query", "records", "pagination", "cursor_field", "cursor_param",
    "page_param", "auth_env", "delimiter", "quote", "encoding", "no_header",
)  # fmt: skip


@click.command()
@click.argument("source", required=False)
@click.option("--name", "-n", required=True, help="Dataset name; a new version if content changed.")
@click.option("--contract", "-c", type=click.Path(dir_okay=False), help="A data contract (YAML).")
@click.option("--append", is_flag=True, help="Add the rows to the latest version's parts.")
@click.option("--partition-by", help="A timestamp column: store parts per day of it.")
@click.option(
    "--max-bad-fraction", type=float, help="Fail (no version) above this share of bad rows."
)
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@source_options
@click.pass_context
def ingest(ctx: click.Context, source: str | None, name: str, contract: str | None, append: bool,
           partition_by: str | None, max_bad_fraction: float | None, as_json: bool,
           **opts: Any) -> None:  # fmt: skip
    """Read SOURCE (a CSV, JSON Lines or Parquet file, a folder, a URL, or --sql) into a dataset."""
    ws = _ws(ctx)
    src = build_source(source, opts)
    label = source or opts.get("sql") or opts.get("duckdb_query")
    with progress(f"ingesting {label}") as update:
        result = ws.ingest(
            src, name=name, contract=contract, mode="append" if append else "new",
            partition_by=partition_by,
            max_bad_fraction=max_bad_fraction, reader_options=reader_options(opts),
            on_progress=lambda done, _bad: update(done),
        )  # fmt: skip
    d = result.dataset
    summary = {
        "dataset": d.ref,
        "created": result.created,
        "rows_read": result.rows_read,
        "rows_accepted": result.rows_accepted,
        "rows_quarantined": result.rows_quarantined,
        "bytes_read": result.bytes_read,
        "bytes_stored": result.bytes_stored,
        "reasons": result.reasons,
        "cleaning": result.report.steps,
        "evolution": result.report.evolution,
        "lineage": d.source,
        "columns": d.schema["columns"],
    }
    if as_json:
        print_json(summary)
        return
    state = "new version" if result.created else "unchanged: identical content already stored as"
    console.print(
        f"{state} [bold]{d.ref}[/bold]"
        + (f" (appended to {d.source.get('parent')})" if append else "")
    )
    console.print(
        f"rows read {result.rows_read:,} = accepted {result.rows_accepted:,} "
        f"+ quarantined {result.rows_quarantined:,}"
    )
    console.print(
        f"bytes read {_mib(result.bytes_read)}, stored {_mib(result.bytes_stored)} (zstd Parquet)"
    )
    for reason, count in list(result.reasons.items())[:5]:
        console.print(f"  quarantined {count:,}: {reason}")
    if result.rows_quarantined:
        console.print(f"  see them with: mlscale data quarantine {d.ref}")
    for step, count in result.report.steps.items():
        console.print(f"  cleaning: {step}: {count:,} value(s)")
    for line in result.report.evolution:
        console.print(f"  schema: {line}")
    _profile_table(result.profile, d.schema["columns"])


def _profile_table(p: Any, columns: list[dict[str, Any]]) -> None:
    table(None, ["column", "type", "missing", "min", "max", "mean", "top"], [
        [c["name"], c["type"], p.columns[c["name"]]["missing"], p.display_value(c["name"], "min"),
         p.display_value(c["name"], "max"), p.display_value(c["name"], "mean"),
         _top(p.columns[c["name"]])] for c in columns
    ])  # fmt: skip


def _top(stats: dict[str, Any]) -> str:
    if stats["kind"] != "categorical":
        return ""
    if not stats["distinct_exact"]:
        return f"{stats['distinct']:,}+ distinct"
    return ", ".join(list(stats["categories"])[:3]) + (" ..." if stats["distinct"] > 3 else "")


@click.group()
def schema() -> None:
    """Data contracts: draft one from data, then edit it."""


@schema.command("infer")
@click.argument("source", required=False)
@click.option("--output", "-o", required=True, type=click.Path(dir_okay=False, path_type=Path))
@source_options
def schema_infer(source: str | None, output: Path, **opts: Any) -> None:
    """Write an editable contract (YAML) for SOURCE, inferred from a sample of its rows."""
    from mlscale.data.contract_io import write_contract
    from mlscale.data.pipeline import Pipeline
    from mlscale.data.sources.duck import open_file

    src = build_source(source, opts)
    if isinstance(src, str):
        src = open_file(src, **reader_options(opts))
    with Pipeline(src) as pipeline:
        contract = pipeline.contract
        rows = pipeline.sample.num_rows
    write_contract(contract, output)
    console.print(f"wrote {output}: {len(contract.columns)} columns inferred from {rows:,} rows")
    console.print(
        f"edit it, then: mlscale ingest {source or '...'} --name NAME --contract {output}"
    )


@click.group()
def data() -> None:
    """Datasets: versions, lineage, profiles, quarantined rows."""


@data.command("list")
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def data_list(ctx: click.Context, as_json: bool) -> None:
    """Every dataset with its latest version."""
    latest = _ws(ctx).datasets()
    if as_json:
        print_json([_dataset_dict(d) for d in latest])
        return
    if not latest:
        console.print("no datasets yet: mlscale ingest FILE --name NAME")
        return
    table(None, ["dataset", "rows", "quarantined", "columns", "source", "created"], [
        [d.ref, f"{d.num_rows:,}", f"{d.num_quarantined:,}", len(d.schema["columns"]),
         d.source.get("uri"), d.created_at.strftime("%Y-%m-%d %H:%M")] for d in latest
    ])  # fmt: skip


@data.command("versions")
@click.argument("name")
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def data_versions(ctx: click.Context, name: str, as_json: bool) -> None:
    """Every version of dataset NAME, with its lineage."""
    ws = _ws(ctx)
    versions = ws.metadata.list_dataset_versions(name)
    if not versions:
        ws.dataset(f"{name}@latest")  # raises the not-found error with what exists
    if as_json:
        print_json([_dataset_dict(d) for d in versions])
        return
    table(None, ["version", "rows", "quarantined", "mode", "parent", "source", "created"], [
        [d.ref, f"{d.num_rows:,}", f"{d.num_quarantined:,}", d.source.get("mode", "new"),
         d.source.get("parent") or "-", d.source.get("uri"),
         d.created_at.strftime("%Y-%m-%d %H:%M")] for d in versions
    ])  # fmt: skip


def _dataset_dict(d: Any) -> dict[str, Any]:
    return {"ref": d.ref, "name": d.name, "version": d.version, "rows": d.num_rows,
            "quarantined": d.num_quarantined, "content_hash": d.content_hash,
            "schema": d.schema, "lineage": d.source, "parts": d.parts,
            "created_at": d.created_at.isoformat()}  # fmt: skip


@data.command("show")
@click.argument("ref")
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def data_show(ctx: click.Context, ref: str, as_json: bool) -> None:
    """One dataset version: lineage, schema and profile."""
    from mlscale.data.datasets import read_profile

    ws = _ws(ctx)
    d = ws.dataset(ref)
    if as_json:
        print_json(_dataset_dict(d) | {"profile": read_profile(ws, d.profile_sha).columns})
        return
    lineage = d.source
    console.print(f"[bold]{d.ref}[/bold]: {d.num_rows:,} rows, {d.num_quarantined:,} quarantined, "
                  f"{len(d.parts)} part(s); content {d.content_hash[:12]}")  # fmt: skip
    console.print(f"source: {lineage.get('uri')} ({lineage.get('format')}), "
                  f"{lineage.get('mode', 'new')}" + (f" on {lineage['parent']}" if lineage.get("parent") else ""))  # fmt: skip
    if lineage.get("contract_hash"):
        console.print(f"contract: {lineage['contract_hash'][:12]}")
    _profile_table(read_profile(ws, d.profile_sha), d.schema["columns"])


@data.command("diff")
@click.argument("a")
@click.argument("b")
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def data_diff(ctx: click.Context, a: str, b: str, as_json: bool) -> None:
    """What changed from version A to version B: schema, rows, statistics."""
    from mlscale.data.datasets import read_profile
    from mlscale.data.diff import diff_versions

    ws = _ws(ctx)
    va, vb = ws.dataset(a), ws.dataset(b)
    result = diff_versions(
        va, vb, read_profile(ws, va.profile_sha), read_profile(ws, vb.profile_sha)
    )
    if as_json:
        print_json(result.to_dict())
        return
    console.print(f"{result.a} -> {result.b}: rows {result.rows[0]:,} -> {result.rows[1]:,}, "
                  f"quarantined {result.quarantined[0]:,} -> {result.quarantined[1]:,}")  # fmt: skip
    for n, t in result.added:
        console.print(f"  + column {n} ({t})")
    for n, t in result.removed:
        console.print(f"  - column {n} ({t})")
    for n, t1, t2 in result.retyped:
        console.print(f"  ~ column {n}: {t1} -> {t2}")

    def fmt(v: Any) -> str:
        return "" if v is None else f"{v:.4g}" if isinstance(v, float) else str(v)

    table(None, ["column", "missing", "mean", "std", "min", "max", "distinct"], [
        [c.column] + [f"{fmt(c.before[k])} -> {fmt(c.after[k])}" if c.before[k] != c.after[k]
                      else fmt(c.before[k])
                      for k in ("missing_rate", "mean", "std", "min", "max", "distinct")]
        for c in result.columns
    ])  # fmt: skip


@data.command("quarantine")
@click.argument("ref")
@click.option("--limit", default=20, show_default=True, help="Rows to show (0: all).")
@click.option(
    "--output", "-o", type=click.Path(dir_okay=False, path_type=Path), help="Save as Parquet."
)
@click.pass_context
def data_quarantine(ctx: click.Context, ref: str, limit: int, output: Path | None) -> None:
    """The rows of a version that were set aside, with their original values and reasons."""
    import pyarrow.parquet as pq

    from mlscale.data.datasets import read_quarantine

    ws = _ws(ctx)
    d = ws.dataset(ref)
    rows = read_quarantine(ws, d)
    if rows is None or rows.num_rows == 0:
        console.print(f"{d.ref} has no quarantined rows")
        return
    if output is not None:
        pq.write_table(rows, output)
        console.print(f"wrote {rows.num_rows:,} rows to {output}")
        return
    shown = rows if limit == 0 else rows.slice(0, limit)
    data_cols = [c for c in rows.column_names if not c.startswith("_")]
    table(f"{rows.num_rows:,} quarantined rows of {d.ref}", ["row", "line", "reason", "values"], [
        [r["_row"], r["_line"], r["_reason"],
         r["_text"] if r["_text"] is not None else ", ".join(f"{c}={r[c]}" for c in data_cols)]
        for r in shown.to_pylist()
    ])  # fmt: skip


@data.command("profile")
@click.argument("ref")
@click.option("--html", "html_path", type=click.Path(dir_okay=False, path_type=Path), required=True)
@click.pass_context
def data_profile(ctx: click.Context, ref: str, html_path: Path) -> None:
    """Write the profile of a dataset version as an HTML page with plots."""
    from mlscale.data.datasets import read_profile
    from mlscale.data.report import write_html

    ws = _ws(ctx)
    d = ws.dataset(ref)
    write_html(read_profile(ws, d.profile_sha), html_path, title=f"{d.ref}",
               subtitle=f"{d.num_rows:,} rows from {d.source.get('uri')}")  # fmt: skip
    console.print(f"wrote {html_path}")


ALL = [ingest, schema, data]
