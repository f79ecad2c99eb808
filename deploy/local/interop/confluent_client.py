#!/usr/bin/env python3
"""Confluent's official Python client, with its default settings, against
MAMOCHI's schema registry and Kafka: the proof that the registry works with
Confluent's clients unchanged (docs/registry.md, "Interoperability test").

Checks, each printed PASS or FAIL with what went wrong:
  1. register a new subject (unique per run), look it up, look up an
     equivalent spelling, test compatibility (compatible and incompatible,
     against the latest and against all versions), fetch it by id with and
     without a subject (also one that does not hold the id), read versions;
  2. AvroSerializer with auto.register.schemas=False and use.latest.version=False
     serializes a sale with the platform's own .avsc against the registered
     `mamochi.sales-value` subject; confluent_kafka's Producer writes it to a
     scratch topic and AvroDeserializer reads it back, its optional location
     (a union of null and a nested record) included;
  3. AvroDeserializer decodes one record (key and value) of every platform
     topic that has records: the newest of the last 20 per partition that
     decodes (other tests park deliberately broken records there), failing
     when none does;
  4. a registry this script starts on a free port with basic auth on (its own
     state topic) accepts the client with basic.auth.user.info, refuses it
     without or with a wrong password (401), and `mamochi schemas register`
     with the credentials in the registry URL succeeds, without them fails.

Everything created is removed at the end (the test subject, the scratch
topics, the started registry, killed by its PID). Exit status 1 if any check
failed.
"""

import argparse
import os
import secrets
import socket
import subprocess
import sys
import tempfile
import time
import traceback
import urllib.error
import urllib.request
import uuid

from confluent_kafka import Consumer, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic
from confluent_kafka.schema_registry import Schema, SchemaRegistryClient
from confluent_kafka.schema_registry.avro import AvroDeserializer, AvroSerializer
from confluent_kafka.schema_registry.error import SchemaRegistryError
from confluent_kafka.serialization import MessageField, SerializationContext

SALES_SUBJECT = "mamochi.sales-value"
# Topics of the platform whose records are not Avro.
NOT_AVRO = {"mamochi.dead-letters"}

failures = []


class Skipped(str):
    """A check's result meaning there was nothing to check (printed SKIP)."""


def check(name, action):
    """Runs one check; a raised exception or failed assert is a FAIL."""
    try:
        detail = action()
    except Exception as error:  # noqa: BLE001 - every failure is reported, none stops the run
        failures.append(name)
        print(f"FAIL  {name}: {type(error).__name__}: {error}")
        if os.environ.get("INTEROP_TRACE"):
            traceback.print_exc()
        return None
    label = "SKIP" if isinstance(detail, Skipped) else "PASS"
    print(f"{label}  {name}" + (f" ({detail})" if isinstance(detail, str) and detail else ""))
    return detail


def expect(condition, message):
    if not condition:
        raise AssertionError(message)


def client(url, **extra):
    """A fresh client (no cache shared with earlier checks), default settings."""
    return SchemaRegistryClient({"url": url, **extra})


def probe_schemas(namespace):
    v1 = (
        '{"type":"record","name":"Probe","namespace":"%s",'
        '"fields":[{"name":"id","type":"long"}]}' % namespace
    )
    # The same schema spelled another way: full name, type as an object.
    v1_spelled = (
        '{"type":"record","name":"%s.Probe",'
        '"fields":[{"name":"id","type":{"type":"long"}}]}' % namespace
    )
    v2 = (
        '{"type":"record","name":"Probe","namespace":"%s","fields":[{"name":"id","type":"long"},'
        '{"name":"note","type":"string","default":""}]}' % namespace
    )
    breaking = (
        '{"type":"record","name":"Probe","namespace":"%s","fields":[{"name":"id","type":"long"},'
        '{"name":"age","type":"int"}]}' % namespace
    )
    return v1, v1_spelled, v2, breaking


def registry_checks(url, run_id):
    """Section 1: the registry API as the client's methods use it."""
    subject = f"interop.{run_id}-value"
    v1, v1_spelled, v2, breaking = probe_schemas(f"cl.mamochi.interop.r{run_id}")
    state = {}

    def register():
        state["id"] = client(url).register_schema(subject, Schema(v1, "AVRO"))
        expect(isinstance(state["id"], int) and state["id"] > 0, f"id {state['id']!r}")
        return f"{subject} id {state['id']}"

    def lookup():
        found = client(url).lookup_schema(subject, Schema(v1, "AVRO"))
        expect(found.schema_id == state["id"], f"lookup id {found.schema_id} != {state['id']}")
        expect(found.version == 1, f"version {found.version}")
        expect(found.schema.schema_str == v1, "the text as registered")

    def lookup_spelled():
        found = client(url).lookup_schema(subject, Schema(v1_spelled, "AVRO"))
        expect(found.schema_id == state["id"], f"equivalent spelling got id {found.schema_id}")
        # The client answers lookups with the schema it sent; the registry's
        # stored text is read by id.
        stored = client(url).get_schema(found.schema_id).schema_str
        expect(stored == v1, f"the text first registered comes back, not {stored!r}")

    def compatibility():
        c = client(url)
        expect(c.test_compatibility(subject, Schema(v2, "AVRO")) is True, "v2 (field with default) compatible")
        expect(c.test_compatibility(subject, Schema(breaking, "AVRO")) is False, "field without default incompatible")
        expect(c.test_compatibility_all_versions(subject, Schema(v2, "AVRO")) is True, "v2 against all versions")
        expect(c.test_compatibility_all_versions(subject, Schema(breaking, "AVRO")) is False, "breaking against all")
        expect(c.test_compatibility(subject, Schema(v2, "AVRO"), version=1, verbose=True) is True, "verbose, v1")

    def get_schema_plain():
        schema = client(url).get_schema(state["id"])
        expect(schema.schema_str == v1, f"get_schema text {schema.schema_str!r}")

    def get_schema_with_subject():
        schema = client(url).get_schema(state["id"], subject_name=subject)
        expect(schema.schema_str == v1, "with its own subject")

    def get_schema_with_other_subject():
        schema = client(url).get_schema(state["id"], subject_name=SALES_SUBJECT)
        expect(schema.schema_str == v1, "with a subject that does not hold the id")

    def versions():
        c = client(url)
        latest = c.get_latest_version(subject)
        expect(latest.schema_id == state["id"] and latest.version == 1, f"latest {latest}")
        expect(c.get_versions(subject) == [1], "versions [1]")
        expect(subject in c.get_subjects(), "listed in subjects")

    check("register_schema on a new subject", register)
    if "id" not in state:
        return subject
    check("lookup_schema", lookup)
    check("lookup_schema with an equivalent spelling (same id, first text)", lookup_spelled)
    check("test_compatibility / test_compatibility_all_versions", compatibility)
    check("get_schema without subject", get_schema_plain)
    check("get_schema with its subject", get_schema_with_subject)
    check("get_schema with another subject", get_schema_with_other_subject)
    check("get_latest_version / get_versions / get_subjects", versions)
    return subject


def sale_record():
    now_ms = int(time.time() * 1000)
    return {
        "sale_id": str(uuid.uuid4()),
        "vendor_id": str(uuid.uuid4()),
        "quantity": 2,
        "unit_price_clp": 1500,
        "total_clp": 3000,
        "payment_method": "CASH",
        "occurred_at": now_ms,
        "recorded_at": now_ms,
        # The union's record branch, with its own optional field left null.
        "location": {"latitude": -33.4372, "longitude": -70.6506, "accuracy_m": None},
    }


def create_topic(admin, topic):
    futures = admin.create_topics([NewTopic(topic, num_partitions=1)], operation_timeout=30)
    for future in futures.values():
        future.result(timeout=60)


def delete_topics(admin, topics):
    if not topics:
        return
    for topic, future in admin.delete_topics(list(topics), operation_timeout=30).items():
        try:
            future.result(timeout=60)
        except Exception as error:  # noqa: BLE001 - cleanup reports, never fails the run
            print(f"note: could not delete scratch topic {topic}: {error}")


def consumer(bootstrap):
    return Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"mamochi-interop-{uuid.uuid4().hex}",
            "enable.auto.commit": False,
            "auto.offset.reset": "earliest",
        }
    )


def last_records(bootstrap, topic, partitions, per_partition=20, timeout_s=20.0):
    """The last few records of each non-empty partition (no group offsets used)."""
    c = consumer(bootstrap)
    try:
        wanted = {}
        assignment = []
        for partition in partitions:
            low, high = c.get_watermark_offsets(TopicPartition(topic, partition), timeout=10)
            if high > low:
                start = max(low, high - per_partition)
                assignment.append(TopicPartition(topic, partition, start))
                wanted[partition] = high
        if not assignment:
            return []
        c.assign(assignment)
        records = []
        deadline = time.monotonic() + timeout_s
        while wanted and time.monotonic() < deadline:
            message = c.poll(1.0)
            if message is None:
                continue
            if message.error():
                raise KafkaException(message.error())
            records.append(message)
            if message.offset() + 1 >= wanted.get(message.partition(), 0):
                wanted.pop(message.partition(), None)
        return records
    finally:
        c.close()


def serializer_checks(url, bootstrap, schemas_dir, admin, scratch_topics):
    """Section 2: AvroSerializer without auto-registration, Producer, AvroDeserializer."""
    with open(os.path.join(schemas_dir, "sale_recorded.avsc"), encoding="utf-8") as file:
        sale_schema = file.read()
    topic = f"interop.scratch.{uuid.uuid4().hex}"
    sale = sale_record()
    state = {}

    def serialize():
        sr = client(url)
        registered = sr.get_latest_version(SALES_SUBJECT)
        serializer = AvroSerializer(
            sr,
            sale_schema,
            conf={
                "auto.register.schemas": False,
                "use.latest.version": False,
                # The platform's subject, whatever the scratch topic is called.
                "subject.name.strategy": lambda ctx, record_name: SALES_SUBJECT,
            },
        )
        payload = serializer(sale, SerializationContext(topic, MessageField.VALUE))
        schema_id = int.from_bytes(payload[1:5], "big")
        expect(payload[0] == 0, f"magic byte {payload[0]}")
        # Any registered version of the subject that is this schema will do.
        ids = {sr.get_version(SALES_SUBJECT, v).schema_id for v in sr.get_versions(SALES_SUBJECT)}
        expect(schema_id in ids, f"schema id {schema_id} is not a version of {SALES_SUBJECT} {sorted(ids)}")
        state["payload"] = payload
        return f"schema id {schema_id}, latest of {SALES_SUBJECT} is id {registered.schema_id}"

    def produce():
        create_topic(admin, topic)
        scratch_topics.append(topic)
        delivered = []
        producer = Producer({"bootstrap.servers": bootstrap, "enable.idempotence": True})
        producer.produce(topic, key=sale["sale_id"].encode(), value=state["payload"],
                         on_delivery=lambda error, message: delivered.append(error))
        remaining = producer.flush(30)
        expect(remaining == 0, f"{remaining} records not delivered")
        expect(delivered == [None], f"delivery report {delivered}")
        return topic

    def read_back():
        records = last_records(bootstrap, topic, [0])
        expect(len(records) == 1, f"{len(records)} records in the scratch topic")
        deserializer = AvroDeserializer(client(url))
        value = deserializer(records[0].value(), SerializationContext(topic, MessageField.VALUE))
        for field in ("quantity", "unit_price_clp", "total_clp", "payment_method", "location"):
            expect(value.get(field) == sale[field], f"{field}: {value.get(field)!r} != {sale[field]!r}")
        expect(str(value["sale_id"]) == sale["sale_id"], "sale_id")

    check("AvroSerializer(auto.register.schemas=False) against mamochi.sales-value", serialize)
    if "payload" in state:
        if check("Producer writes the sale to a scratch topic", produce):
            check("AvroDeserializer reads the sale back", read_back)


def platform_topic_checks(url, bootstrap, admin):
    """Section 3: one record of every platform topic that has records."""
    subjects = set(client(url).get_subjects())
    metadata = admin.list_topics(timeout=30)
    topics = sorted(
        name for name in metadata.topics
        if name.startswith("mamochi.") and name not in NOT_AVRO and f"{name}-value" in subjects
    )
    decoded = []
    for topic in topics:
        partitions = list(metadata.topics[topic].partitions)

        def read_one(topic=topic, partitions=partitions):
            records = [r for r in last_records(bootstrap, topic, partitions) if r.value() is not None]
            if not records:
                return Skipped("no records")
            sr = client(url)
            # Other tests park deliberately broken records (poison) on these
            # topics; the newest record that decodes is the proof, and the
            # check fails only when none of the last ones does.
            problems = []
            for record in sorted(records, key=lambda r: r.timestamp()[1], reverse=True):
                try:
                    value = AvroDeserializer(sr)(record.value(), SerializationContext(topic, MessageField.VALUE))
                    expect(isinstance(value, dict) and value, f"value decoded to {value!r}")
                    if f"{topic}-key" in subjects and record.key() is not None:
                        key = AvroDeserializer(sr)(record.key(), SerializationContext(topic, MessageField.KEY))
                        expect(key is not None, "key decoded to None")
                except Exception as error:  # noqa: BLE001 - collected, reported if nothing decodes
                    problems.append(f"offset {record.offset()}: {error}")
                    continue
                decoded.append(topic)
                schema_id = int.from_bytes(record.value()[1:5], "big")
                skipped = f", {len(problems)} newer undecodable skipped" if problems else ""
                return f"partition {record.partition()} offset {record.offset()}, schema id {schema_id}{skipped}"
            raise AssertionError(f"none of the last {len(records)} records decodes: {problems[:3]}")

        check(f"AvroDeserializer decodes {topic}", read_one)

    def some_topic_decoded():
        expect(decoded, f"no platform topic had records to decode (looked at {topics})")
        return f"{len(decoded)} of {len(topics)} platform topics had records"

    check("at least one platform topic decoded", some_topic_decoded)


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_until_up(url, process, log_path, timeout_s=120):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the registry exited with {process.returncode}; log: {tail(log_path)}")
        try:
            with urllib.request.urlopen(f"{url}/healthz", timeout=2) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError, OSError):
            pass
        time.sleep(0.25)
    raise TimeoutError(f"the registry did not answer within {timeout_s}s; log: {tail(log_path)}")


def tail(path, lines=15):
    try:
        with open(path, encoding="utf-8", errors="replace") as file:
            return "".join(file.readlines()[-lines:])
    except OSError:
        return "(no log)"


def auth_checks(mamochi, schemas_dir, bootstrap, admin, scratch_topics):
    """Section 4: a registry with basic auth on, started and stopped here."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    user, password = "interop", secrets.token_urlsafe(16)
    topic = f"_schemas-interop-{uuid.uuid4().hex}"
    log = tempfile.NamedTemporaryFile(prefix="interop-registry-", suffix=".log", delete=False)
    env = dict(os.environ)
    env.update({
        "MAMOCHI__REGISTRY__LISTEN": f"127.0.0.1:{port}",
        "MAMOCHI__REGISTRY__TOPIC": topic,
        "MAMOCHI__REGISTRY__BASIC_AUTH_USERS": f"{user}:{password}",
        "MAMOCHI__KAFKA__BOOTSTRAP_SERVERS": bootstrap,
    })
    process = subprocess.Popen([mamochi, "registry"], env=env, stdout=log, stderr=subprocess.STDOUT)
    # The registry also creates its writer-election topic, named after its
    # state topic (services/registry/src/election.rs, ElectionNames).
    scratch_topics.extend([topic, f"{topic}-writer"])
    try:
        if not check(f"registry with basic auth starts on port {port}",
                     lambda: wait_until_up(url, process, log.name) or f"pid {process.pid}"):
            return
        v1, _, _, _ = probe_schemas("cl.mamochi.interop.auth")

        def with_credentials():
            sr = client(url, **{"basic.auth.user.info": f"{user}:{password}"})
            schema_id = sr.register_schema("interop.auth-value", Schema(v1, "AVRO"))
            expect(sr.get_schema(schema_id).schema_str == v1, "schema read back")
            return f"id {schema_id}"

        def refused(**extra):
            def action():
                try:
                    client(url, **extra).get_subjects()
                except SchemaRegistryError as error:
                    expect(error.http_status_code == 401, f"HTTP {error.http_status_code}")
                    return "401"
                raise AssertionError("the registry answered without valid credentials")
            return action

        def mamochi_schemas(credentials, should_pass):
            def action():
                registry_url = f"http://{credentials}@127.0.0.1:{port}" if credentials else url
                result = subprocess.run(
                    [mamochi, "schemas", "register", "--dir", schemas_dir],
                    env={**env, "MAMOCHI__REGISTRY__URL": registry_url},
                    capture_output=True, text=True, timeout=120,
                )
                output = (result.stdout + result.stderr).strip()
                expect((result.returncode == 0) == should_pass, f"exit {result.returncode}: {output[-400:]}")
                expect(password not in output, "the password appears in mamochi's output")
                return f"exit {result.returncode}"
            return action

        check("basic.auth.user.info is accepted", with_credentials)
        check("no credentials are refused with 401", refused())
        check("a wrong password is refused with 401", refused(**{"basic.auth.user.info": f"{user}:wrong"}))
        check("mamochi schemas register with credentials in registry.url",
              mamochi_schemas(f"{user}:{urllib.request.quote(password, safe='')}", True))
        check("mamochi schemas register without credentials fails", mamochi_schemas(None, False))
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()
        os.unlink(log.name)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--registry-url", default=os.environ.get("MAMOCHI__REGISTRY__URL", "http://127.0.0.1:8081"))
    parser.add_argument("--bootstrap", default=os.environ.get("MAMOCHI__KAFKA__BOOTSTRAP_SERVERS", "127.0.0.1:9092"))
    parser.add_argument("--mamochi", required=True, help="the mamochi binary (runs the basic-auth registry)")
    parser.add_argument("--schemas", required=True, help="the platform's schemas/ directory")
    args = parser.parse_args()

    url = args.registry_url.rstrip("/")
    run_id = uuid.uuid4().hex[:12]
    admin = AdminClient({"bootstrap.servers": args.bootstrap})
    scratch_topics = []
    print(f"Confluent's Python client against {url} and Kafka {args.bootstrap} (run {run_id})")
    subject = None
    sections = [
        ("registry API", lambda: registry_checks(url, run_id)),
        ("serializer and producer", lambda: serializer_checks(url, args.bootstrap, args.schemas, admin, scratch_topics)),
        ("platform topics", lambda: platform_topic_checks(url, args.bootstrap, admin)),
        ("basic auth", lambda: auth_checks(args.mamochi, args.schemas, args.bootstrap, admin, scratch_topics)),
    ]
    try:
        for name, section in sections:
            print(f"-- {name}")
            # A section that cannot even start (registry unreachable) is one
            # failure, and the next sections still run.
            result = check(f"{name}: runs to the end", section)
            if name == "registry API":
                subject = result
    finally:
        if subject:
            try:
                sr = client(url)
                sr.delete_subject(subject)
                sr.delete_subject(subject, permanent=True)
            except SchemaRegistryError as error:
                if error.http_status_code != 404:
                    print(f"note: could not delete {subject}: {error}")
        delete_topics(admin, scratch_topics)

    if failures:
        print(f"\n{len(failures)} check(s) failed: " + "; ".join(failures))
        return 1
    print("\nall checks passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
