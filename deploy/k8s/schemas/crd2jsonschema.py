#!/usr/bin/env python3
"""crd2jsonschema.py CRD.yaml... --out DIR: each served version of each
CustomResourceDefinition as a strict JSON schema, in the layout kubeconform's
`-schema-location '{{ .Group }}/{{ .ResourceKind }}_{{ .ResourceAPIVersion }}.json'`
reads (DIR/<group>/<kind>_<version>.json, lower case).

The conversion follows kubeconform's openapi2jsonschema.py, so the result is
what kubeconform's own tool would write:
- strict: every object that lists `properties` and says nothing about
  `additionalProperties` refuses unknown keys (a misspelled field fails), the
  root included (openapi2jsonschema's DENY_ROOT_ADDITIONAL_PROPERTIES);
- `format: int-or-string` and `x-kubernetes-int-or-string: true` become
  "a string or an integer", as the API server reads them.
An object marked `x-kubernetes-preserve-unknown-fields` without properties
(Strimzi's `config` maps) keeps accepting any key, as the API server does.
Output is sorted and indented, so a regeneration diff shows only real changes.
"""

import argparse
import json
import pathlib
import sys

import yaml


def strict(node):
    """Adds additionalProperties: false wherever properties are listed."""
    if isinstance(node, dict):
        if "properties" in node and "additionalProperties" not in node:
            if not node.get("x-kubernetes-preserve-unknown-fields"):
                node["additionalProperties"] = False
        for key, value in node.items():
            if key == "properties" and isinstance(value, dict):
                # The keys here are field names, not schema keywords: recurse
                # into each field's schema only.
                for field in value.values():
                    strict(field)
            else:
                strict(value)
    elif isinstance(node, list):
        for item in node:
            strict(item)
    return node


def int_or_string(node):
    """Replaces int-or-string fields by an explicit oneOf."""
    if isinstance(node, dict):
        if node.get("format") == "int-or-string" or node.get("x-kubernetes-int-or-string") is True:
            kept = {k: v for k, v in node.items() if k in ("description", "pattern")}
            return {**kept, "oneOf": [{"type": "string"}, {"type": "integer"}]}
        return {key: int_or_string(value) for key, value in node.items()}
    if isinstance(node, list):
        return [int_or_string(item) for item in node]
    return node


def convert(crd, out):
    written = []
    group = crd["spec"]["group"]
    kind = crd["spec"]["names"]["kind"]
    for version in crd["spec"]["versions"]:
        if not version.get("served", True):
            continue
        schema = version.get("schema", {}).get("openAPIV3Schema")
        if schema is None:
            sys.exit(f"{kind} {version['name']}: no openAPIV3Schema")
        schema = strict(int_or_string(schema))
        schema["$schema"] = "http://json-schema.org/draft-07/schema#"
        path = out / group / f"{kind.lower()}_{version['name'].lower()}.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(schema, indent=2, sort_keys=True) + "\n")
        written.append(path)
    return written


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("crds", nargs="+", type=pathlib.Path)
    parser.add_argument("--out", required=True, type=pathlib.Path)
    args = parser.parse_args()
    for file in args.crds:
        for document in yaml.safe_load_all(file.read_text()):
            if document and document.get("kind") == "CustomResourceDefinition":
                for path in convert(document, args.out):
                    print(path)


if __name__ == "__main__":
    main()
