#!/usr/bin/env python3
"""k8s_standalone.py SCHEMA_DIR KIND_FILE... --out DIR: the Kubernetes kinds'
JSON schemas of one version, as kubernetes-validate ships them (a directory
such as `v1.30.0-local-strict`: one file per kind whose `$ref`s point into
that directory's `_definitions.json`), written as standalone files, every
`$ref` replaced by the definition it names, so kubeconform reads each file
alone with nothing to resolve (its `-standalone-strict` layout).

A `$ref` is replaced whole, as jsonref does in kubeconform's
openapi2jsonschema: keywords beside it (a field's own description) give way
to the definition's. The root's `$id` (a kubernetes.io address that serves
nothing) is dropped, so kubeconform's messages name the local file. Nothing
else changes: the strictness (`additionalProperties: false`), nullable types
and `$schema` are kubernetes-validate's. A recursive definition cannot be
inlined and stops the run, naming it.
"""

import argparse
import json
import pathlib
import sys


def inline(node, definitions, seen=()):
    """node with every `$ref` replaced by its (recursively inlined) target."""
    if isinstance(node, dict):
        if "$ref" in node:
            name = node["$ref"].rsplit("/", 1)[-1]
            if name in seen:
                sys.exit(f"{name} refers to itself: it cannot be made standalone")
            if name not in definitions:
                sys.exit(f"{node['$ref']}: no such definition")
            return inline(definitions[name], definitions, seen + (name,))
        return {key: inline(value, definitions, seen) for key, value in node.items()}
    if isinstance(node, list):
        return [inline(item, definitions, seen) for item in node]
    return node


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("schemas", type=pathlib.Path)
    parser.add_argument("kinds", nargs="+", help="file names without .json, e.g. deployment-apps-v1")
    parser.add_argument("--out", required=True, type=pathlib.Path)
    args = parser.parse_args()
    definitions = json.loads((args.schemas / "_definitions.json").read_text())["$defs"]
    args.out.mkdir(parents=True, exist_ok=True)
    for kind in args.kinds:
        schema = inline(json.loads((args.schemas / f"{kind}.json").read_text()), definitions)
        schema.pop("$id", None)
        path = args.out / f"{kind}.json"
        path.write_text(json.dumps(schema, indent=2) + "\n")
        print(path)


if __name__ == "__main__":
    main()
