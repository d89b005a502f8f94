"""The workspace products: instance types, environments and products, read from the catalog YAML.

A product is an environment x the instance types it may run on x who may launch it (roles
or groups). The catalog is configuration, not state: it is validated once when loaded and
the database stores only the names a workspace was launched with.
"""

from __future__ import annotations

import hashlib
import json
from functools import lru_cache
from pathlib import Path
from typing import Literal

import yaml
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from pydantic import BaseModel, Field, ValidationError, model_validator

from datalibrary.auth.permissions import Principal
from datalibrary.errors import InvalidInput, NotFound, PermissionDenied

DEFAULT_CATALOG = Path(__file__).with_name("catalog.yaml")
NAME = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$"
# Changes when environments are built differently (environments._build_into), so old builds
# are not reused: 2 = bytecode compiled at build time, rfc3987-syntax left out.
BUILD_RECIPE = 2


class InstanceType(BaseModel):
    name: str = Field(pattern=NAME)
    vcpu: float = Field(gt=0, le=512)
    memory_gib: float = Field(gt=0, le=4096)
    gpu: int = Field(0, ge=0, le=16)
    price_per_hour: float = Field(ge=0)
    # processes + threads in the workspace (cgroup pids.max): a fork loop stops here
    max_processes: int = Field(1024, ge=64, le=1_000_000)

    @property
    def memory_bytes(self) -> int:
        return int(self.memory_gib * 1024**3)


# Installed into every environment whatever its package list: pip and uv are how a
# scientist installs more from the platform's mirror (``pip install`` in a workspace).
TOOLS = ("pip", "uv")


class Environment(BaseModel):
    name: str = Field(pattern=NAME)
    description: str = ""
    kernels: list[Literal["python", "r"]] = ["python"]
    packages: list[str] = ["jupyterlab", "ipykernel"]

    @model_validator(mode="after")
    def _needs_jupyterlab(self) -> Environment:
        names = {p.split("=")[0].split("<")[0].split(">")[0].strip().lower() for p in self.packages}
        missing = {"jupyterlab", "ipykernel"} - names
        if missing:
            raise ValueError(f"environment '{self.name}' must list {sorted(missing)} in its packages")
        return self

    @property
    def package_names(self) -> set[str]:
        """The canonical names of the listed packages (versions and extras dropped)."""
        return {canonicalize_name(Requirement(package).name) for package in self.packages}

    @property
    def install(self) -> list[str]:
        """What a build installs: the packages plus the tools not listed already."""
        return [*self.packages, *(tool for tool in TOOLS if tool not in self.package_names)]

    @property
    def key(self) -> str:
        """Identifies a build: the same name, kernels and packages reuse the same directory
        (the always-installed tools and the build recipe are part of it, so changing either
        rebuilds)."""
        spec = json.dumps([self.name, sorted(self.kernels), sorted(self.packages), *TOOLS, BUILD_RECIPE])
        return f"{self.name}-{hashlib.sha256(spec.encode()).hexdigest()[:12]}"


class Product(BaseModel):
    name: str = Field(pattern=NAME)
    title: str = ""
    description: str = ""
    environment: str
    instance_types: list[str] = Field(min_length=1)
    roles: list[str] = []
    groups: list[str] = []
    idle_timeout_minutes: int = Field(60, ge=1, le=7 * 24 * 60)
    # Limits the provisioner must enforce, or the launch is refused.
    requires: list[Literal["memory", "cpu", "network_isolation", "gpu"]] = [
        "memory",
        "cpu",
        "network_isolation",
    ]

    def allows(self, principal: Principal) -> bool:
        """Who may launch: anyone holding one of the roles or groups (admins always)."""
        if principal.is_admin:
            return True
        groups = getattr(principal, "groups", frozenset())
        return bool(set(self.roles) & set(principal.roles)) or bool(set(self.groups) & set(groups))


class Catalog(BaseModel):
    currency: str = "EUR"
    instance_types: list[InstanceType]
    environments: list[Environment]
    products: list[Product]

    @model_validator(mode="after")
    def _consistent(self) -> Catalog:
        for kind, items in (
            ("instance type", self.instance_types),
            ("environment", self.environments),
            ("product", self.products),
        ):
            names = [item.name for item in items]
            duplicates = {n for n in names if names.count(n) > 1}
            if duplicates:
                raise ValueError(f"duplicate {kind} names: {sorted(duplicates)}")
        types = {t.name for t in self.instance_types}
        envs = {e.name for e in self.environments}
        for product in self.products:
            if product.environment not in envs:
                raise ValueError(
                    f"product '{product.name}' names unknown environment '{product.environment}'"
                )
            unknown = set(product.instance_types) - types
            if unknown:
                raise ValueError(f"product '{product.name}' names unknown instance types {sorted(unknown)}")
        return self

    def product(self, name: str) -> Product:
        for product in self.products:
            if product.name == name:
                return product
        raise NotFound(f"no product named '{name}'; see the catalog (GET /api/v1/workspaces/catalog)")

    def instance_type(self, name: str) -> InstanceType:
        for item in self.instance_types:
            if item.name == name:
                return item
        raise NotFound(f"no instance type named '{name}'")

    def environment(self, name: str) -> Environment:
        for item in self.environments:
            if item.name == name:
                return item
        raise NotFound(f"no environment named '{name}'")

    def choose(self, principal: Principal, product_name: str, type_name: str) -> tuple[Product, InstanceType]:
        """The product and instance type a launch asks for, if the principal may use them."""
        product = self.product(product_name)
        if not product.allows(principal):
            raise PermissionDenied(
                f"product '{product.name}' is restricted to roles {product.roles} and groups {product.groups}"
            )
        if type_name not in product.instance_types:
            raise InvalidInput(
                f"product '{product.name}' runs on {product.instance_types}, not '{type_name}'",
                field="instance_type",
            )
        return product, self.instance_type(type_name)

    def visible_to(self, principal: Principal) -> list[Product]:
        return [p for p in self.products if p.allows(principal)]


def parse_catalog(text: str, source: str = "catalog") -> Catalog:
    """Validate catalog YAML; errors name the file and the offending field."""
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise InvalidInput(f"{source}: not valid YAML ({exc})") from exc
    if not isinstance(data, dict):
        raise InvalidInput(
            f"{source}: the catalog must be a mapping with instance_types, environments, products"
        )
    try:
        return Catalog.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise InvalidInput(f"{source}: {where}: {first['msg']}") from exc


@lru_cache(maxsize=8)
def _load_cached(path: str, mtime: float) -> Catalog:
    return parse_catalog(Path(path).read_text(), source=path)


def load_catalog(path: Path | None = None) -> Catalog:
    """The configured catalog (re-read when the file changes) or the built-in default."""
    target = Path(path) if path else DEFAULT_CATALOG
    if not target.is_file():
        raise InvalidInput(f"workspace catalog {target} does not exist; fix workspaces.catalog")
    return _load_cached(str(target), target.stat().st_mtime)
