"""CustomResourceDefinitions generated from the models, so the schema never drifts from the code.

The API server wants a structural schema: every node typed, no `$ref`, `nullable` instead of
`anyOf` with null, no `additionalProperties: false`. pydantic's JSON schema is turned into that
here; durations (seconds or `10m`) become `x-kubernetes-int-or-string`.
"""

from __future__ import annotations

from typing import Any

from conveyor.core.models import API_GROUP, API_VERSION, PipelineRunSpec, PipelineSpec, RunStatus

_DROP_KEYS = {"title", "default", "description", "discriminator"}


def _inline(node: Any, defs: dict[str, Any]) -> Any:
    if isinstance(node, list):
        return [_inline(item, defs) for item in node]
    if not isinstance(node, dict):
        return node
    if "$ref" in node:
        target = node["$ref"].rsplit("/", 1)[-1]
        merged = {**defs[target], **{k: v for k, v in node.items() if k != "$ref"}}
        return _inline(merged, defs)
    return {k: _inline(v, defs) for k, v in node.items() if k != "$defs"}


def _structural(node: Any) -> Any:
    if isinstance(node, list):
        return [_structural(item) for item in node]
    if not isinstance(node, dict):
        return node
    node = {k: v for k, v in node.items() if k not in _DROP_KEYS}
    if node.get("additionalProperties") is False:
        del node["additionalProperties"]
    variants = node.pop("anyOf", None)
    if variants is not None:
        nullable = any(v.get("type") == "null" for v in variants)
        rest = [v for v in variants if v.get("type") != "null"]
        kinds = {v.get("type") for v in rest}
        if len(rest) == 1:
            node = {**_structural(rest[0]), **node}
        elif kinds and kinds <= {"integer", "number", "string"}:
            node["x-kubernetes-int-or-string"] = True
        else:  # pragma: no cover - a model change the CRD cannot express yet
            raise ValueError(f"cannot express {variants!r} in a structural schema")
        if nullable:
            node["nullable"] = True
    if "const" in node:
        node["enum"] = [node.pop("const")]
    return {k: _structural(v) for k, v in node.items()}


def schema_of(model: type[Any], mode: str = "validation") -> dict[str, Any]:
    """The structural OpenAPI v3 schema of a pydantic model (by wire names)."""
    raw = model.model_json_schema(by_alias=True, mode=mode)
    defs = raw.pop("$defs", {})
    result: dict[str, Any] = _structural(_inline(raw, defs))
    return result


def _matrix_items_as_int_or_string(schema: dict[str, Any]) -> None:
    # Matrix values are text to Conveyor, but YAML users write [18, 20]: accept ints too.
    def walk(node: Any) -> None:
        if isinstance(node, dict):
            matrix = node.get("properties", {}).get("matrix")
            if matrix is not None:
                matrix["additionalProperties"]["items"] = {"x-kubernetes-int-or-string": True}
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(schema)


def _crd(
    kind: str, plural: str, short: str, spec_schema: dict[str, Any], **extra: Any
) -> dict[str, Any]:
    version: dict[str, Any] = {
        "name": API_VERSION,
        "served": True,
        "storage": True,
        "schema": {
            "openAPIV3Schema": {
                "type": "object",
                "properties": {
                    "apiVersion": {"type": "string"},
                    "kind": {"type": "string"},
                    "metadata": {"type": "object"},
                    "spec": spec_schema,
                    **extra.get("properties", {}),
                },
                "required": ["spec"],
            }
        },
    }
    if "columns" in extra:
        version["additionalPrinterColumns"] = extra["columns"]
    if "subresources" in extra:
        version["subresources"] = extra["subresources"]
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"{plural}.{API_GROUP}"},
        "spec": {
            "group": API_GROUP,
            "scope": "Namespaced",
            "names": {
                "kind": kind,
                "listKind": f"{kind}List",
                "plural": plural,
                "singular": kind.lower(),
                "shortNames": [short],
                "categories": ["conveyor"],
            },
            "versions": [version],
        },
    }


def pipeline_crd() -> dict[str, Any]:
    spec = schema_of(PipelineSpec)
    _matrix_items_as_int_or_string(spec)
    age = {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"}
    return _crd("Pipeline", "pipelines", "pl", spec, columns=[age])


def pipelinerun_crd() -> dict[str, Any]:
    spec = schema_of(PipelineRunSpec)
    _matrix_items_as_int_or_string(spec)
    status = schema_of(RunStatus, mode="serialization")
    columns = [
        {"name": "Phase", "type": "string", "jsonPath": ".status.phase"},
        {"name": "Stage", "type": "string", "jsonPath": ".status.currentStage"},
        {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"},
        {
            "name": "Duration",
            "type": "number",
            "format": "float",
            "description": "seconds from start to end (or to now while running)",
            "jsonPath": ".status.durationSeconds",
        },
    ]
    return _crd(
        "PipelineRun",
        "pipelineruns",
        "plr",
        spec,
        properties={"status": status},
        columns=columns,
        subresources={"status": {}},
    )


def all_crds() -> dict[str, dict[str, Any]]:
    """File name -> CRD object, as committed under `crds/`."""
    return {
        f"{API_GROUP}_pipelines.yaml": pipeline_crd(),
        f"{API_GROUP}_pipelineruns.yaml": pipelinerun_crd(),
    }
