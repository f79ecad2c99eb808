#!/usr/bin/env python3
"""check.py RENDERED.yaml --root REPO --mamochi BIN --overlay NAME: the rules
of deploy/k8s that a JSON schema cannot state, checked on one rendered overlay.

- Each KEDA ScaledObject: at least one replica, at most as many as its topic
  has partitions (services/events/src/topics.rs, the catalog), a kafka
  trigger on a group named with the settings' group prefix, and the
  lagThreshold the table in docs/kubernetes.md gives for that service.
- Each Deployment: readiness and liveness probes, CPU and memory requests, a
  memory limit, a non-root pod, a PodDisruptionBudget selecting it; no fixed
  replica count when an autoscaler owns it.
- Every command given to the platform's image is one `mamochi` accepts.
- The settings the pods get (ConfigMap and, where the overlay has one, the
  Secret) pass `mamochi config check`; values that come from Secrets created
  outside the manifests (CloudNativePG's database URL, production's seal key)
  are stood in for by well-formed placeholders.
Prints one line per broken rule and exits 1 if there is any.
"""

import argparse
import base64
import os
import pathlib
import re
import subprocess
import sys

import yaml


def partitions_by_topic(root):
    source = (root / "services/events/src/topics.rs").read_text()
    found = dict(re.findall(r'Topic::new\(\s*"([^"]+)",\s*(\d+),', source))
    if not found:
        sys.exit("no Topic::new(...) found in services/events/src/topics.rs")
    return {topic: int(count) for topic, count in found.items()}


def thresholds_in_docs(root):
    """service -> lagThreshold, from the table whose header has `lagThreshold`."""
    rows, header = {}, None
    for line in (root / "docs/kubernetes.md").read_text().splitlines():
        cells = [cell.strip().strip("`") for cell in line.strip().strip("|").split("|")]
        if not line.startswith("|"):
            header = None
        elif header is None and "lagThreshold" in cells:
            header = cells
        elif header is not None and not set(line) <= set("|-: "):
            row = dict(zip(header, cells))
            rows[row[header[0]]] = int(row["lagThreshold"].replace(",", ""))
    return rows


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("rendered", type=pathlib.Path)
    parser.add_argument("--root", type=pathlib.Path, required=True)
    parser.add_argument("--mamochi", required=True)
    parser.add_argument("--overlay", required=True)
    args = parser.parse_args()

    objects = [doc for doc in yaml.safe_load_all(args.rendered.read_text()) if doc]
    by_kind = {}
    for obj in objects:
        by_kind.setdefault(obj["kind"], []).append(obj)
    problems = []

    def fail(obj, problem):
        problems.append(f"{args.overlay}: {obj['kind']}/{obj['metadata']['name']}: {problem}")

    settings = {}
    for config_map in by_kind.get("ConfigMap", []):
        if config_map["metadata"]["name"].startswith("mamochi-settings"):
            settings.update(config_map.get("data", {}))
    prefix = settings.get("MAMOCHI__KAFKA__GROUP_PREFIX", "")

    partitions = partitions_by_topic(args.root)
    documented = thresholds_in_docs(args.root)
    scaled = set()
    for so in by_kind.get("ScaledObject", []):
        spec, name = so["spec"], so["metadata"]["name"]
        scaled.add(spec["scaleTargetRef"]["name"])
        if spec.get("minReplicaCount", 0) < 1:
            fail(so, "minReplicaCount must be at least 1 (a group needs a member)")
        for trigger in spec["triggers"]:
            meta = trigger["metadata"]
            if trigger["type"] != "kafka":
                fail(so, f"trigger type {trigger['type']} is not kafka")
                continue
            topic = meta["topic"]
            if topic not in partitions:
                fail(so, f"topic {topic} is not in the catalog (topics.rs)")
            elif spec.get("maxReplicaCount", 100) > partitions[topic]:
                fail(so, f"maxReplicaCount {spec.get('maxReplicaCount')} exceeds {topic}'s {partitions[topic]} partitions")
            if not meta["consumerGroup"].startswith(prefix) or meta["consumerGroup"] == prefix:
                fail(so, f"group {meta['consumerGroup']} does not carry the settings' prefix {prefix!r}")
            if documented.get(name) != int(meta["lagThreshold"]):
                fail(so, f"lagThreshold {meta['lagThreshold']} differs from docs/kubernetes.md ({documented.get(name)})")

    autoscaled = scaled | {hpa["spec"]["scaleTargetRef"]["name"] for hpa in by_kind.get("HorizontalPodAutoscaler", [])}
    budgets = [pdb["spec"]["selector"]["matchLabels"] for pdb in by_kind.get("PodDisruptionBudget", [])]
    for deployment in by_kind.get("Deployment", []):
        name = deployment["metadata"]["name"]
        pod = deployment["spec"]["template"]
        if name in autoscaled and "replicas" in deployment["spec"]:
            fail(deployment, "sets replicas although an autoscaler owns the count")
        if not pod["spec"].get("securityContext", {}).get("runAsNonRoot"):
            fail(deployment, "pod is not runAsNonRoot")
        for container in pod["spec"]["containers"]:
            for probe in ("readinessProbe", "livenessProbe"):
                if probe not in container:
                    fail(deployment, f"container {container['name']} has no {probe}")
            resources = container.get("resources", {})
            if not {"cpu", "memory"} <= set(resources.get("requests", {})) or "memory" not in resources.get("limits", {}):
                fail(deployment, f"container {container['name']} lacks CPU/memory requests or a memory limit")
        labels = pod["metadata"].get("labels", {})
        if name != "mailpit" and not any(budget.items() <= labels.items() for budget in budgets):
            fail(deployment, "no PodDisruptionBudget selects it")

    # Every command given to the platform's image is one the binary accepts
    # (clap rejects an unknown subcommand or service before it reads --help).
    for obj in by_kind.get("Deployment", []) + by_kind.get("Job", []):
        pod = obj["spec"]["template"]["spec"]
        for container in pod.get("initContainers", []) + pod["containers"]:
            if container["image"].split(":")[0].rsplit("/", 1)[-1] != "mamochi":
                continue
            command = [args.mamochi, *container.get("args", []), "--help"]
            if subprocess.run(command, capture_output=True).returncode != 0:
                fail(obj, f"container {container['name']}: `mamochi {' '.join(container.get('args', []))}` is not a command")

    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), **settings}
    for secret in by_kind.get("Secret", []):
        env.update({k: base64.b64decode(v).decode() for k, v in secret.get("data", {}).items()})
    env.setdefault("MAMOCHI__DATABASE__URL", "postgresql://mamochi:placeholder@mamochi-db-rw:5432/mamochi")
    env.setdefault("MAMOCHI__SECRETS__EMAIL_SEAL_KEY", os.urandom(32).hex())
    if env.get("MAMOCHI__PROFILE") == "production":
        # The relay's login, which production's Secret carries.
        env.setdefault("MAMOCHI__SMTP__USERNAME", "placeholder")
        env.setdefault("MAMOCHI__SMTP__PASSWORD", "placeholder")
    check = subprocess.run([args.mamochi, "config", "check"], env=env, capture_output=True, text=True)
    print(f"{args.overlay}: mamochi config check: {check.stdout.strip()}")
    if check.returncode != 0:
        problems.append(f"{args.overlay}: the settings fail `mamochi config check`:\n{check.stdout}{check.stderr}")

    for problem in problems:
        print(problem, file=sys.stderr)
    print(f"{args.overlay}: {len(objects)} objects, {len(by_kind.get('ScaledObject', []))} ScaledObjects, "
          f"{len(problems)} rule(s) broken")
    sys.exit(1 if problems else 0)


if __name__ == "__main__":
    main()
