"""Privacy: validate a policy and preview it on sample rows (nothing stored)."""

from __future__ import annotations

import io

import pyarrow as pa
import pyarrow.csv as pacsv
from fastapi import APIRouter

from datalibrary.auth.permissions import Permission, require
from datalibrary.errors import InvalidInput
from datalibrary.http.deps import CurrentPrincipal, DatabaseDep, DbSession, Requires, SettingsDep
from datalibrary.privacy import store
from datalibrary.privacy.policy import parse_policy
from datalibrary.privacy.schemas import PolicyDescription, PolicyDocument, PolicyText, PreviewIn, PreviewOut

router = APIRouter(prefix="/policies", tags=["policies"])


@router.post(
    "/validate", summary="Check a policy document", dependencies=[Requires(Permission.POLICIES_MANAGE)]
)
def validate_policy(body: PolicyDocument, principal: CurrentPrincipal) -> PolicyDescription:
    require(principal, Permission.POLICIES_MANAGE)
    return PolicyDescription.of(parse_policy(body.document))


@router.post(
    "/preview",
    summary="Apply a policy to sample rows (nothing stored)",
    dependencies=[Requires(Permission.POLICIES_MANAGE)],
)
def preview_policy(
    body: PreviewIn, principal: CurrentPrincipal, settings: SettingsDep, database: DatabaseDep
) -> PreviewOut:
    from datalibrary.privacy.preview import preview_batch

    require(principal, Permission.POLICIES_MANAGE)
    policy = parse_policy(body.document)
    try:
        table = pacsv.read_csv(io.BytesIO(body.sample_csv.encode()))
    except (pa.ArrowInvalid, UnicodeError) as exc:
        raise InvalidInput(f"the sample is not CSV with a header row: {str(exc)[:200]}") from None
    if table.num_rows == 0:
        raise InvalidInput("the sample has a header but no rows")
    batch = table.slice(0, body.rows).combine_chunks().to_batches()[0]
    return PreviewOut.model_validate(preview_batch(settings, database, policy, batch, body.namespace))


@router.get(
    "/{name}",
    summary="A stored policy document (latest version)",
    dependencies=[Requires(Permission.CATALOG_READ)],
)
def show_policy(name: str, principal: CurrentPrincipal, session: DbSession) -> PolicyText:
    require(principal, Permission.CATALOG_READ)
    return PolicyText.of(store.load_policy(session, name))
