"""Docs are tested: commands, settings, permissions and problem types must be documented,
and domain packages must not import the front ends."""

from __future__ import annotations

import ast
from pathlib import Path

from pydantic import BaseModel

from datalibrary.api.problems import HTTP_SLUGS
from datalibrary.auth.permissions import ROLE_PERMISSIONS, Permission
from datalibrary.config import Settings
from datalibrary.errors import ALL_ERRORS
from tests.test_cli import all_commands

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
PACKAGE = ROOT / "src" / "datalibrary"
FRONT_ENDS = ("api", "web", "cli")


def read(name: str) -> str:
    return (DOCS / name).read_text()


def setting_names(model: type[BaseModel], prefix: str = "") -> list[str]:
    names = []
    for name, field in model.model_fields.items():
        annotation = field.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            names += setting_names(annotation, f"{prefix}{name}.")
        else:
            names.append(prefix + name)
    return names


def test_every_cli_command_is_documented() -> None:
    text = read("reference/cli.md")
    for name, _ in all_commands():
        assert f"`datalibrary {name}" in text, f"'datalibrary {name}' is missing from docs/reference/cli.md"


def test_every_setting_is_documented() -> None:
    text = read("reference/configuration.md")
    for name in setting_names(Settings):
        assert f"| `{name}` |" in text, f"setting '{name}' is missing from docs/reference/configuration.md"


def test_every_permission_is_documented_with_its_roles() -> None:
    text = read("reference/permissions.md")
    roles = list(ROLE_PERMISSIONS)
    for permission in Permission:
        line = next((ln for ln in text.splitlines() if ln.startswith(f"| `{permission.value}` |")), None)
        assert line, f"permission '{permission.value}' is missing from docs/reference/permissions.md"
        cells = [c.strip() for c in line.split("|")[2 : 2 + len(roles)]]
        documented = {role for role, cell in zip(roles, cells, strict=True) if cell == "✓"}
        actual = {role for role in roles if permission in ROLE_PERMISSIONS[role]}
        assert documented == actual, f"roles of '{permission.value}' differ from the docs"


def test_the_tutorial_and_the_reference_name_every_console_section() -> None:
    from datalibrary.web.sections import SECTIONS

    tutorial = read("tutorial/getting-started.md")
    missing = [s.title for s in SECTIONS if s.title not in tutorial]
    assert not missing, f"the tutorial does not name the console sections {missing}"
    pages = read("reference/console.md")
    for section in SECTIONS:
        assert f"| {section.title} | `/{section.slug}" in pages, f"reference/console.md lacks {section.title}"
        assert f"`{section.permission.value}`" in pages.split(f"| {section.title} |")[1].split("\n")[0]


def test_every_problem_type_is_documented() -> None:
    text = read("reference/problems.md")
    for slug in {e.slug for e in ALL_ERRORS} | set(HTTP_SLUGS.values()):
        assert f"`/problems/{slug}`" in text, f"problem '{slug}' is missing from docs/reference/problems.md"


def test_domain_packages_never_import_front_ends() -> None:
    offenders = []
    for path in PACKAGE.rglob("*.py"):
        relative = path.relative_to(PACKAGE)
        if relative.parts[0] in FRONT_ENDS or relative == Path("app.py"):  # app.py composes them
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            modules = []
            if isinstance(node, ast.Import):
                modules = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                modules = [node.module]
            for module in modules:
                parts = module.split(".")
                if parts[0] == "datalibrary" and len(parts) > 1 and parts[1] in FRONT_ENDS:
                    offenders.append(f"{relative} imports {module}")
    assert offenders == []
