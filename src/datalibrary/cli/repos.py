"""``repos`` and ``packages``: project Git repositories and the package mirror's policy."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from datalibrary.cli.output import JsonOption, console, db_session, emit, settings, table
from datalibrary.cli.users import OPERATOR
from datalibrary.errors import InvalidInput, TooLarge
from datalibrary.packages import cran, policy
from datalibrary.packages import service as packages
from datalibrary.packages.models import PackageRule
from datalibrary.packages.schemas import PolicyOut, RPackageOut, RuleOut, UploadedOut, UploadOut
from datalibrary.repos import service
from datalibrary.repos.schemas import RepoOut

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

repos_app = typer.Typer(help="Project Git repositories.", no_args_is_help=True)
packages_app = typer.Typer(
    help="The package mirror's policy, internal uploads, R packages and install log.", no_args_is_help=True
)


@repos_app.command("list")
def list_(project: str, as_json: JsonOption = False) -> None:
    """List a project's repositories."""
    with db_session() as session:
        rows = [
            RepoOut.of(r).model_dump() for r in service.list_repos(session, settings(), OPERATOR, project)
        ]
    emit(rows, as_json, lambda r: table(r, ["name", "archived", "clone_path", "description"]))


@repos_app.command("create")
def create(
    project: str,
    name: str,
    description: Annotated[str, typer.Option(help="What the repository holds.")] = "",
    as_json: JsonOption = False,
) -> None:
    """Create a repository in a project."""
    with db_session() as session:
        data = RepoOut.of(
            service.create_repo(session, settings(), OPERATOR, project, name, description)
        ).model_dump()
    emit(data, as_json, lambda d: console.print(f"created {d['project']}/{d['name']}: {d['clone_path']}"))


@repos_app.command("archive")
def archive(
    project: str,
    name: str,
    undo: Annotated[bool, typer.Option("--undo", help="Make it writable again.")] = False,
    as_json: JsonOption = False,
) -> None:
    """Archive a repository (read-only), or undo it."""
    with db_session() as session:
        data = RepoOut.of(
            service.set_archived(session, settings(), OPERATOR, project, name, not undo)
        ).model_dump()
    emit(data, as_json, lambda d: console.print(f"{d['project']}/{d['name']} archived={d['archived']}"))


@packages_app.command("mode")
def mode(
    new_mode: Annotated[str, typer.Argument(help="open | allowlist")], as_json: JsonOption = False
) -> None:
    """Switch the mirror between 'open' and 'allowlist'."""
    with db_session() as session:
        policy.set_mode(session, OPERATOR, new_mode)
        data = _policy(session)
    emit(data, as_json, lambda d: console.print(f"mode: {d['mode']}"))


def _rule(rule: PackageRule) -> dict[str, object]:
    """A rule as the API shows it (``packages.schemas.RuleOut``)."""
    return RuleOut.of(rule).model_dump(mode="json")


def _policy(session: Session) -> dict[str, Any]:
    """The mode and rules as ``GET /packages/policy`` shows them (``packages.schemas.PolicyOut``)."""
    return PolicyOut.of(policy.mode(session), policy.list_rules(session, OPERATOR)).model_dump(mode="json")


@packages_app.command("rule")
def rule(
    kind: Annotated[str, typer.Argument(help="allow | deny")],
    name: str,
    specifier: Annotated[str, typer.Option(help="Version range, e.g. '>=2,<3'; empty = all.")] = "",
    note: Annotated[str, typer.Option(help="Why (shown in refusals).")] = "",
    ecosystem: Annotated[str, typer.Option(help="python (pip, uv) | r (install.packages).")] = "python",
    as_json: JsonOption = False,
) -> None:
    """Add an allow or deny rule."""
    with db_session() as session:
        data = _rule(policy.add_rule(session, OPERATOR, kind, name, specifier, note, ecosystem))
    emit(
        data,
        as_json,
        lambda d: console.print(
            f"rule {d['id']}: {d['kind']} {d['ecosystem']} {d['name']} {d['specifier']}".strip()
        ),
    )


@packages_app.command("rules")
def rules(as_json: JsonOption = False) -> None:
    """The mode and every allow and deny rule (with the ids rule-delete takes)."""
    with db_session() as session:
        data = _policy(session)

    def show(d: dict[str, object]) -> None:
        console.print(f"mode: {d['mode']}")
        table(d["rules"], ["id", "ecosystem", "kind", "name", "specifier", "note", "created_by"])  # type: ignore[arg-type]

    emit(data, as_json, show)


@packages_app.command("rule-delete")
def rule_delete(
    rule_id: Annotated[int, typer.Argument(help="The rule's id (see 'packages rules').")],
    as_json: JsonOption = False,
) -> None:
    """Delete an allow or deny rule."""
    with db_session() as session:
        data = _rule(policy.delete_rule(session, OPERATOR, rule_id))
    emit(
        data,
        as_json,
        lambda d: console.print(f"deleted rule {d['id']}: {d['kind']} {d['ecosystem']} {d['name']}"),
    )


def _read_upload(path: Path) -> bytes:
    if not path.is_file():
        raise InvalidInput(f"'{path}' is not a file", field="file")
    if path.stat().st_size > packages.MAX_UPLOAD:
        raise TooLarge(f"'{path}': uploads are limited to {packages.MAX_UPLOAD} bytes")
    return path.read_bytes()


@packages_app.command("upload")
def upload(
    file: Annotated[Path, typer.Argument(help="A wheel or sdist built by the company.")],
    as_json: JsonOption = False,
) -> None:
    """Upload a wheel (or sdist) to the internal index: installable in both modes unless denied."""
    with db_session() as session:  # its errors (bad file too) exit with a clear message
        content = _read_upload(file)
        data = UploadOut(**packages.upload(settings(), session, OPERATOR, file.name, content)).model_dump()
    emit(data, as_json, lambda d: console.print(f"uploaded {d['name']} {d['version']} ({d['file']})"))


@packages_app.command("r-upload")
def r_upload(
    file: Annotated[Path, typer.Argument(help="An R source package, NAME_VERSION.tar.gz (R CMD build).")],
    as_json: JsonOption = False,
) -> None:
    """Publish an R source package in the platform's CRAN-like repository."""
    with db_session() as session:
        content = _read_upload(file)
        data = UploadOut(**cran.upload(settings(), session, OPERATOR, file.name, content)).model_dump()
    emit(data, as_json, lambda d: console.print(f"published {d['name']} {d['version']} ({d['file']})"))


@packages_app.command("r-list")
def r_list(as_json: JsonOption = False) -> None:
    """R packages published for install.packages()."""
    rows = [RPackageOut(**p).model_dump() for p in cran.list_packages(settings(), OPERATOR)]
    emit(rows, as_json, lambda r: table(r, ["name", "version", "depends", "imports", "license"]))


@packages_app.command("installs")
def installs(limit: int = 100, as_json: JsonOption = False) -> None:
    """Installs and refusals: user, workspace, package, version."""
    with db_session() as session:
        rows = packages.install_log(session, OPERATOR, limit)
    emit(rows, as_json, lambda r: table(r, ["at", "user", "workspace", "action", "package", "version"]))


@packages_app.command("uploads")
def uploads(limit: int = 100, as_json: JsonOption = False) -> None:
    """Wheels uploaded to the internal index: who, when, which file."""
    with db_session() as session:
        rows = [UploadedOut(**row).model_dump() for row in packages.uploads_log(session, OPERATOR, limit)]
    emit(rows, as_json, lambda r: table(r, ["at", "user", "package", "version", "file", "bytes"]))
