//! The running stack's settings (exported by `deploy/local/stack env`) and
//! names that never collide between tests, runs or engineers: several test
//! processes share one broker and one database, so each uses consumer groups
//! of its own (a unique group prefix) that start at the current end of their
//! topics; what others left in a topic is not a test's to process.

use std::sync::OnceLock;

use mamochi_common::db::{self, PgPool};
use mamochi_common::{kafka, Settings};
use uuid::Uuid;

/// The stack's settings, as the services would load them.
pub fn load() -> Settings {
    Settings::load(None).expect("settings load from the environment (eval \"$(deploy/local/stack env)\")")
}

/// A pool on the stack's database.
pub fn pool(settings: &Settings) -> PgPool {
    db::pool(&settings.database).expect("database pool")
}

/// A name unique to this call: `test.{prefix}.{random}`.
pub fn unique(prefix: &str) -> String {
    format!("test.{prefix}.{}", Uuid::new_v4().simple())
}

/// A fresh consumer-group prefix: `test-{random}-`.
pub fn unique_group_prefix() -> String {
    format!("test-{}-", Uuid::new_v4().simple())
}

/// Gives `settings` a fresh group prefix and starts each `(group, topic)`
/// of it at the topic's current end.
pub fn own_groups(settings: &mut Settings, groups: &[(&str, &str)]) {
    settings.kafka.group_prefix = unique_group_prefix();
    start_at_end(settings, groups);
}

/// [`load`] with [`own_groups`].
pub fn isolated(groups: &[(&str, &str)]) -> Settings {
    let mut settings = load();
    own_groups(&mut settings, groups);
    settings
}

/// Gives `settings` the group prefix of this test process: made, and its
/// `(group, topic)` pairs started at the topics' ends, on the first call;
/// the same on every later call, so the tests of one file share their
/// groups as one long-running service would.
pub fn process_groups(settings: &mut Settings, groups: &[(&str, &str)]) {
    static PREFIX: OnceLock<String> = OnceLock::new();
    let prefix = PREFIX.get_or_init(|| {
        let mut owned = settings.clone();
        owned.kafka.group_prefix = unique_group_prefix();
        start_at_end(&owned, groups);
        owned.kafka.group_prefix
    });
    settings.kafka.group_prefix = prefix.clone();
}

fn start_at_end(settings: &Settings, groups: &[(&str, &str)]) {
    for (group, topic) in groups {
        kafka::start_group_at_end(&settings.kafka, &settings.kafka.group(group), topic)
            .expect("group starts at the end");
    }
}

/// Sets a quiet log filter (warnings; librdkafka's errors only) and starts
/// logging once per process: retries and oversold sales on stderr,
/// `RUST_LOG` shows more.
pub fn quiet_logs(settings: &mut Settings) {
    settings.log.filter = "warn,librdkafka=error,rdkafka=error".to_string();
    static LOGS: std::sync::Once = std::sync::Once::new();
    LOGS.call_once(|| mamochi_common::telemetry::init(&settings.log));
}
