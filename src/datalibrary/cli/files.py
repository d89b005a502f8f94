"""``files``: file collections (DICOM, HL7 aECG, VCF, documents; de-identified or checked on the
way in) — create, classify, approve, add, list, get."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Any

import typer

from datalibrary.cli.ingest import OPERATOR
from datalibrary.cli.output import JsonOption, acting_as, console, db_session, emit, fail, settings, table

app = typer.Typer(
    help="File collections: DICOM (PS3.15 Annex E), HL7 aECG, VCF (restricted tier) and documents "
    "(classified collections), de-identified or checked, stored and indexed.",
    no_args_is_help=True,
)
FILE_COLUMNS = [
    "path",
    "version",
    "media_type",
    "modality",
    "body_part",
    "acquisition_date",
    "subject",
    "size",
]
AsUser = Annotated[
    str | None, typer.Option("--as", help="The user whose grants apply (default: $DATALIBRARY_USER).")
]


def _user(session: Any, as_user: str | None):  # type: ignore[no-untyped-def]
    user = as_user or os.environ.get("DATALIBRARY_USER")
    if not user:
        fail("say whose grants apply: --as USER (or set DATALIBRARY_USER)", code=2)
    return acting_as(session, user)


@app.command("create")
def create(
    name: Annotated[str, typer.Argument(help="NAMESPACE.COLLECTION")],
    policy: Annotated[
        str, typer.Option(help="The study's tabular policy (subject pseudonym, dates).")
    ] = "sdtm",
    description: Annotated[str, typer.Option(help="What the collection holds.")] = "",
    subject_template: Annotated[
        str, typer.Option(help="How PatientID becomes the study's subject id, e.g. 'STUDY1-{PatientID}'.")
    ] = "{PatientID}",
    allow_private: Annotated[
        list[str] | None, typer.Option(help="A private tag to keep: 'gggg,XXee@CREATOR' (repeatable).")
    ] = None,
    reviewed: Annotated[
        list[str] | None,
        typer.Option(
            help="MODALITY_OR_SOP_CLASS=REASON: files known to carry no burned-in text (repeatable)."
        ),
    ] = None,
    classification: Annotated[
        str,
        typer.Option(
            help="What the collection holds, e.g. 'protocol documents, no patient data' (documents need it)."
        ),
    ] = "",
    tier: Annotated[
        str, typer.Option(help="standard, or restricted for genomic data (VCF): grants need an approval.")
    ] = "standard",
    as_json: JsonOption = False,
) -> None:
    """Create a file collection and its index table."""
    from datalibrary.files import service

    decisions = {}
    for item in reviewed or []:
        key, eq, reason = item.partition("=")
        if not eq:
            fail(f"--reviewed {item!r}: write MODALITY=REASON", code=2)
        decisions[key.strip()] = reason.strip()
    with db_session() as session:
        collection = service.create_collection(
            session, OPERATOR, settings(), name, policy=policy, description=description,
            subject_template=subject_template, private_allow=allow_private or [],
            burned_in_reviewed=decisions, classification=classification, tier=tier,
        )  # fmt: skip
        data = service.describe(collection)
    emit(data, as_json, lambda d: console.print(f"collection {d['name']} created (policy {d['policy']})"))


@app.command("classify")
def classify(
    name: Annotated[str, typer.Argument(help="NAMESPACE.COLLECTION")],
    classification: Annotated[
        str, typer.Argument(help="What it holds, e.g. 'protocol documents, no patient data' ('' clears it).")
    ],
    as_json: JsonOption = False,
) -> None:
    """State what a collection holds (documents are quarantined until it is classified); audited."""
    from datalibrary.files import service

    with db_session() as session:
        data = service.describe(service.classify_collection(session, OPERATOR, name, classification))
    emit(data, as_json, lambda d: console.print(f"{d['name']} classified: {d['classification'] or '(none)'}"))


@app.command("approve")
def approve(
    name: Annotated[str, typer.Argument(help="NAMESPACE.COLLECTION (a restricted collection)")],
    grant_id: Annotated[int, typer.Argument(help="A live grant that names the collection itself.")],
    reason: Annotated[str, typer.Option(help="Why this grant may read restricted (genomic) data.")],
    as_json: JsonOption = False,
) -> None:
    """Approve a grant on a restricted collection for its tier (audited)."""
    from datalibrary.files import service

    with db_session() as session:
        data = service.approve_grant(session, OPERATOR, name, grant_id, reason)
    emit(data, as_json, lambda d: console.print(f"grant {d['grant_id']} approved for {name}"))


@app.command("list-collections")
def list_collections(as_json: JsonOption = False) -> None:
    """List every file collection (as the operator)."""
    from datalibrary.files import service

    with db_session() as session:
        rows = service.list_collections(session, OPERATOR, lambda ns, name: None)
    emit(rows, as_json, lambda d: table(d, ["name", "owner", "policy", "created_at"]))


@app.command("add")
def add(
    name: Annotated[str, typer.Argument(help="NAMESPACE.COLLECTION")],
    paths: Annotated[
        list[Path],
        typer.Argument(exists=True, help="DICOM, aECG XML, VCF, PDF or text files, zips, directories."),
    ],
    as_json: JsonOption = False,
) -> None:
    """De-identify, store and index files (a zip fans out; failures are quarantined with the reason)."""
    from datalibrary.files import service
    from datalibrary.files.schemas import FilesAddedOut

    uploads: list[tuple[str, Path]] = []  # read one at a time by the service
    for path in paths:
        if path.is_dir():
            for found in sorted(p for p in path.rglob("*") if p.is_file() and not p.name.startswith(".")):
                uploads.append((found.relative_to(path).as_posix(), found))
        else:
            uploads.append((path.name, path))
    with db_session() as session:
        report = service.ingest_files(session, OPERATOR, settings(), name, uploads)
    data = FilesAddedOut.of(report).model_dump(mode="json")

    def human(d: dict[str, Any]) -> None:
        console.print(
            f"{len(d['added'])} added, {len(d['unchanged'])} unchanged, {len(d['quarantined'])} quarantined"
        )
        for q in d["quarantined"]:
            console.print(f"  quarantined {q['path']}: {q['reason']}", highlight=False)

    emit(data, as_json, human)
    if report.quarantined and not report.added and not report.unchanged:
        raise typer.Exit(1)


@app.command("list")
def list_files(
    name: Annotated[str, typer.Argument(help="NAMESPACE.COLLECTION")],
    as_user: AsUser = None,
    as_json: JsonOption = False,
) -> None:
    """Files the user's grant shows, with their metadata."""
    from datalibrary.files import service

    with db_session() as session:
        principal = _user(session, as_user)
        rows = service.list_files(session, principal, settings(), name, service.grants_of(session, principal))
    emit(rows, as_json, lambda d: table(d, FILE_COLUMNS))


@app.command("get")
def get(
    name: Annotated[str, typer.Argument(help="NAMESPACE.COLLECTION")],
    path: Annotated[str, typer.Argument(help="The file's path in the collection.")],
    output: Annotated[Path, typer.Option(help="Where to write the file.")],
    version: Annotated[int | None, typer.Option(help="A version (default: the newest).")] = None,
    as_user: AsUser = None,
    as_json: JsonOption = False,
) -> None:
    """Download one de-identified file (audited) under the user's grants."""
    from datalibrary.files import service
    from datalibrary.lineage import events as lineage

    config = settings()
    with db_session() as session:
        principal = _user(session, as_user)
        meta, chunks = service.read_file(
            session,
            principal,
            config,
            name,
            path,
            service.grants_of(session, principal),
            version=version,
            via="cli",
        )
        lineage.trace_file_read(session, principal, config, name, meta["path"], meta["size"])
        partial = output.with_name(f".{output.name}.part")
        try:
            with partial.open("wb") as handle:
                for chunk in chunks:
                    handle.write(chunk)
            partial.replace(output)  # an altered object leaves no output file
        finally:
            partial.unlink(missing_ok=True)
    meta = {**meta, "output": str(output)}
    emit(
        meta, as_json, lambda d: console.print(f"{d['path']} v{d['version']}: {d['size']} bytes -> {output}")
    )


@app.command("actions")
def actions(
    name: Annotated[str, typer.Argument(help="NAMESPACE.COLLECTION")],
    path: Annotated[str, typer.Argument(help="The file's path in the collection.")],
    version: Annotated[int | None, typer.Option(help="A version (default: the newest).")] = None,
    as_user: AsUser = None,
    as_json: JsonOption = False,
) -> None:
    """What the de-identification profile did to each attribute of a file (D/Z/X/K/C/U; no values)."""
    from datalibrary.files import service, views

    with db_session() as session:
        principal = _user(session, as_user)
        found = views.attribute_actions(
            session, principal, settings(), name, path, service.grants_of(session, principal), version=version
        )

    def human(d: dict[str, Any]) -> None:
        counts = ", ".join(f"{k} {v}" for k, v in sorted(d["counts"].items()))
        console.print(f"{d['path']} v{d['version']} ({d['profile']}): {counts or 'not recorded'}")
        table(d["attributes"], ["attribute", "keyword", "table", "action"])

    emit(found, as_json, human)


@app.command("thumbnail")
def thumbnail(
    name: Annotated[str, typer.Argument(help="NAMESPACE.COLLECTION")],
    path: Annotated[str, typer.Argument(help="The file's path in the collection.")],
    output: Annotated[Path, typer.Option(help="Where to write the PNG.")],
    version: Annotated[int | None, typer.Option(help="A version (default: the newest).")] = None,
    as_user: AsUser = None,
    as_json: JsonOption = False,
) -> None:
    """A small PNG of an image, where no burned-in text can be (audited and metered)."""
    from datalibrary.files import service, views

    with db_session() as session:
        principal = _user(session, as_user)
        meta, png = views.thumbnail(
            session, principal, settings(), name, path, service.grants_of(session, principal),
            version=version, via="cli",
        )  # fmt: skip
    output.write_bytes(png)
    found = {"path": meta["path"], "version": meta["version"], "bytes": len(png), "output": str(output)}
    emit(found, as_json, lambda d: console.print(f"{d['path']}: {d['bytes']} bytes -> {d['output']}"))


@app.command("quarantine")
def quarantine(
    name: Annotated[str, typer.Argument(help="NAMESPACE.COLLECTION")], as_json: JsonOption = False
) -> None:
    """Files kept out of the collection, with the reason."""
    from datalibrary.files import service

    with db_session() as session:
        rows = service.quarantined(session, OPERATOR, name)
    emit(rows, as_json, lambda d: table(d, ["id", "path", "reason", "size", "created_at"]))
