"""Every domain's table models, imported so ``Base.metadata`` is complete for Alembic.

A new domain adds one import line here.
"""

from datalibrary.access.models import AccessRequest, Grant
from datalibrary.audit.models import AuditEvent
from datalibrary.auth.models import (
    ApiToken,
    Group,
    GroupMember,
    GroupRole,
    LoginThrottle,
    Project,
    ProjectMember,
    User,
    UserRole,
    WebSession,
)
from datalibrary.costs.models import Budget, BudgetAlert, PriceVersion, StorageMeasurement
from datalibrary.db.base import Base
from datalibrary.db.leases import TaskLease
from datalibrary.files.models import FileCollection, FileRead, QuarantinedFile
from datalibrary.ingest.models import IngestJob, Upload
from datalibrary.lake.models import Dataset, LakeLock, MaintenanceRun
from datalibrary.lineage.models import ExportRequest, LineageEdge, LineageEvent, LineageForwarding
from datalibrary.packages.models import PackagePolicy, PackageRule
from datalibrary.privacy.models import RiskOverride, StoredPolicy, StudyKeyRecord, Surrogate
from datalibrary.query.models import QueryRecord
from datalibrary.workspaces.models import Workspace, WorkspaceAdminAccess, WorkspaceUsage

__all__ = [
    "AccessRequest",
    "ApiToken",
    "AuditEvent",
    "Base",
    "Budget",
    "BudgetAlert",
    "Dataset",
    "ExportRequest",
    "FileCollection",
    "FileRead",
    "Grant",
    "Group",
    "GroupMember",
    "GroupRole",
    "IngestJob",
    "LakeLock",
    "LineageEdge",
    "LineageEvent",
    "LineageForwarding",
    "LoginThrottle",
    "MaintenanceRun",
    "PackagePolicy",
    "PackageRule",
    "PriceVersion",
    "QuarantinedFile",
    "Project",
    "ProjectMember",
    "QueryRecord",
    "RiskOverride",
    "StorageMeasurement",
    "StoredPolicy",
    "StudyKeyRecord",
    "Surrogate",
    "TaskLease",
    "Upload",
    "User",
    "UserRole",
    "WebSession",
    "Workspace",
    "WorkspaceAdminAccess",
    "WorkspaceUsage",
]
