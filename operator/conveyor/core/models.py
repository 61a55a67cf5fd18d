"""Typed models of the `Pipeline` and `PipelineRun` resources: spec and status.

These models are the single source of truth for the user-facing contract: the CRD schemas in
`crds/` are generated from them, every executor reads specs through them, and status is only
ever written from them. Field names are snake_case in Python and camelCase on the wire.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Final, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, field_validator
from pydantic.alias_generators import to_camel

from conveyor.core.durations import parse_duration

API_GROUP = "conveyor.dev"
API_VERSION = "v1alpha1"
FULL_API_VERSION: Final = "conveyor.dev/v1alpha1"

# Name of the synthetic stage under which `finally` jobs are reported in the status.
FINALLY_STAGE = "finally"


class Model(BaseModel):
    """Base of every spec model: camelCase on the wire, unknown fields rejected, immutable."""

    model_config = ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        extra="forbid",
        frozen=True,
    )


def _check_duration(value: Any) -> Any:
    if value is None:
        return None
    if isinstance(value, bool):
        raise ValueError("a duration is a number of seconds or a string like 90s, 10m, 1h30m")
    parse_duration(value)  # raises ValueError with a useful message
    return value


# A duration as the user wrote it: seconds (int/float) or a string such as "90s", "10m", "1h30m".
Duration = Annotated[int | float | str, BeforeValidator(_check_duration)]


def _matrix_values(value: Any) -> Any:
    # YAML turns `[18, 20]` into ints; matrix values become environment variables, so keep
    # their text. Booleans are spelled the way a shell script would test them.
    if not isinstance(value, list):
        raise ValueError("matrix values must be a list, for example [chromium, firefox]")
    out: list[str] = []
    for item in value:
        if isinstance(item, bool):
            out.append("true" if item else "false")
        elif isinstance(item, int | float | str):
            out.append(str(item))
        else:
            raise ValueError(f"matrix value {item!r} must be a string or a number")
    return out


MatrixValues = Annotated[list[str], BeforeValidator(_matrix_values)]


class Trigger(Model):
    """Which contexts a pipeline runs for; an empty list means any."""

    branches: list[str] = Field(default_factory=list)
    events: list[str] = Field(default_factory=list)


class Defaults(Model):
    """Values every job inherits unless it sets its own."""

    image: str | None = None
    timeout: Duration | None = None
    env: dict[str, str] = Field(default_factory=dict)

    @field_validator("env", mode="before")
    @classmethod
    def _env_as_text(cls, value: Any) -> Any:
        return _stringify_env(value)


class PipelineCache(Model):
    """Where cache entries live in a cluster: a PersistentVolumeClaim mounted by caching jobs."""

    claim_name: str | None = None


class CacheSpec(Model):
    """A job's cache: `key` is rendered in the job's workspace (`hashFiles(...)`)."""

    key: str = Field(min_length=1)
    paths: list[str] = Field(min_length=1)
    skip_on_hit: bool = False


class ArtifactSpec(Model):
    """Files a job publishes on success for the jobs that depend on it."""

    paths: list[str] = Field(min_length=1)
    expire_in: Duration | None = None


class GateSpec(Model):
    """A manual approval gate in front of a stage."""

    approvers: list[str] = Field(default_factory=list)
    timeout: Duration | None = None


class JobSpec(Model):
    """One pipeline job: commands run by `sh` in a workspace."""

    name: str
    commands: list[str] = Field(default_factory=list)
    depends_on: list[str] = Field(default_factory=list)
    image: str | None = None
    env: dict[str, str] = Field(default_factory=dict)
    timeout: Duration | None = None
    retries: int = Field(default=0, ge=0, le=10)
    allow_failure: bool = False
    cache: CacheSpec | None = None
    artifacts: ArtifactSpec | None = None
    matrix: dict[str, MatrixValues] | None = None

    @field_validator("env", mode="before")
    @classmethod
    def _env_as_text(cls, value: Any) -> Any:
        return _stringify_env(value)


class StageSpec(Model):
    """An ordered group of jobs, optionally conditional and/or gated."""

    name: str
    condition: str | None = None
    gate: GateSpec | None = None
    jobs: list[JobSpec] = Field(default_factory=list)


class PipelineSpec(Model):
    """The pipeline definition, shared by `Pipeline.spec` and `PipelineRun.spec.pipelineSpec`."""

    trigger: Trigger | None = None
    defaults: Defaults = Field(default_factory=Defaults)
    cache: PipelineCache | None = None
    stages: list[StageSpec] = Field(default_factory=list)
    finally_: list[JobSpec] = Field(default_factory=list, alias="finally")


class RunContext(Model):
    """What triggered a run; conditions and triggers are evaluated over it."""

    branch: str | None = None
    commit: str | None = None
    event: str | None = None
    triggered_by: str | None = None

    @field_validator("branch", "commit", "event", "triggered_by", mode="before")
    @classmethod
    def _scalar_as_text(cls, value: Any) -> Any:
        # An all-digit commit hash (`1234567`) reaches us as a YAML int; keep its text.
        if isinstance(value, int | float) and not isinstance(value, bool):
            return str(value)
        return value


class PipelineRef(Model):
    name: str = Field(min_length=1)


class GitSource(Model):
    url: str = Field(min_length=1)
    revision: str = "HEAD"


class SourceSpec(Model):
    git: GitSource | None = None


class PipelineRunSpec(Model):
    """One execution: a pipeline (by reference or inline) and the context it runs in."""

    pipeline_ref: PipelineRef | None = None
    pipeline_spec: PipelineSpec | None = None
    context: RunContext = Field(default_factory=RunContext)
    timeout: Duration | None = None
    source: SourceSpec | None = None


class ObjectMeta(BaseModel):
    """The slice of Kubernetes metadata Conveyor reads; everything else is kept as is."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="allow")

    name: str | None = None
    generate_name: str | None = None
    namespace: str | None = None
    annotations: dict[str, str] = Field(default_factory=dict)
    labels: dict[str, str] = Field(default_factory=dict)


class Pipeline(Model):
    api_version: Literal["conveyor.dev/v1alpha1"] = FULL_API_VERSION
    kind: Literal["Pipeline"] = "Pipeline"
    metadata: ObjectMeta = Field(default_factory=ObjectMeta)
    spec: PipelineSpec


# ---------------------------------------------------------------------------------------------
# Status. Only the operator (or the local runner) writes it, always from these models.

RunPhase = Literal[
    "Pending", "Running", "WaitingApproval", "Succeeded", "Failed", "Cancelled", "Skipped"
]
StageState = Literal["Pending", "Running", "Waiting", "Succeeded", "Failed", "Skipped"]
JobState = Literal["Pending", "Running", "Succeeded", "Failed", "Skipped"]
ApprovalDecision = Literal["Approved", "Rejected", "TimedOut"]
TERMINAL_RUN_PHASES: frozenset[str] = frozenset({"Succeeded", "Failed", "Cancelled", "Skipped"})


class StatusModel(BaseModel):
    """Base of status models: camelCase, and `None` fields are written as explicit nulls."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="ignore")


class Condition(StatusModel):
    type: str
    status: Literal["True", "False", "Unknown"]
    reason: str
    message: str = ""
    last_transition_time: datetime | None = None


class Approval(StatusModel):
    decision: ApprovalDecision
    by: str | None = None
    at: datetime | None = None
    message: str | None = None


class JobStatus(StatusModel):
    # Frozen: the planner shares one instance between plans that see the same job alike.
    model_config = ConfigDict(
        alias_generator=to_camel, populate_by_name=True, extra="ignore", frozen=True
    )

    name: str
    status: JobState = "Pending"
    exit_code: int | None = None
    duration_seconds: float | None = None
    cached_hit: bool = False
    started_at: datetime | None = None
    completed_at: datetime | None = None
    job_name: str | None = None
    attempt: int = 0
    reason: str | None = None
    message: str | None = None


class StageStatus(StatusModel):
    name: str
    status: StageState = "Pending"
    started_at: datetime | None = None
    completed_at: datetime | None = None
    approval: Approval | None = None
    jobs: list[JobStatus] = Field(default_factory=list)


class RunStatus(StatusModel):
    phase: RunPhase = "Pending"
    current_stage: str | None = None
    started_at: datetime | None = None
    completed_at: datetime | None = None
    duration_seconds: float | None = None
    conditions: list[Condition] = Field(default_factory=list)
    stages: list[StageStatus] = Field(default_factory=list)


class PipelineRun(Model):
    api_version: Literal["conveyor.dev/v1alpha1"] = FULL_API_VERSION
    kind: Literal["PipelineRun"] = "PipelineRun"
    metadata: ObjectMeta = Field(default_factory=ObjectMeta)
    spec: PipelineRunSpec
    status: RunStatus | None = None


def _stringify_env(value: Any) -> Any:
    # `env: {CI: true, RETRIES: 3}` is common in YAML; the process sees text either way.
    if not isinstance(value, dict):
        return value
    out: dict[Any, Any] = {}
    for key, item in value.items():
        if isinstance(item, bool):
            out[key] = "true" if item else "false"
        elif isinstance(item, int | float):
            out[key] = str(item)
        else:
            out[key] = item
    return out
