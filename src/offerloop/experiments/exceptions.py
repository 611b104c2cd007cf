"""The experiments domain's errors."""

from __future__ import annotations

from offerloop.core.errors import Conflict, NotFound, ValidationFailed


class ExperimentNotFound(NotFound):
    """No experiment by that key in this workspace."""

    code = "experiment_not_found"


class ExperimentExists(Conflict):
    code = "experiment_exists"


class ExperimentStopped(Conflict):
    """A stopped experiment is final: it cannot run again or change its weights."""

    code = "experiment_stopped"


class InvalidWeights(ValidationFailed):
    code = "invalid_weights"


class PolicyExperimentRunning(Conflict):
    """A placement runs one policy experiment at a time: /v1/decide must know which arm serves a buyer."""

    code = "policy_experiment_running"
