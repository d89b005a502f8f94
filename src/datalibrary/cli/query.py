"""``query``: run SQL on the lake as a user (grants, metering and lineage apply)."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Annotated

import typer

from datalibrary.cli.output import acting_as, console, db_session, fail, settings, table

FORMATS = ("json", "csv", "parquet", "arrow")


def register(app: typer.Typer) -> None:
    @app.command("query")
    def query(
        sql: Annotated[str, typer.Argument(help="A read-only SQL query over NAMESPACE.TABLE names.")],
        as_user: Annotated[
            str | None, typer.Option("--as", help="The user whose grants apply (default: $DATALIBRARY_USER).")
        ] = None,
        project: Annotated[str | None, typer.Option(help="The project charged for the query.")] = None,
        format: Annotated[str, typer.Option(help=f"Output format: {', '.join(FORMATS)}.")] = "table",
        output: Annotated[Path | None, typer.Option(help="Write the result to this file.")] = None,
        as_json: Annotated[bool, typer.Option("--json", help="Same as --format json.")] = False,
    ) -> None:
        """Run a query; prints rows and the bytes scanned."""
        from datalibrary.query.formats import encode
        from datalibrary.query.lake_planner import LakePlanner
        from datalibrary.query.service import run_query

        fmt = "json" if as_json else format
        if fmt not in (*FORMATS, "table"):
            fail(f"--format must be one of {', '.join(FORMATS)}", code=2)
        user = as_user or os.environ.get("DATALIBRARY_USER")
        if not user:
            fail("say whose grants apply: --as USER (or set DATALIBRARY_USER)", code=2)
        config = settings()
        with db_session() as session:
            principal = acting_as(session, user)
            result = run_query(
                session,
                principal,
                sql,
                planner=LakePlanner(config),
                limits=config.query.limits(),
                project=project,
                settings=config,
            )
            routed = None
            if fmt in ("csv", "parquet", "arrow"):  # a download: the airlock policy applies
                from datalibrary.lineage import downloads, exports

                decision, export = downloads.route(
                    session, principal, config, sql=sql,
                    datasets=sorted({str(t.get("name")) for t in result.record.tables if t.get("name")}),
                    table=result.table, format=fmt,
                    runner=exports.QueryRunner(LakePlanner(config), config.query.limits()),
                    project=result.record.project,
                )  # fmt: skip
                routed = downloads.routed_body(decision, export)["detail"] if export else None
            stats = {
                "run_id": result.record.run_id,
                "bytes_scanned": result.record.bytes_scanned,
                "rows": result.record.rows_returned,
                "duration_ms": result.record.duration_ms,
                "truncated": result.truncated,
            }
        if routed:
            console.print(routed, highlight=False)
            raise typer.Exit(3)
        if fmt in ("csv", "parquet", "arrow"):
            data = encode(result.table, fmt)
            if output:
                output.write_bytes(data)
                console.print(f"wrote {stats['rows']} rows to {output}", highlight=False)
            else:
                sys.stdout.buffer.write(data)
            return
        if fmt == "json":  # the API's page (query.schemas.QueryOut), holding every row
            from datalibrary.query.schemas import QueryOut

            text = json.dumps(QueryOut.page(result).model_dump(mode="json"), indent=2)
            if output:
                output.write_text(text)
            else:
                sys.stdout.write(text + "\n")
            return
        table(result.table.slice(0, 100).to_pylist(), result.table.column_names)
        console.print(
            f"{stats['rows']} rows, {stats['bytes_scanned']:,} bytes scanned, {stats['duration_ms']} ms"
            + (" (showing the first 100)" if stats["rows"] > 100 else ""),
            highlight=False,
        )
