//! Unit tests of the in-memory state: plans applied in order, as the log reader would.

use super::*;
use crate::kafka_log::ConfigValue;

const V1: &str = r#"{"type":"record","name":"User","fields":[{"name":"id","type":"long"}]}"#;
const V2: &str = r#"{"type":"record","name":"User","fields":[{"name":"id","type":"long"},{"name":"email","type":"string","default":""}]}"#;
const BREAKING: &str =
    r#"{"type":"record","name":"User","fields":[{"name":"id","type":"long"},{"name":"age","type":"int"}]}"#;

fn avro(text: &str) -> AvroSchema {
    AvroSchema::parse(text).expect("valid schema")
}

/// Plans and applies a registration, as a request followed by the reader would.
fn register(store: &mut Store, subject: &str, text: &str) -> Result<u32, ApiError> {
    let plan = store.plan_register(subject, &avro(text))?;
    apply_all(store, plan.records);
    Ok(plan.outcome)
}

fn set_level(store: &mut Store, subject: Option<&str>, level: CompatibilityLevel) {
    let records = store.plan_set_config(subject, level).records;
    apply_all(store, records);
}

fn apply_all(store: &mut Store, records: Vec<LogRecord>) {
    for record in records {
        store.apply(record);
    }
}

#[test]
fn registering_twice_returns_the_same_id_and_writes_nothing() {
    let mut store = Store::default();
    let first = register(&mut store, "users", V1).expect("registered");

    let again = store.plan_register("users", &avro(&format!("  {V1}\n"))).expect("planned");

    assert_eq!(again.outcome, first);
    assert!(again.records.is_empty());
}

#[test]
fn the_same_schema_under_another_subject_reuses_its_id_and_text() {
    let mut store = Store::default();
    let id = register(&mut store, "a", V1).expect("a");

    let reformatted = V1.replace(',', ", ");
    let other = register(&mut store, "b", &reformatted).expect("b");

    assert_eq!(other, id);
    let stored = store.version("b", VersionSpec::Latest, false).expect("b's version");
    assert_eq!(stored.entry.schema, V1, "one id, one text");
    assert_eq!(register(&mut store, "c", V2).expect("c"), id + 1);
}

#[test]
fn versions_count_up_and_an_incompatible_schema_is_refused() {
    let mut store = Store::default();
    register(&mut store, "users", V1).expect("v1");
    register(&mut store, "users", V2).expect("v2");

    let refused = register(&mut store, "users", BREAKING).expect_err("incompatible");

    assert_eq!(store.versions("users", false).expect("versions"), vec![1, 2]);
    assert_eq!(refused.error_code(), 409);
    assert!(refused.to_string().contains("'age'"), "{refused}");
}

#[test]
fn soft_then_permanent_delete_of_a_version() {
    let mut store = Store::default();
    register(&mut store, "users", V1).expect("v1");
    register(&mut store, "users", V2).expect("v2");

    let too_early = store.plan_delete_version("users", VersionSpec::Number(1), true).expect_err("not soft-deleted");
    let soft = store.plan_delete_version("users", VersionSpec::Number(1), false).expect("soft");
    apply_all(&mut store, soft.records);
    let twice = store.plan_delete_version("users", VersionSpec::Number(1), false).expect_err("already");
    let hard = store.plan_delete_version("users", VersionSpec::Number(1), true).expect("permanent");
    apply_all(&mut store, hard.records);

    assert_eq!(too_early.error_code(), 40407);
    assert_eq!(twice.error_code(), 40406);
    assert_eq!(store.versions("users", true).expect("versions"), vec![2]);
    assert_eq!(store.schema_by_id(1).map(|entry| entry.id), None, "nothing serves id 1 any more");
}

#[test]
fn a_soft_deleted_schema_still_serves_its_id() {
    let mut store = Store::default();
    let id = register(&mut store, "users", V1).expect("v1");

    let plan = store.plan_delete_subject("users", false).expect("soft delete");
    apply_all(&mut store, plan.records);

    assert_eq!(plan.outcome, vec![1]);
    assert!(store.subjects(false).is_empty());
    assert_eq!(store.subjects(true), vec!["users"]);
    assert_eq!(store.schema_by_id(id).map(|entry| entry.schema.as_str()), Some(V1));
}

#[test]
fn deleting_a_subject_follows_confluents_two_steps() {
    let mut store = Store::default();
    register(&mut store, "users", V1).expect("v1");
    set_level(&mut store, Some("users"), CompatibilityLevel::Full);

    let too_early = store.plan_delete_subject("users", true).expect_err("not soft-deleted");
    let soft = store.plan_delete_subject("users", false).expect("soft");
    apply_all(&mut store, soft.records);
    let again = store.plan_delete_subject("users", false).expect_err("already soft-deleted");
    let hard = store.plan_delete_subject("users", true).expect("permanent");
    apply_all(&mut store, hard.records);

    assert_eq!(too_early.error_code(), 40405);
    assert_eq!(again.error_code(), 40404);
    assert_eq!(store.subject_level("users"), None, "a soft delete takes the subject's level with it");
    assert_eq!(store.plan_delete_subject("users", true).expect_err("gone").error_code(), 40401);
}

#[test]
fn registering_after_a_soft_delete_continues_the_version_numbers() {
    let mut store = Store::default();
    let id = register(&mut store, "users", V1).expect("v1");
    let plan = store.plan_delete_subject("users", false).expect("soft");
    apply_all(&mut store, plan.records);

    let again = register(&mut store, "users", V1).expect("re-registered");

    assert_eq!(again, id);
    assert_eq!(store.versions("users", false).expect("versions"), vec![2]);
}

#[test]
fn levels_fall_back_from_subject_to_global_to_backward() {
    let mut store = Store::default();
    assert_eq!(store.effective_level("s"), CompatibilityLevel::Backward);

    set_level(&mut store, None, CompatibilityLevel::Forward);
    assert_eq!(store.effective_level("s"), CompatibilityLevel::Forward);

    set_level(&mut store, Some("s"), CompatibilityLevel::None);
    assert_eq!(store.effective_level("s"), CompatibilityLevel::None);

    let removed = store.plan_delete_config("s").expect("delete");
    apply_all(&mut store, removed.records);
    assert_eq!(removed.outcome, CompatibilityLevel::None);
    assert_eq!(store.effective_level("s"), CompatibilityLevel::Forward);
    assert_eq!(store.plan_delete_config("s").expect_err("no level").error_code(), 40401);
}

#[test]
fn records_from_another_registry_are_tolerated() {
    let mut store = Store::default();
    store.apply(LogRecord::Config {
        subject: None,
        value: Some(ConfigValue { compatibility_level: Some("WEIRD".into()) }),
    });
    store.apply(LogRecord::Schema { subject: "ghost".into(), version: 4, value: None });
    store.apply(LogRecord::Schema {
        subject: "proto".into(),
        version: 1,
        value: Some(SchemaValue {
            subject: "proto".into(),
            version: 1,
            id: 40,
            schema_type: Some("PROTOBUF".into()),
            references: vec![],
            schema: "syntax = \"proto3\";".into(),
            deleted: false,
        }),
    });

    assert_eq!(store.global_level(), CompatibilityLevel::Backward);
    assert_eq!(store.max_id(), 40);
    assert_eq!(register(&mut store, "users", V1).expect("v1"), 41, "ids continue after the highest seen");
}

#[test]
fn versions_parse_like_confluent() {
    assert_eq!(VersionSpec::parse("latest").expect("latest"), VersionSpec::Latest);
    assert_eq!(VersionSpec::parse("-1").expect("-1"), VersionSpec::Latest);
    assert_eq!(VersionSpec::parse("3").expect("3"), VersionSpec::Number(3));
    for bad in ["0", "-2", "abc", "99999999999"] {
        assert_eq!(VersionSpec::parse(bad).expect_err(bad).error_code(), 42202, "{bad}");
    }
}

#[test]
fn an_id_already_bound_to_another_schema_is_not_rebound() {
    let mut store = Store::default();
    let id = register(&mut store, "a", V1).expect("a");
    let rogue = SchemaValue {
        subject: "b".into(),
        version: 1,
        id,
        schema_type: None,
        references: vec![],
        schema: V2.into(),
        deleted: false,
    };

    store.apply(LogRecord::Schema { subject: "b".into(), version: 1, value: Some(rogue) });

    assert_eq!(store.schema_by_id(id).map(|entry| entry.schema.as_str()), Some(V1));
    assert!(store.versions("b", true).is_err(), "the clashing record was not applied");
}

#[test]
fn schema_count_counts_ids_until_their_last_version_is_permanently_deleted() {
    let mut store = Store::default();
    assert_eq!(store.schema_count(), 0);
    register(&mut store, "a", V1).expect("a");
    register(&mut store, "b", V1).expect("b, same id");
    register(&mut store, "a", V2).expect("a v2");
    assert_eq!(store.schema_count(), 2);

    let soft = store.plan_delete_subject("b", false).expect("soft");
    apply_all(&mut store, soft.records);
    let soft = store.plan_delete_version("a", VersionSpec::Number(2), false).expect("soft v2");
    apply_all(&mut store, soft.records);
    assert_eq!(store.schema_count(), 2, "soft-deleted schemas are still served by id");

    let hard = store.plan_delete_version("a", VersionSpec::Number(2), true).expect("permanent v2");
    apply_all(&mut store, hard.records);
    assert_eq!(store.schema_count(), 1);
    assert_eq!(store.subjects(false), vec!["a"]);
}
