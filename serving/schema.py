"""The read API's response models and the OpenAPI description of its /v1 routes.

The /v1 routes are served by a raw ASGI handler (serving/api.py) for speed, so FastAPI cannot
derive their description from a signature: it is written here from the same models, and
merged into FastAPI's /openapi.json and /docs."""

from __future__ import annotations

from typing import Any, Literal

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from pydantic import BaseModel, Field
from pydantic.json_schema import models_json_schema

MAX_LIMIT = 100
MAX_OFFSET = 10_000
API_KEY_HEADER = "X-API-Key"


class Track(BaseModel):
    rank: int = Field(ge=1, description="1-based position in the full list.")
    score: float = Field(description="The model's score (popular list: share of users).")
    track_id: str
    title: str | None = Field(description="Current catalog title; null if not in the catalog.")
    artist_id: str | None
    artist_name: str | None


class RecommendedTrack(Track):
    source: Literal["model", "fallback", "popular"] = Field(
        description="model: the model's pick; fallback: training's filler for a short list; "
        "popular: from the version's popular list."
    )


GENERATED_AT = Field(
    description="When training produced this model version's lists (ISO 8601, UTC); null if "
    "the version has no registry row."
)
PUBLISHED_AT = Field(description="When publish loaded this version into Redis (ISO 8601, UTC).")


class Recommendations(BaseModel):
    user_id: str
    experiment: str | None = Field(
        description="The running experiment the user is in (null: none); see `arm`."
    )
    arm: str | None = Field(
        description="The experiment's arm the user is assigned to, whose model version served "
        "this list (null: no experiment)."
    )
    model_version: str
    generated_at: str | None = GENERATED_AT
    published_at: str | None = PUBLISHED_AT
    fallback: bool = Field(
        description="true: the user has no list in this model version; these are its popular "
        "tracks."
    )
    total: int = Field(description="Length of the full list (before limit and offset).")
    items: list[RecommendedTrack]


class SimilarTracks(BaseModel):
    track_id: str
    model_version: str
    generated_at: str | None = GENERATED_AT
    published_at: str | None = PUBLISHED_AT
    total: int = Field(description="Length of the full list (before limit).")
    items: list[Track]


class ErrorBody(BaseModel):
    error: str = Field(description="A stable code, e.g. invalid_parameter, rate_limited.")
    message: str = Field(description="What went wrong and what to do, for people.")
    parameter: str | None = Field(None, description="The request parameter at fault, if any.")


class Health(BaseModel):
    status: Literal["ok"]


class Ready(BaseModel):
    status: Literal["ready"]
    model_version: str
    generated_at: str | None = GENERATED_AT
    published_at: str | None = PUBLISHED_AT


def _ref(model: type[BaseModel]) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{model.__name__}"}


def _error(description: str, *, retry_after: bool = False) -> dict[str, Any]:
    response: dict[str, Any] = {
        "description": description,
        "content": {"application/json": {"schema": _ref(ErrorBody)}},
    }
    if retry_after:
        response["headers"] = {
            "Retry-After": {"description": "Seconds to wait.", "schema": {"type": "integer"}}
        }
    return response


def _id_parameter(name: str, what: str) -> dict[str, Any]:
    return {
        "name": name,
        "in": "path",
        "required": True,
        "description": f"The {what} id (a UUID).",
        "schema": {"type": "string", "format": "uuid"},
    }


LIMIT = {
    "name": "limit",
    "in": "query",
    "required": False,
    "description": f"Items to return, 1 to {MAX_LIMIT}. Omitted: the whole list.",
    "schema": {"type": "integer", "minimum": 1, "maximum": MAX_LIMIT},
}
OFFSET = {
    "name": "offset",
    "in": "query",
    "required": False,
    "description": f"Items to skip, 0 to {MAX_OFFSET}.",
    "schema": {"type": "integer", "minimum": 0, "maximum": MAX_OFFSET, "default": 0},
}


def _operation(
    operation_id: str, summary: str, parameters: list[dict], ok: type[BaseModel], *, not_found: bool
) -> dict[str, Any]:
    responses: dict[str, Any] = {
        "200": {"description": "The list.", "content": {"application/json": {"schema": _ref(ok)}}},
        "401": _error(f"Missing or unknown API key ({API_KEY_HEADER} header)."),
        "422": _error("A parameter is invalid; `parameter` names it."),
        "429": _error(
            "The API key's rate limit is exhausted, or this client address sent too many "
            "unknown keys.",
            retry_after=True,
        ),
        "500": _error("The stored document for this id is corrupt (`invalid_document`)."),
        "503": _error("Redis is unreachable or no model version is published.", retry_after=True),
    }
    if not_found:
        responses["404"] = _error("The model version has no list for this id.")
    return {
        "get": {
            "operationId": operation_id,
            "summary": summary,
            "tags": ["v1"],
            "security": [{"ApiKey": []}],
            "parameters": parameters,
            "responses": dict(sorted(responses.items())),
        }
    }


V1_PATHS = {
    "/v1/users/{user_id}/recommendations": _operation(
        "recommendations",
        "A user's recommendations, with track metadata; the popular list if the user has none.",
        [_id_parameter("user_id", "user"), LIMIT, OFFSET],
        Recommendations,
        not_found=False,
    ),
    "/v1/tracks/{track_id}/similar": _operation(
        "similar_tracks",
        "Tracks similar to a track, with track metadata.",
        [_id_parameter("track_id", "track"), LIMIT],
        SimilarTracks,
        not_found=True,
    ),
}


def openapi(app: FastAPI) -> dict[str, Any]:
    """FastAPI's description of its own routes plus the /v1 routes (built once)."""
    if app.openapi_schema is None:
        schema = get_openapi(
            title=app.title, version=app.version, description=app.description, routes=app.routes
        )
        _, definitions = models_json_schema(
            [(m, "serialization") for m in (Recommendations, SimilarTracks, ErrorBody)],
            ref_template="#/components/schemas/{model}",
        )
        components = schema.setdefault("components", {})
        components.setdefault("schemas", {}).update(definitions["$defs"])
        components["securitySchemes"] = {
            "ApiKey": {"type": "apiKey", "in": "header", "name": API_KEY_HEADER}
        }
        schema["paths"] = {**V1_PATHS, **schema["paths"]}
        app.openapi_schema = schema
    return app.openapi_schema
