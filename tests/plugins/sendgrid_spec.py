"""SendGrid's API contract for the fake SendGrid: the OpenAPI descriptions (request
bodies of Mail Send and scheduled sends, parameters of the suppression GETs and of
GET /v3/categories/stats, and that endpoint's answer) and the
documented Mail Send limits they do not express (../shared/sendgrid/README.md).
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
SHARED_SPEC_DIR = REPO.parent / "shared" / "sendgrid"
BUNDLED_SPEC_DIR = REPO / "tests" / "data" / "sendgrid"

RESERVED_HEADERS = {
    "x-sg-id", "x-sg-eid", "received", "dkim-signature", "content-type",
    "content-transfer-encoding", "to", "from", "subject", "reply-to", "cc", "bcc",
}
MAX_BODY = 30 * 1024 * 1024
MAX_RECIPIENTS = 1000
MAX_ARGS_BYTES = 10_000
MAX_CATEGORIES = 10
MAX_CATEGORY_CHARS = 255
MAX_AHEAD = 72 * 3600


def spec_dir() -> Path:
    """../shared/sendgrid when present, else the bundled copies."""
    # No skip needed: the repository ships copies of these files (tests/data/sendgrid),
    # and test_send_requests checks they match ../shared/sendgrid where that exists.
    if (SHARED_SPEC_DIR / "tsg_mail_v3.json").is_file():
        return SHARED_SPEC_DIR
    return BUNDLED_SPEC_DIR


@cache
def validators() -> dict[str, Any]:
    from jsonschema import Draft202012Validator, FormatChecker

    def validator(file: str, pointer: str) -> Any:
        document = json.loads((spec_dir() / file).read_text(encoding="utf-8"))
        schema = {**document, "$ref": pointer}
        return Draft202012Validator(schema, format_checker=FormatChecker())

    return {
        "mail": validator(
            "tsg_mail_v3.json",
            "#/components/requestBodies/PostMailSend/content/application~1json/schema",
        ),
        "scheduled": validator(
            "tsg_scheduled_sends_v3.json",
            "#/paths/~1v3~1user~1scheduled_sends/post/requestBody/content/application~1json/schema",
        ),
    }


CATEGORY_STATS_FILE = "tsg_categories_stats_v3.json"  # always the bundled excerpt
CATEGORY_STATS_PATH = "/v3/categories/stats"


def _operations_of(document: dict[str, Any], paths: tuple[str, ...]
                   ) -> dict[str, list[dict[str, Any]]]:
    shared = document["components"]["parameters"]
    schemas = document["components"].get("schemas", {})

    def resolve(parameter: dict[str, Any]) -> dict[str, Any]:
        ref = parameter.get("$ref")
        parameter = shared[ref.rsplit("/", 1)[1]] if ref else parameter
        schema_ref = parameter.get("schema", {}).get("$ref", "")
        if schema_ref.startswith("#/components/schemas/"):
            parameter = {**parameter, "schema": schemas[schema_ref.rsplit("/", 1)[1]]}
        return parameter

    operations = {}
    for path in paths:
        item = document["paths"][path]
        operations[path] = [resolve(p) for p in item.get("parameters", []) +
                            item["get"].get("parameters", [])]
    return operations


@cache
def _get_operations() -> dict[str, list[dict[str, Any]]]:
    """Path template → the resolved parameters of its GET, from tsg_suppressions_v3.json
    (and, for GET /v3/categories/stats, from the bundled tsg_categories_stats_v3.json)."""
    document = json.loads((spec_dir() / "tsg_suppressions_v3.json").read_text(encoding="utf-8"))
    operations = _operations_of(document, (
        "/v3/suppression/bounces", "/v3/suppression/spam_reports",
        "/v3/suppression/unsubscribes", "/v3/asm/groups/{group_id}/suppressions"))
    stats = json.loads((BUNDLED_SPEC_DIR / CATEGORY_STATS_FILE).read_text(encoding="utf-8"))
    operations.update(_operations_of(stats, (CATEGORY_STATS_PATH,)))
    return operations


@cache
def category_stats_response_validator() -> Any:
    """Checks a GET /v3/categories/stats answer against the 200 response's schema."""
    from jsonschema import Draft202012Validator

    document = json.loads((BUNDLED_SPEC_DIR / CATEGORY_STATS_FILE).read_text(encoding="utf-8"))
    pointer = ("#/paths/~1v3~1categories~1stats/get/responses/200/content/"
               "application~1json/schema")
    return Draft202012Validator({**document, "$ref": pointer})


def _parameter_value(text: str, schema: dict[str, Any]) -> Any:
    """A query/path value as the type its schema names (ValueError if it is not one)."""
    if schema.get("type") == "integer":
        if not text.lstrip("-").isdigit():
            raise ValueError(f"{text!r} is not an integer")
        return int(text)
    return text


def parameter_errors(template: str, path_values: dict[str, str], query: dict[str, list[str]],
                     headers: Any) -> list[dict]:
    """What is wrong with a GET's parameters, by the OpenAPI description of ``template``."""
    from jsonschema import Draft202012Validator

    errors: list[dict] = []
    parameters = _get_operations()[template]
    known = {p["name"] for p in parameters if p["in"] == "query"}
    for name in query:
        if name not in known:
            errors.append({"field": name, "message": f"unknown query parameter {name!r}"})
    for parameter in parameters:
        name, where, schema = parameter["name"], parameter["in"], parameter.get("schema", {})
        if where == "header":
            value = headers.get(name)
            values = [] if value is None else [value]
        elif where == "path":
            values = [path_values[name]] if name in path_values else []
        else:
            values = query.get(name, [])
        if parameter.get("required") and not values:
            errors.append({"field": name, "message": f"{name} ({where}) is required"})
        if schema.get("type") == "array" and parameter.get("explode", True):
            # A repeatable parameter (categories=a&categories=b): check the list as a whole.
            errors += [{"field": name, "message": e.message}
                       for e in Draft202012Validator(schema).iter_errors(values)]
            continue
        if where == "query" and len(values) > 1:
            errors.append({"field": name, "message": f"{name} given {len(values)} times"})
        for text in values:
            try:
                value = _parameter_value(text, schema)
            except ValueError as exc:
                errors.append({"field": name, "message": str(exc)})
                continue
            errors += [{"field": name, "message": e.message}
                       for e in Draft202012Validator(schema).iter_errors(value)]
    return errors


def _size(value: Any) -> int:
    return len(json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode())


def limit_errors(body: dict[str, Any], known_batches: set[str], now: float) -> list[dict]:
    """The documented Mail Send limits the OpenAPI schema does not express."""
    errors: list[dict] = []

    def error(field_name: str, message: str) -> None:
        errors.append({"field": field_name, "message": message, "help": None})

    people = body.get("personalizations") or []
    if len(people) > MAX_RECIPIENTS:
        error("personalizations", "The personalizations field must have at most 1000 items.")
    total = sum(len(p.get(k) or []) for p in people for k in ("to", "cc", "bcc"))
    if total > MAX_RECIPIENTS:
        error("personalizations", f"{total} recipients; at most 1000 per request.")

    def check_headers(where: str, headers: dict) -> None:
        for name, value in headers.items():
            if name.lower() in RESERVED_HEADERS:
                error(where, f"The header {name} is reserved and cannot be set.")
            if not isinstance(value, str):
                error(where, f"Header {name} must be a string.")

    def check_send_at(where: str, value: Any) -> None:
        if isinstance(value, int) and value > now + MAX_AHEAD:
            error(where, "send_at cannot be more than 72 hours in the future.")

    for i, person in enumerate(people):
        subs = person.get("substitutions") or {}
        if sum(len(k.encode()) + len(str(v).encode()) for k, v in subs.items()) > MAX_ARGS_BYTES:
            error(f"personalizations.{i}.substitutions", "Substitutions exceed 10,000 bytes.")
        if _size(person.get("custom_args") or {}) > MAX_ARGS_BYTES:
            error(f"personalizations.{i}.custom_args", "custom_args exceed 10,000 bytes.")
        for key, value in (person.get("custom_args") or {}).items():
            if not isinstance(value, str):
                error(f"personalizations.{i}.custom_args.{key}", "Values must be strings.")
        check_headers(f"personalizations.{i}.headers", person.get("headers") or {})
        check_send_at(f"personalizations.{i}.send_at", person.get("send_at"))
        if not person.get("to"):
            error(f"personalizations.{i}.to", "At least one recipient is required.")
    check_headers("headers", body.get("headers") or {})
    check_send_at("send_at", body.get("send_at"))
    custom_args = body.get("custom_args") or {}
    if _size(custom_args) > MAX_ARGS_BYTES:
        error("custom_args", "custom_args exceed 10,000 bytes.")
    for key, value in custom_args.items():
        if not isinstance(value, str):
            error(f"custom_args.{key}", "Values must be strings.")
    categories = body.get("categories") or []
    if len(categories) > MAX_CATEGORIES:
        error("categories", "At most 10 categories.")
    if len(set(categories)) != len(categories):
        error("categories", "Categories must be unique.")
    for category in categories:
        if len(category) > MAX_CATEGORY_CHARS:
            error("categories", "A category may have at most 255 characters.")
    types = [c.get("type") for c in body.get("content") or []]
    if "text/plain" in types and types[0] != "text/plain":
        error("content", "text/plain must come first.")
    if not body.get("template_id"):
        if not types:
            error("content", "Unless a template is used, content is required.")
        if not body.get("subject") and not all(p.get("subject") for p in people):
            error("subject", "The subject is required.")
    if body.get("batch_id") is not None and body["batch_id"] not in known_batches:
        error("batch_id", "The batch id is not valid.")
    if body.get("batch_id") is not None and "send_at" not in body:
        error("send_at", "A batch_id needs send_at.")
    return errors
