"""What the policy step needs from the platform: the study key and the surrogate crosswalk."""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import secrets
from collections.abc import Callable

from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from sqlalchemy import select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from datalibrary.config import Settings
from datalibrary.db import Database
from datalibrary.db.base import utcnow
from datalibrary.lake.models import Dataset
from datalibrary.privacy.identifiers import IdentifierDictionary
from datalibrary.privacy.keys import StudyKey, derive_study_key, load_master_key
from datalibrary.privacy.models import IdentifierDigest, StudyKeyRecord, Surrogate
from datalibrary.privacy.policy import PolicyContext


def current_generation(session: Session, namespace: str) -> int:
    latest = session.scalar(
        select(StudyKeyRecord.generation)
        .where(StudyKeyRecord.namespace == namespace)
        .order_by(StudyKeyRecord.generation.desc())
        .limit(1)
    )
    return latest or 1


def study_key_for(settings: Settings, session: Session, namespace: str, *, record: bool = True) -> StudyKey:
    """The namespace's current study key; its generation and key id are recorded on first use."""
    generation = current_generation(session, namespace)
    key = derive_study_key(load_master_key(settings), namespace, generation)
    if (
        record
        and session.scalar(
            select(StudyKeyRecord.id).where(
                StudyKeyRecord.namespace == namespace, StudyKeyRecord.generation == generation
            )
        )
        is None
    ):
        try:
            with session.begin_nested():  # a parallel first job may record it at the same moment
                session.add(
                    StudyKeyRecord(
                        namespace=namespace, generation=generation, key_id=key.key_id, created_by="system"
                    )
                )
        except IntegrityError:
            pass
    return key


class SurrogateStore:
    """Random tokens with an encrypted crosswalk in the database (never in the lake)."""

    def __init__(self, db: Database, key: StudyKey) -> None:
        self.db = db
        self.key = key
        self._seal_key = hmac.new(key.secret, b"surrogate-crosswalk", hashlib.sha256).digest()

    def _digest(self, scope: str, value: str) -> str:
        return hmac.new(
            self.key.secret, f"surrogate\x00{scope}\x00{value}".encode(), hashlib.sha256
        ).hexdigest()

    def _seal(self, value: str) -> str:
        nonce = os.urandom(12)
        return base64.b64encode(nonce + AESGCM(self._seal_key).encrypt(nonce, value.encode(), None)).decode()

    def unseal(self, sealed: str) -> str:
        raw = base64.b64decode(sealed)
        return AESGCM(self._seal_key).decrypt(raw[:12], raw[12:], None).decode()

    def tokens(self, scope: str, values: list[str], prefix: str = "S") -> dict[str, str]:
        ns = self.key.namespace
        digests = {self._digest(scope, v): v for v in values}
        found: dict[str, str] = {}
        for _ in range(3):
            with self.db.session() as session:
                keys = list(digests)
                for start in range(0, len(keys), 500):
                    chunk = keys[start : start + 500]
                    for row in session.execute(
                        select(Surrogate.digest, Surrogate.token).where(
                            Surrogate.namespace == ns, Surrogate.scope == scope, Surrogate.digest.in_(chunk)
                        )
                    ):
                        found[digests[row.digest]] = row.token
            missing = [d for d, v in digests.items() if v not in found]
            if not missing:
                return found
            try:
                with self.db.session() as session:
                    for digest in missing:
                        session.add(
                            Surrogate(
                                namespace=ns,
                                scope=scope,
                                digest=digest,
                                token=prefix + secrets.token_hex(8),
                                sealed=self._seal(digests[digest]),
                            )
                        )
            except IntegrityError:  # a parallel job created some first: read again
                continue
        raise RuntimeError("surrogate tokens could not be allocated after 3 attempts")


def policy_context(
    settings: Settings, db: Database, namespace: str, table: str, job_id: str = ""
) -> PolicyContext:
    """A context whose key is derived only when an action asks for it (keep/drop need none).

    It carries the dataset's declared subject column (checked on every delivery) and the
    study-wide identifier dictionary (names seen in any table of the namespace)."""
    key = LazyKey(settings, db, namespace)
    with db.session() as session:
        subject = session.scalar(
            select(Dataset.subject_column).where(Dataset.namespace == namespace, Dataset.name == table)
        )
    return PolicyContext(
        namespace,
        table,
        job_id,
        {
            "key_provider": key,
            "surrogates_for": _surrogates(db),
            "subject_column": subject,
            "identifier_dictionary": IdentifierDictionary(
                lambda: key().secret, lambda: known_digests(db, namespace)
            ),
        },
    )


def known_digests(db: Database, namespace: str) -> set[str]:
    with db.session() as session:
        return set(
            session.scalars(select(IdentifierDigest.digest).where(IdentifierDigest.namespace == namespace))
        )


def remember_digests(db: Database, namespace: str, digests: set[str]) -> set[str]:
    """Store digests the study did not hold yet; returns those that were new.

    One multi-row ``INSERT ... ON CONFLICT DO NOTHING`` per chunk (a study's subject ids are
    tens of thousands of digests: ORM objects one by one cost seconds per delivery); a
    parallel job that stored some of them first is not an error."""
    new = digests - known_digests(db, namespace)
    if not new:
        return new
    # the two databases DataLibrary runs on; both spell ON CONFLICT alike
    insert = postgresql.insert if db.engine.dialect.name == "postgresql" else sqlite.insert
    now = utcnow()
    rows = [{"namespace": namespace, "digest": d, "created_at": now} for d in sorted(new)]
    statement = insert(IdentifierDigest).on_conflict_do_nothing(index_elements=["namespace", "digest"])
    with db.session() as session:
        for start in range(0, len(rows), 5_000):
            session.execute(statement, rows[start : start + 5_000])
    return new


class LazyKey:
    """Derives the study key on first call; ``used`` is that key (None while unused)."""

    def __init__(self, settings: Settings, db: Database, namespace: str) -> None:
        self.settings, self.db, self.namespace = settings, db, namespace
        self.used: StudyKey | None = None

    def __call__(self) -> StudyKey:
        if self.used is None:
            with self.db.session() as session:
                self.used = study_key_for(self.settings, session, self.namespace)
        return self.used

    def __repr__(self) -> str:
        return f"LazyKey({self.namespace!r})"


def _surrogates(db: Database) -> Callable[[StudyKey], SurrogateStore]:
    return lambda key: SurrogateStore(db, key)
