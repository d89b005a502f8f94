"""The restricted tier (genomic data) and the classification of a collection (documents).

Restricted tier: a genome identifies its owner whatever is removed, so an ordinary grant is
not enough to read a restricted collection's files. A grant counts for it only when:

- it names the collection's index table itself (a grant on the whole namespace never reaches
  a restricted collection), and
- a steward (``grants.manage``) approved that grant for the tier, with a reason — recorded on
  the collection and in the audit log (``files.tier.approve``).

Revoking or letting the grant expire ends the access at once (the approval only qualifies a
live grant). The index table's rows (pseudonym, reference, counts: no genotype) are
catalogued with sensitivity ``restricted`` and follow the ordinary grants, like any table.

Classification: what a steward states a collection holds, e.g. "protocol documents, no
patient data"; documents are quarantined while a collection has none (``files.documents``).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from datalibrary.access.models import Grant
from datalibrary.audit.service import record
from datalibrary.auth.permissions import Permission, Principal, require
from datalibrary.errors import Conflict, InvalidInput, NotFound
from datalibrary.files.models import FileCollection

RESTRICTED = "restricted"
MAX_CLASSIFICATION = 500


def check_classification(text: str) -> str:
    clean = " ".join((text or "").split())
    if len(clean) > MAX_CLASSIFICATION:
        raise InvalidInput(f"classification is limited to {MAX_CLASSIFICATION} characters")
    return clean


def restricted_filter(
    session: Session, collection: FileCollection, grant_ids: tuple[int, ...]
) -> tuple[bool, str | None]:
    """(visible, row filter) of a restricted collection from the caller's live grants: only
    grants approved for the tier count; their row filters combine like grants do."""
    approved = collection.approved_grants or {}
    ids = [g for g in grant_ids if str(g) in approved]
    if not ids:
        return False, None
    grants = session.scalars(select(Grant).where(Grant.id.in_(ids))).all()
    grants = [g for g in grants if g.namespace == collection.namespace and g.table_name == collection.name]
    if not grants:
        return False, None
    filters = [g.row_filter for g in grants]
    return True, None if any(f is None for f in filters) else " OR ".join(f"({f})" for f in filters)


def approve_grant(
    session: Session, principal: Principal, collection: FileCollection, grant_id: int, reason: str
) -> dict[str, Any]:
    """A steward's approval of one grant for a restricted collection (audited)."""
    require(principal, Permission.GRANTS_MANAGE)
    if collection.tier != RESTRICTED:
        raise Conflict(f"{collection.full_name} is not restricted: its grants need no approval")
    reason = " ".join((reason or "").split())
    if not reason:
        raise InvalidInput("say why the grant is approved for restricted data (--reason)", field="reason")
    grant = session.get(Grant, grant_id)
    if grant is None or grant.revoked_at is not None:
        raise NotFound(f"no live grant {grant_id}")
    if grant.namespace != collection.namespace or grant.table_name != collection.name:
        raise Conflict(
            f"grant {grant_id} is not on {collection.full_name} itself: a restricted collection is reached "
            "only by a grant that names it"
        )
    entry = {
        "by": principal.name,
        "reason": reason,
        "at": datetime.now(UTC).isoformat(),
        "principal": grant.principal,
    }
    collection.approved_grants = {**(collection.approved_grants or {}), str(grant_id): entry}
    session.flush()
    record(
        session,
        actor=principal,
        action="files.tier.approve",
        target=f"files:{collection.full_name}",
        details={"grant_id": grant_id, "principal": grant.principal, "reason": reason},
    )
    return {"grant_id": grant_id, **entry}


def classify(session: Session, principal: Principal, collection: FileCollection, classification: str) -> None:
    """A steward states what the collection holds (audited); empty clears it."""
    require(principal, Permission.DATASETS_MANAGE)
    collection.classification = check_classification(classification)
    session.flush()
    record(
        session,
        actor=principal,
        action="files.collection.classify",
        target=f"files:{collection.full_name}",
        details={"classification": collection.classification},
    )
