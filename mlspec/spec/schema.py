"""The JSON Schema of mlspec.yaml, generated from the pydantic models."""

from __future__ import annotations

import json
from typing import Any

from mlspec.spec.loader import STAGE_KEYS
from mlspec.spec.root import Spec

SCHEMA_ID = "https://mlspec.dev/schemas/mlspec.schema.json"


def spec_schema() -> dict[str, Any]:

    schema = Spec.model_json_schema(mode="validation")
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["$id"] = SCHEMA_ID
    schema["title"] = "mlspec.yaml"
    # a stage may also be a path to its own file ("model: specs/model.yaml")
    props = schema["properties"]
    for stage in STAGE_KEYS:
        prop = props[stage]
        alternatives = prop.pop("anyOf", None) or [{"$ref": prop.pop("$ref")}]
        alternatives = [a for a in alternatives if a.get("type") != "null"]
        prop["anyOf"] = [*alternatives, {"type": "string",
                                         "description": f"path to a file holding the {stage} "
                                         "section"}]
    return schema


def schema_text() -> str:
    return json.dumps(spec_schema(), indent=2, sort_keys=True) + "\n"
