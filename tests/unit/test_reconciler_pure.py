"""The pure parts of the reconciler: gate decisions from annotations, and the worker loop."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

from conveyor.core.models import Approval, RunStatus, StageStatus
from conveyor.operator.reconciler import Outcome, gate_decisions
from conveyor.operator.workers import Workers

NOW = datetime(2026, 12, 4, 12, 0, tzinfo=UTC)


def body(
    annotations: dict[str, str], managed: list[dict[str, object]] | None = None
) -> dict[str, object]:
    return {"metadata": {"annotations": annotations, "managedFields": managed or []}}


def test_approval_from_an_annotation_with_manager_and_time() -> None:
    managed = [
        {
            "manager": "kubectl-annotate",
            "time": "2026-12-04T11:59:00Z",
            "fieldsV1": {"f:metadata": {"f:annotations": {"f:approve.conveyor.dev/deploy": {}}}},
        }
    ]
    decisions = gate_decisions(body({"approve.conveyor.dev/deploy": "true"}, managed), None, NOW)
    decision = decisions["deploy"]
    assert decision.decision == "Approved"
    assert decision.by == "kubectl-annotate"
    assert decision.at == datetime(2026, 12, 4, 11, 59, tzinfo=UTC)


def test_a_name_as_value_is_who_and_rejection_wins_with_its_reason() -> None:
    approvals = gate_decisions(body({"approve.conveyor.dev/deploy": "anna"}), None, NOW)
    assert approvals["deploy"].by == "anna" and approvals["deploy"].at == NOW
    both = body({"approve.conveyor.dev/deploy": "true", "reject.conveyor.dev/deploy": "not today"})
    decision = gate_decisions(both, None, NOW)["deploy"]
    assert (decision.decision, decision.message) == ("Rejected", "not today")


def test_recorded_time_is_kept() -> None:
    earlier = datetime(2026, 12, 4, 11, 0, tzinfo=UTC)
    previous = RunStatus(
        stages=[StageStatus(name="deploy", approval=Approval(decision="Approved", at=earlier))]
    )
    decisions = gate_decisions(body({"approve.conveyor.dev/deploy": "true"}), previous, NOW)
    assert decisions["deploy"].at == earlier


def test_pokes_during_a_pass_coalesce_into_one_more_pass() -> None:
    calls: list[str] = []

    async def scenario() -> None:
        gate = asyncio.Event()

        async def reconcile(namespace: str, name: str) -> Outcome:
            calls.append(name)
            if len(calls) == 1:
                await gate.wait()
            return Outcome()

        workers = Workers(reconcile)
        workers.poke("ns", "run")
        await asyncio.sleep(0.01)
        for _ in range(5):
            workers.poke("ns", "run")
        gate.set()
        await asyncio.sleep(0.05)
        assert calls == ["run", "run"]
        assert not workers._tasks  # idle workers leave

    asyncio.run(scenario())


def test_a_failing_pass_is_retried_with_backoff() -> None:
    calls: list[int] = []

    async def scenario() -> None:
        async def reconcile(namespace: str, name: str) -> Outcome:
            calls.append(1)
            if len(calls) == 1:
                raise RuntimeError("boom")
            return Outcome()

        workers = Workers(reconcile)
        workers.poke("ns", "run")
        await asyncio.sleep(1.5)  # first retry after 1 s
        assert len(calls) == 2
        await workers.stop()

    asyncio.run(scenario())
