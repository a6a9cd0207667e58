"""One module per API resource. Each holds a ``Resource`` subclass (attached to ``CorePlexClient`` as an
attribute) and the object classes its calls return."""

from ._base import Resource
from .ab_tests import ABTest, ABTestResults, ABTestsResource, OutcomeResult, VariantResult
from .alerts import Alert, AlertEvent, AlertHistory, AlertsResource, Delivery
from .audit import AuditEntry, AuditResource
from .datasets import Dataset, DatasetsResource, DatasetVersion
from .deployments import (
    ConceptDriftReport,
    ConceptDriftWindow,
    Deployment,
    DeploymentEvent,
    DeploymentMetrics,
    DeploymentsResource,
    DriftReport,
    FeatureDrift,
    FeedbackResult,
    LoggedPrediction,
    MetricsWindow,
    PredictionResult,
    ShadowComparison,
    VariantMetrics,
)
from .experiments import Experiment, ExperimentsResource, Leaderboard, LeaderboardRow
from .jobs import Job, JobAttempt, JobsResource
from .keys import APIKey, CreatedKey, KeysResource
from .models import Model, ModelsResource, Promotion, Transition
from .orgs import CreatedOrg, Organization, OrgsResource
from .projects import Member, Project, ProjectsResource
from .retraining import Policy, RetrainingResource, RetrainingRun

__all__ = [
    "Resource",
    "ABTestsResource", "ABTest", "ABTestResults", "VariantResult", "OutcomeResult",
    "AlertsResource", "Alert", "AlertHistory", "AlertEvent", "Delivery",
    "AuditResource", "AuditEntry",
    "DatasetsResource", "Dataset", "DatasetVersion",
    "DeploymentsResource", "Deployment", "PredictionResult", "FeedbackResult", "DeploymentMetrics",
    "MetricsWindow", "VariantMetrics", "DeploymentEvent", "LoggedPrediction", "ShadowComparison",
    "DriftReport", "FeatureDrift", "ConceptDriftReport", "ConceptDriftWindow",
    "ExperimentsResource", "Experiment", "Leaderboard", "LeaderboardRow",
    "JobsResource", "Job", "JobAttempt",
    "KeysResource", "APIKey", "CreatedKey",
    "ModelsResource", "Model", "Transition", "Promotion",
    "OrgsResource", "Organization", "CreatedOrg",
    "ProjectsResource", "Project", "Member",
    "RetrainingResource", "Policy", "RetrainingRun",
]
