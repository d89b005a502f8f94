"""``ingest``, ``jobs`` and ``worker``: load files into the lake and follow the jobs."""

from __future__ import annotations

import signal
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from datalibrary.cli.output import (
    JsonOption,
    console,
    db_session,
    emit,
    fail,
    handle_errors,
    operator,
    settings,
    table,
)
from datalibrary.db import Database

if TYPE_CHECKING:
    from datalibrary.ingest.models import IngestJob

OPERATOR = operator()
jobs_app = typer.Typer(help="Follow ingestion jobs: list, show, retry, cancel.", no_args_is_help=True)
JOB_COLUMNS = ["id", "table", "state", "source_name", "rows_written", "created_at"]


def job_json(job: IngestJob) -> dict[str, Any]:
    """A job as the API shows it (``ingest.schemas.JobOut``)."""
    from datalibrary.ingest.schemas import JobOut

    return JobOut.of(job).model_dump(mode="json")


def _policy_name(database: Database, policy: str) -> str:
    """A stored policy's name, or a YAML file to store first (same content again is a no-op)."""
    path = Path(policy)
    if path.suffix.lower() in (".yaml", ".yml") and path.is_file():
        from datalibrary.privacy.store import save_policy

        with database.session() as session:
            stored, _ = save_policy(session, OPERATOR, path.read_text())
        return stored.name
    return policy


def register(app: typer.Typer) -> None:
    @app.command()
    def ingest(
        paths: Annotated[list[Path], typer.Argument(help="Files to ingest.", exists=True, dir_okay=False)],
        table_name: Annotated[
            str,
            typer.Option(
                "--table",
                help="Target table NAMESPACE.TABLE, or NAMESPACE.* for a table per file "
                "(archive member, FHIR resource type).",
            ),
        ],
        policy: Annotated[str, typer.Option(help="Policy name, or a policy YAML file to store and use.")],
        mode: Annotated[str, typer.Option(help="append or overwrite.")] = "append",
        format: Annotated[
            str | None, typer.Option(help="File format (default: told from the content).")
        ] = None,
        define: Annotated[
            Path | None,
            typer.Option(
                "--define", help="A define.xml whose labels the SAS files get.", exists=True, dir_okay=False
            ),
        ] = None,
        manifest_file: Annotated[
            Path | None,
            typer.Option(
                "--manifest",
                help="A delivery manifest (JSON or CSV: name, sha256, rows) the files must match.",
                exists=True,
                dir_okay=False,
            ),
        ] = None,
        queue: Annotated[bool, typer.Option("--queue", help="Only queue the jobs for workers.")] = False,
        wait_timeout: Annotated[
            float,
            typer.Option(
                "--wait-timeout",
                min=1,
                help="Seconds to wait for jobs a server's worker took over before giving up.",
            ),
        ] = 3600,
        as_json: JsonOption = False,
    ) -> None:
        """Ingest files into a lake table through the full pipeline (one snapshot per file)."""
        from datalibrary.ingest.jobs import get_job
        from datalibrary.ingest.submit import submit_file
        from datalibrary.ingest.worker import worker_name

        config = settings()
        database = Database(config.connect_url())
        try:
            with handle_errors():
                policy_name = _policy_name(database, policy)
                job_ids = []
                for path in paths:
                    with database.session() as session:
                        job = submit_file(
                            session,
                            OPERATOR,
                            config,
                            path,
                            table=table_name,
                            policy=policy_name,
                            mode=mode,
                            format=format,
                            define=define,
                            manifest_file=manifest_file,
                        )
                        job_ids.append(job.id)
                if not queue:
                    name = worker_name("cli")
                    for job_id, path in zip(job_ids, paths, strict=True):
                        _run_with_progress(config, database, name, job_id, path, show=not as_json)
                    job_ids = _whole_delivery(config, database, name, job_ids, wait_timeout)
                with database.session() as session:
                    results = [job_json(get_job(session, OPERATOR, job_id)) for job_id in job_ids]
        finally:
            database.dispose()

        def human(rows: list[dict]) -> None:  # type: ignore[type-arg]
            for row in rows:
                colour = {"succeeded": "green", "duplicate": "yellow", "queued": "cyan"}.get(
                    row["state"], "red"
                )
                line = f"[{colour}]{row['state']}[/{colour}] {row['source_name']} -> {row['table']}"
                if row["children"]:
                    line = f"[cyan]unpacked[/cyan] {row['source_name']} into {len(row['children'])} job(s)"
                elif row["state"] == "succeeded":
                    line += f" ({row['rows_written']} rows, snapshot {row['snapshot_id']})"
                if row["reason"]:
                    line += f": {row['reason'].get('message')}"
                console.print(line, highlight=False)

        emit(results, as_json, human)
        states = {r["state"] for r in results}
        if "failed" in states:
            raise typer.Exit(1)
        if "quarantined" in states:
            raise typer.Exit(2)

    @app.command()
    def worker(
        once: Annotated[bool, typer.Option("--once", help="Run the queued jobs, then exit.")] = False,
        concurrency: Annotated[int, typer.Option(min=1, help="Jobs run at the same time.")] = 1,
        as_json: JsonOption = False,
    ) -> None:
        """Run ingestion jobs claimed from the database (scale-out worker process)."""
        from datalibrary.ingest.worker import WorkerPool, run_pending

        config = settings()
        database = Database(config.connect_url())
        try:
            with handle_errors():
                if once:
                    done = run_pending(config, database)
                    emit(
                        [{"job": j, "state": s} for j, s in done],
                        as_json,
                        lambda d: table(d, ["job", "state"]),
                    )
                    return
                pool = WorkerPool(config, database, concurrency)
                stop = threading.Event()
                signal.signal(signal.SIGTERM, lambda *_: stop.set())
                pool.start()
                if not as_json:
                    console.print(f"worker running {concurrency} job(s) at a time (Ctrl+C to stop)")
                try:
                    while not stop.wait(1):
                        pass
                except KeyboardInterrupt:
                    pass
                pool.stop()
                emit({"stopped": True}, as_json, lambda _: console.print("worker stopped"))
        finally:
            database.dispose()

    @jobs_app.command("list")
    def jobs_list(
        state: Annotated[str | None, typer.Option(help="Only jobs in this state (e.g. quarantined).")] = None,
        table_name: Annotated[
            str | None, typer.Option("--table", help="Only jobs of NAMESPACE.TABLE.")
        ] = None,
        by: Annotated[
            str | None, typer.Option("--by", help="Only jobs submitted by this user (or system:landing).")
        ] = None,
        limit: Annotated[int, typer.Option(min=1, max=1000)] = 50,
        as_json: JsonOption = False,
    ) -> None:
        """List ingestion jobs, newest first (quarantined ones show their reason)."""
        from datalibrary.ingest.jobs import list_jobs

        with db_session() as session:
            found = list_jobs(session, OPERATOR, state=state, table=table_name, created_by=by, limit=limit)
            rows = [job_json(j) for j in found]

        def human(data: list[dict]) -> None:  # type: ignore[type-arg]
            for row in data:
                row["reason"] = (row["reason"] or {}).get("message", "")
            table(data, [*JOB_COLUMNS, "reason"])

        emit(rows, as_json, human)

    @jobs_app.command("show")
    def jobs_show(job_id: str, as_json: JsonOption = False) -> None:
        """Show one job: state, progress, snapshot, reason."""
        from datalibrary.ingest.jobs import get_job

        with db_session() as session:
            data = job_json(get_job(session, OPERATOR, job_id))
        emit(
            data,
            as_json,
            lambda d: [console.print(f"[bold]{k}[/bold]: {v}", highlight=False) for k, v in d.items()],
        )

    @jobs_app.command("retry")
    def jobs_retry(job_id: str, as_json: JsonOption = False) -> None:
        """Queue a failed job again (a worker or 'datalibrary worker --once' runs it)."""
        from datalibrary.ingest.submit import retry_job

        with db_session() as session:
            data = job_json(retry_job(session, OPERATOR, job_id, settings()))
        emit(data, as_json, lambda d: console.print(f"job {d['id']} queued again"))

    _register_cancel(jobs_app)


def _register_cancel(jobs_app) -> None:  # type: ignore[no-untyped-def]
    @jobs_app.command("cancel")
    def jobs_cancel(job_id: str, as_json: JsonOption = False) -> None:
        """Cancel a queued job, or ask the worker running it to stop (it ends 'cancelled')."""
        from datalibrary.ingest.jobs import cancel_job

        with db_session() as session:
            data = job_json(cancel_job(session, OPERATOR, settings(), job_id))
        emit(data, as_json, lambda d: console.print(f"job {d['id']} is {d['state']}"))

    @jobs_app.command("discard")
    def jobs_discard(job_id: str, as_json: JsonOption = False) -> None:
        """Delete the file a quarantined, cancelled or failed job keeps (the job stays, audited)."""
        from datalibrary.ingest.jobs import discard_file

        with db_session() as session:
            data = job_json(discard_file(session, OPERATOR, job_id))
        emit(data, as_json, lambda d: console.print(f"job {d['id']}: its file is deleted"))


def _whole_delivery(config, database, name, roots: list[str], timeout: float) -> list[str]:  # type: ignore[no-untyped-def]
    """Every job of the delivery (the submitted ones and the jobs they fanned out into), each
    in a final state, whoever ran it: a server's worker may claim some of the CLI's jobs
    between submission and run. Queued jobs nobody took run here; jobs running elsewhere are
    waited for. Deliveries first, then their children, depth first."""
    from datalibrary.ingest.models import FINAL_STATES
    from datalibrary.ingest.worker import run_tree

    deadline = time.monotonic() + timeout
    while True:
        with database.session() as session:
            ordered = _tree(session, roots)
            pending = [j.id for j in ordered if j.state not in FINAL_STATES]
            ids = [j.id for j in ordered]
        if not pending:
            return ids
        for job_id in pending:
            run_tree(config, database, name, job_id)  # claims it only if nobody runs it
        if time.monotonic() > deadline:
            fail(f"jobs still running elsewhere after {timeout:.0f} s: {', '.join(pending)}")
        time.sleep(0.2)


def _tree(session, roots: list[str]) -> list:  # type: ignore[no-untyped-def, type-arg]
    """The jobs of ``roots`` and their fanned-out children, depth first."""
    from datalibrary.ingest.jobs import children_of, get_job

    found: list = []  # type: ignore[type-arg]

    def walk(job) -> None:  # type: ignore[no-untyped-def]
        if job not in found:
            found.append(job)
            for child in children_of(session, job):
                walk(child)

    for root in roots:
        walk(get_job(session, OPERATOR, root))
    return found


def _run_with_progress(config, database, name, job_id, path, show: bool) -> list[tuple[str, str]]:  # type: ignore[no-untyped-def]
    """Run one job here, then the jobs it fanned out into; a Rich progress bar follows the bytes
    read when stdout is a terminal. Returns (job id, state) of every job run."""
    from datalibrary.ingest.worker import run_tree

    size = max(path.stat().st_size, 1)
    if not (show and console.is_terminal):
        return run_tree(config, database, name, job_id)
    from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeRemainingColumn

    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        DownloadColumn(),
        TimeRemainingColumn(),
        console=console,
    ) as progress:
        task = progress.add_task(path.name, total=size)

        def update(values: dict) -> None:  # type: ignore[type-arg]
            if "progress_bytes" in values:
                progress.update(task, completed=min(values["progress_bytes"], size))

        done = run_tree(config, database, name, job_id, on_progress=update)
        progress.update(task, completed=size)
    return done


__all__ = ["fail", "jobs_app", "register"]
