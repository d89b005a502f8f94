"""``backup``, ``backups`` and ``restore``: whole-installation backups (docs/how-to/backup.md)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from datalibrary.cli.output import JsonOption, console, emit, fail, handle_errors, settings, table

PassphraseOption = Annotated[
    Path | None,
    typer.Option(
        "--passphrase-file",
        help="File holding the passphrase that seals (backup) or opens (restore) the keys.",
    ),
]


def _passphrase(path: Path | None) -> str | None:
    if path is None:
        return None
    try:
        return path.read_text().strip()
    except OSError as exc:
        fail(f"cannot read {path}: {exc.strerror}", code=2)
        raise  # unreachable


def register(app: typer.Typer) -> None:
    @app.command("backup")
    def backup(
        output: Annotated[
            Path | None, typer.Option("--output", help="Directory to write into (default: backup.directory).")
        ] = None,
        passphrase_file: PassphraseOption = None,
        lake: Annotated[
            str | None, typer.Option("--lake", help="'copy' the warehouse files, or 'reference' S3 versions.")
        ] = None,
        as_json: JsonOption = False,
    ) -> None:
        """Back up the database, the lake, Git repositories and workspace homes (keys only sealed)."""
        from datalibrary.backup.service import create_backup
        from datalibrary.cli.users import OPERATOR
        from datalibrary.db import Database

        config = settings()
        database = Database(config.connect_url())
        try:
            with handle_errors():
                manifest = create_backup(
                    config,
                    database,
                    OPERATOR,
                    passphrase=_passphrase(passphrase_file),
                    directory=output,
                    lake_mode=lake,
                )
        finally:
            database.dispose()

        def human(data: dict) -> None:  # type: ignore[type-arg]
            rows = sum(t["rows"] for t in data["tables"])
            console.print(
                f"Backup [bold]{data['id']}[/bold] written to {data['path']}\n"
                f"  database: {data['database']['kind']}  lake: {data['lake']['mode']}  "
                f"tables: {len(data['tables'])} ({rows} rows)  folders: {', '.join(data['folders']) or '-'}\n"
                f"  keys: {data['keys']['included']}",
                highlight=False,
            )

        emit(
            {k: v for k, v in manifest.items() if k != "lake"} | {"lake": _lake_summary(manifest)},
            as_json,
            human,
        )

    @app.command("backups")
    def backups(
        directory: Annotated[Path | None, typer.Option("--directory", help="Where to look.")] = None,
        as_json: JsonOption = False,
    ) -> None:
        """List the complete backups in the backup directory, newest first."""
        from datalibrary.backup.schemas import BackupOut
        from datalibrary.backup.service import list_backups
        from datalibrary.cli.users import OPERATOR

        with handle_errors():
            summaries = list_backups(settings(), OPERATOR, directory)
        found = [BackupOut.of(b).model_dump(mode="json") for b in summaries]
        emit(
            found,
            as_json,
            lambda rows: table(
                rows, ["id", "created_at", "database", "lake", "tables", "rows", "keys", "size_bytes"]
            ),
        )

    @app.command("restore")
    def restore(
        source: Annotated[Path, typer.Argument(help="The backup directory.")],
        passphrase_file: PassphraseOption = None,
        as_json: JsonOption = False,
    ) -> None:
        """Restore a backup into a new, empty installation and verify it (tables, audit chain)."""
        from datalibrary.backup.restore import restore_backup

        with handle_errors():
            report = restore_backup(settings(), source, passphrase=_passphrase(passphrase_file))

        def human(data: dict) -> None:  # type: ignore[type-arg]
            console.print(f"Restored {data['backup']} into {data['restored_to']}", highlight=False)
            for item in data["tables"]:
                console.print(f"  {item['table']}: {item['rows']} rows", highlight=False)
            console.print(f"  audit chain: {data['audit']['entries']} entries, ok={data['audit']['ok']}")
            for problem in data["problems"]:
                console.print(f"[red]problem:[/red] {problem}", highlight=False)

        emit(report, as_json, human)
        if not report["ok"]:
            raise typer.Exit(1)


def _lake_summary(manifest: dict) -> dict:  # type: ignore[type-arg]
    lake = dict(manifest["lake"])
    files = lake.pop("files", None)
    if files is not None:
        lake["files"] = len(files)
        lake["bytes"] = sum(f["size"] for f in files)
    return lake
