"""Validate JSON against the OCI image-spec schemas in ``../shared/spec/oci-image-spec``.

The schema files ``$ref`` each other by relative file name while their ``id`` URLs have two
bases, so every file is registered under both bases (and its own id); see that dir's README.
Imported by the oci, image and transports tests (by path: tests are not a package).
"""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Any

SPEC = Path(__file__).resolve().parents[4] / "shared" / "spec" / "oci-image-spec"
BASES = ("https://opencontainers.org/schema/", "https://opencontainers.org/schema/image/")
SCHEMAS = {
    "manifest": "image-manifest-schema.json",
    "index": "image-index-schema.json",
    "config": "config-schema.json",
    "descriptor": "content-descriptor.json",
    "layout": "image-layout-schema.json",
}


@functools.cache
def _validators() -> dict[str, Any]:
    import jsonschema
    from referencing import Registry, Resource
    from referencing.jsonschema import DRAFT4

    registry: Registry[Any] = Registry()
    docs = {}
    for path in SPEC.glob("*.json"):
        doc = json.loads(path.read_text())
        docs[path.name] = doc
        res = Resource.from_contents(doc, default_specification=DRAFT4)
        uris = [base + path.name for base in BASES]
        if "id" in doc:
            uris.append(doc["id"])
        for uri in uris:
            registry = registry.with_resource(uri, res)
    return {
        kind: jsonschema.Draft4Validator(docs[name], registry=registry)
        for kind, name in SCHEMAS.items()
    }


def errors(kind: str, doc: Any) -> list[str]:
    """Schema errors for ``doc`` as ``kind`` (manifest, index, config, descriptor, layout)."""
    return [e.message for e in _validators()[kind].iter_errors(doc)]


def check(kind: str, doc: Any) -> None:
    problems = errors(kind, doc)
    assert not problems, problems
