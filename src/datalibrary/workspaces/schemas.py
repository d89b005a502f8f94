"""What the front ends show of workspaces (the API's responses, the console's page): the
catalog as one caller sees it, a workspace, a terminated one and its usage intervals."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field
from sqlalchemy.orm import Session

from datalibrary.auth.permissions import Principal
from datalibrary.config import Settings
from datalibrary.costs import service as cost_service
from datalibrary.errors import NotFound
from datalibrary.workspaces import history, idle, paths, service
from datalibrary.workspaces.models import Workspace
from datalibrary.workspaces.products import Environment, InstanceType, Product
from datalibrary.workspaces.provisioners import provisioner_class, resolve_name


class ProductOut(Product):
    launchable: bool = True
    refused_because: str | None = None


class InstanceTypeOut(InstanceType):
    available: bool = True
    # why you cannot launch it now: over your quota or budget, not allowed for your roles,
    # GPU not available on this host
    unavailable_because: str | None = None


class CatalogOut(BaseModel):
    currency: str
    provisioner: str
    isolated: bool
    enforces: list[str]
    instance_types: list[InstanceTypeOut]
    environments: list[Environment]
    products: list[ProductOut]
    # per instance type: price_per_hour and working_day (decimal strings) from the price book
    launch_prices: dict[str, dict[str, str]] = {}


class WorkspaceOut(BaseModel):
    id: int
    owner: str
    project: str | None
    product: str
    instance_type: str
    environment: str
    provisioner: str
    isolated: bool
    state: str
    state_reason: str
    state_changed_at: datetime
    created_at: datetime
    price_per_hour: float | None = Field(description="None: the instance type has left the catalog")
    currency: str
    url: str
    idle_timeout_minutes: int
    last_activity_at: datetime
    idle_warning_at: datetime | None
    idle_stop_at: datetime | None


class HistoryOut(BaseModel):
    id: int
    owner: str
    project: str | None
    product: str
    instance_type: str
    created_at: datetime
    terminated_at: datetime
    state_reason: str
    running_seconds: int
    cost: str  # decimal, in currency: compute while running + home storage while stopped
    currency: str


class UsageOut(BaseModel):
    state: str
    instance_type: str
    project: str | None
    started_at: datetime
    ended_at: datetime | None
    seconds: int


def catalog_view(principal: Principal, settings: Settings, session: Session) -> CatalogOut:
    """The catalog as this caller sees it: what they may launch, and why not."""
    data = service.catalog_of(settings)
    backend = resolve_name(settings.workspaces.provisioner)
    cls = provisioner_class(backend)
    products = []
    for product in data.visible_to(principal):
        needs = set(product.requires)
        if all(data.instance_type(t).gpu for t in product.instance_types):
            needs.add("gpu")
        missing = cls.capabilities.missing(sorted(needs))
        products.append(
            ProductOut(
                **product.model_dump(),
                launchable=not missing,
                refused_because=f"the '{backend}' provisioner cannot enforce {missing}" if missing else None,
            )
        )
    reasons = history.unavailable_types(session, principal, settings)
    return CatalogOut(
        currency=data.currency,
        provisioner=backend,
        isolated=cls.isolated,
        enforces=sorted(cls.capabilities.enforced()),
        instance_types=[
            InstanceTypeOut(
                **t.model_dump(),
                available=reasons.get(t.name) is None,
                unavailable_because=reasons.get(t.name),
            )
            for t in data.instance_types
        ],
        environments=data.environments,
        products=products,
        launch_prices=cost_service.launch_prices(session, settings),
    )


def workspace_view(workspace: Workspace, owner: str, settings: Settings) -> WorkspaceOut:
    """A workspace as the front ends show it. An instance type that has left the catalog since
    the launch has no price (None, not 0); a broken catalog or provisioner is an error."""
    catalog = service.catalog_of(settings)
    try:
        price: float | None = catalog.instance_type(workspace.instance_type).price_per_hour
    except NotFound:
        price = None
    isolated = provisioner_class(workspace.provisioner).isolated
    return WorkspaceOut(
        id=workspace.id,
        owner=owner,
        project=workspace.project,
        product=workspace.product,
        instance_type=workspace.instance_type,
        environment=workspace.environment,
        provisioner=workspace.provisioner,
        isolated=isolated,
        state=workspace.state,
        state_reason=workspace.state_reason,
        state_changed_at=workspace.state_changed_at,
        created_at=workspace.created_at,
        price_per_hour=price,
        currency=catalog.currency,
        url=f"{paths.base_url(workspace.id)}open",
        idle_timeout_minutes=workspace.idle_timeout_minutes,
        last_activity_at=workspace.last_activity_at,
        idle_warning_at=workspace.idle_warning_at,
        idle_stop_at=idle.stop_due_at(workspace) if workspace.idle_warning_at else None,
    )


def history_view(ended: history.Ended) -> HistoryOut:
    w = ended.workspace
    return HistoryOut(
        id=w.id, owner=ended.owner, project=w.project, product=w.product, instance_type=w.instance_type,
        created_at=w.created_at, terminated_at=ended.terminated_at, state_reason=w.state_reason,
        running_seconds=ended.running_seconds, cost=str(ended.cost), currency=ended.currency,
    )  # fmt: skip
