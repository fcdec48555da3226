"""The OpenAPI 3.1 document of Ember's control plane, generated from the route table and the contract models.

Path and query parameters and request bodies come from each route's request model (pydantic
``model_json_schema``, validation mode, wire names); responses from its response model (serialisation mode:
timestamps are epoch-second numbers). Errors share one schema. Nothing here is written by hand per operation, so
the document cannot drift from what ``create_app`` serves.
"""

from __future__ import annotations

import copy
import re
from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from ember import __version__ as EMBER_VERSION
from ember.api.routes import ROUTES, Route

REF = "#/components/schemas/{model}"
ERROR_STATUSES = {
    "400": "ValidationException (InvalidParameterValueException on the tag API)",
    "402": "ServiceQuotaExceededException",
    "403": "AccessDeniedException: missing or bad SigV4 signature, unknown key, clock skew",
    "404": "ResourceNotFoundException",
    "409": "ConflictException (ResourceConflictException on the tag API)",
    "413": "RequestEntityTooLargeException: the body is larger than the operation accepts",
    "429": "ThrottlingException (TooManyRequestsException on the tag API); see Retry-After",
    "500": "InternalServerException (ServiceException on the tag API)",
}
SIGV4_DESCRIPTION = (
    "AWS Signature Version 4 (`AWS4-HMAC-SHA256`) with service name `lambda` and any region, using an Ember "
    "access key (`ember credentials` prints the root key). Sign the method, path, query, the `host` and "
    "`x-amz-date` headers and the body's SHA-256, exactly as botocore does; the request time must be within "
    "15 minutes of the server's clock. The key's account scopes every resource."
)
ERROR_SCHEMA: dict[str, Any] = {
    "type": "object",
    "description": "The error body; the error code is in the `x-amzn-ErrorType` header.",
    "properties": {
        "message": {"type": "string"},
        "resourceId": {"type": "string"},
        "resourceType": {"type": "string"},
        "serviceCode": {"type": "string"},
        "quotaCode": {"type": "string"},
        "Type": {"type": "string", "description": "Tag API only: User or Service"},
    },
    "required": ["message"],
}
_PARAM_RE = re.compile(r"{(\w+)}")


def _plain(schema: dict[str, Any]) -> dict[str, Any]:
    """A parameter's schema without the ``null`` alternative pydantic adds to optional members."""
    schema = copy.deepcopy(schema)
    variants = schema.get("anyOf")
    if isinstance(variants, list):
        rest = [v for v in variants if v != {"type": "null"}]
        if len(rest) == 1:
            schema.pop("anyOf")
            schema = {**rest[0], **schema}
    if schema.get("default", 0) is None:
        schema.pop("default")
    return schema


def _tag(route: Route) -> str:
    if route.extension:
        return "Ember extensions"
    if route.tag_api:
        return "Tags"
    return "MicroVMs" if "/microvms" in route.path else "Images"


def _operation(route: Route, schemas: dict[str, Any]) -> dict[str, Any]:
    model_schema = schemas[route.request.__name__]
    properties: dict[str, Any] = model_schema.get("properties", {})
    required = set(model_schema.get("required", []))
    path_members = _PARAM_RE.findall(route.path)
    parameters = [
        {"name": name, "in": "path", "required": True, "schema": _plain(properties[name])} for name in path_members
    ]
    for wire, member in route.query.items():
        schema = _plain(properties[member])
        if member in route.list_members:
            parameters.append(
                {
                    "name": wire,
                    "in": "query",
                    "required": member in required,
                    "schema": schema,
                    "style": "form",
                    "explode": True,
                }
            )
        else:
            parameters.append({"name": wire, "in": "query", "required": member in required, "schema": schema})
    for name, description in route.headers.items():
        parameters.append(
            {"name": name, "in": "header", "required": True, "description": description, "schema": {"type": "string"}}
        )
    doc = (route.handler.__doc__ or route.operation).strip().splitlines()[0]
    operation: dict[str, Any] = {
        "operationId": route.operation,
        "summary": doc,
        "tags": [_tag(route)],
        "parameters": parameters,
        "responses": {},
    }
    body_members = [m for m in properties if m not in path_members and m not in route.query.values()]
    if route.raw_body:
        operation["requestBody"] = {
            "required": True,
            "content": {route.raw_body: {"schema": {"type": "string", "contentMediaType": route.raw_body}}},
        }
    elif route.method in ("POST", "PUT", "PATCH"):
        body = copy.deepcopy(model_schema)
        body["properties"] = {m: properties[m] for m in body_members}
        body["required"] = [m for m in model_schema.get("required", []) if m in body_members]
        body.pop("title", None)
        operation["requestBody"] = {
            "required": bool(body["required"]),
            "content": {"application/json": {"schema": body}},
        }
    success: dict[str, Any] = {"description": "Success"}
    if route.response is not None and route.status != 204:
        media = route.stream or "application/json"
        success["content"] = {media: {"schema": {"$ref": REF.format(model=route.response.__name__)}}}
        if route.stream:
            success["description"] = f"Success: a stream of {media}, one JSON object per line"
    responses = {str(route.status): success}
    for status, text in ERROR_STATUSES.items():
        responses[status] = {
            "description": text,
            "headers": {"x-amzn-ErrorType": {"schema": {"type": "string"}, "description": "the error code"}},
            "content": {"application/json": {"schema": {"$ref": REF.format(model="Error")}}},
        }
    operation["responses"] = responses
    if route.extension:
        operation["x-ember-extension"] = True
    return operation


def _schemas() -> dict[str, Any]:
    entries: list[tuple[type[BaseModel], Any]] = []
    for route in ROUTES:
        entries.append((route.request, "validation"))
        if route.response is not None:
            entries.append((route.response, "serialization"))
    _, top = models_json_schema(list(dict.fromkeys(entries)), ref_template=REF)
    schemas: dict[str, Any] = dict(top.get("$defs", {}))
    schemas["Error"] = ERROR_SCHEMA
    return schemas


def openapi_document(region: str = "us-east-1") -> dict[str, Any]:
    """The OpenAPI 3.1 document served at ``/openapi.json``."""
    schemas = _schemas()
    paths: dict[str, dict[str, Any]] = {}
    for route in ROUTES:
        paths.setdefault(route.path, {})[route.method.lower()] = _operation(route, schemas)
    paths["/healthz"] = {
        "get": {
            "operationId": "Healthz",
            "summary": "Liveness check",
            "security": [],
            "tags": ["Ember extensions"],
            "responses": {"200": {"description": "The server answers"}},
        }
    }
    paths["/openapi.json"] = {
        "get": {
            "operationId": "OpenApi",
            "summary": "This document",
            "security": [],
            "tags": ["Ember extensions"],
            "responses": {"200": {"description": "The OpenAPI document"}},
        }
    }
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Ember control plane (Lambda MicroVMs API 2025-09-09)",
            "version": EMBER_VERSION,
            "description": "Self-hosted implementation of the Lambda MicroVMs control plane: rest-json, SigV4. "
            f"ARNs use region {region}. Operations marked x-ember-extension are Ember's own.",
        },
        "paths": paths,
        "components": {
            "schemas": schemas,
            "securitySchemes": {
                "sigv4": {
                    "type": "apiKey",
                    "in": "header",
                    "name": "Authorization",
                    "description": SIGV4_DESCRIPTION,
                    "x-amazon-apigateway-authtype": "awsSigv4",
                },
            },
        },
        "security": [{"sigv4": []}],
    }
