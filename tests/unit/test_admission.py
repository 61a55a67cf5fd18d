"""Who may decide a gate: the webhook's pure rules."""

from __future__ import annotations

from conveyor.operator.admission import (
    CREATED_BY,
    DECIDED_BY_PREFIX,
    gate_approvers,
    identity_patch,
    new_decisions,
    refusal,
    run_spec,
    serves,
)

GATES = {"deploy": ["anna", "group:team-leads"]}


def test_listed_users_and_groups_may_decide() -> None:
    assert refusal("anna", [], "carl", "deploy", GATES) is None
    assert refusal("bob", ["team-leads"], "carl", "deploy", GATES) is None


def test_others_and_the_creator_are_refused() -> None:
    why = refusal("eve", ["devs"], "carl", "deploy", GATES)
    assert why is not None and "not an approver" in why and "anna" in why
    why = refusal("anna", [], "anna", "deploy", GATES)
    assert why is not None and "created this run" in why
    why = refusal("anna", [], None, "build", GATES)
    assert why is not None and "has no gate" in why


def test_new_decisions() -> None:
    old = {"approve.conveyor.dev/a": "true", "other": "x"}
    new = {**old, "reject.conveyor.dev/b": "no", "approve.conveyor.dev/a": "true"}
    assert new_decisions(old, new) == ["b"]


def test_identity_is_recorded_and_cannot_be_forged() -> None:
    created = identity_patch("CREATE", {}, {DECIDED_BY_PREFIX + "deploy": "anna"}, "carl")
    assert created == {CREATED_BY: "carl", DECIDED_BY_PREFIX + "deploy": None}
    old = {CREATED_BY: "carl"}
    new = {CREATED_BY: "mallory", "approve.conveyor.dev/deploy": "true"}
    assert identity_patch("UPDATE", old, new, "anna") == {
        CREATED_BY: "carl",
        DECIDED_BY_PREFIX + "deploy": "anna",
    }
    forged = {CREATED_BY: "carl", DECIDED_BY_PREFIX + "deploy": "anna"}
    assert identity_patch("UPDATE", old, forged, "mallory") == {DECIDED_BY_PREFIX + "deploy": None}


def test_approvers_from_the_resolved_or_inline_spec() -> None:
    inline = {
        "spec": {"pipelineSpec": {"stages": [{"name": "deploy", "gate": {"approvers": ["anna"]}}]}}
    }
    spec = run_spec(inline)
    assert spec is not None and gate_approvers(spec) == {"deploy": ["anna"]}
    resolved = {"metadata": {"annotations": {"conveyor.dev/resolved-spec": '{"stages": []}'}}}
    assert run_spec(resolved) == {"stages": []}
    assert run_spec({"spec": {"pipelineRef": {"name": "web"}}}) is None


def test_serves_follows_the_namespace_patterns() -> None:
    assert serves([], "any")
    assert serves(["e2e-*", "!e2e-own-*"], "e2e-a")
    assert not serves(["e2e-*", "!e2e-own-*"], "e2e-own-b")
    assert not serves(["team-a"], "team-b")
    assert serves(["!kube-*"], "team-b") and not serves(["!kube-*"], "kube-system")
