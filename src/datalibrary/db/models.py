"""Every domain's table models, imported so ``Base.metadata`` is complete for Alembic.

A new domain adds one import line here.
"""

from datalibrary.audit.models import AuditEvent
from datalibrary.auth.models import ApiToken, User, UserRole, WebSession
from datalibrary.db.base import Base
from datalibrary.ingest.models import IngestJob, Upload
from datalibrary.lake.models import Dataset, LakeLock, MaintenanceRun
from datalibrary.privacy.models import StoredPolicy

__all__ = [
    "ApiToken",
    "AuditEvent",
    "Base",
    "Dataset",
    "IngestJob",
    "LakeLock",
    "MaintenanceRun",
    "StoredPolicy",
    "Upload",
    "User",
    "UserRole",
    "WebSession",
]
