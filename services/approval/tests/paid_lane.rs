//! The paid lane is real: behind a backlog of 10,000 standard forms, a paid
//! form submitted after all of them is decided within a second, while most of
//! the standard backlog is still waiting.

mod support;

use std::time::{Duration, Instant};

use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use futures::StreamExt;
use mamochi_common::schema::registrations;
use mamochi_common::{db, kafka};
use mamochi_events::codec::EventCodec;

const BACKLOG: usize = 10_000;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_paid_form_behind_ten_thousand_standard_forms_is_decided_within_a_second() {
    // Arrange: the backlog is in Kafka before the service starts.
    let settings = support::settings();
    let codec = EventCodec::new(&settings.registry.url);
    let producer = kafka::producer(&settings.kafka, "test").expect("producer");
    let backlog: Vec<_> = (0..BACKLOG).map(|_| support::form(false)).collect();
    futures::stream::iter(&backlog).for_each_concurrent(256, |form| support::submit(&producer, &codec, form)).await;
    let service = support::start(&settings);
    // Wait until the service is deciding the backlog, so the measurement
    // excludes start-up and the group join.
    let pool = db::pool(&settings.database).expect("pool");
    let ids: Vec<_> = backlog.iter().map(|form| form.registration_id).collect();
    let decided = || async {
        let mut conn = pool.get().await.expect("connection");
        registrations::table
            .filter(registrations::registration_id.eq_any(&ids))
            .filter(registrations::status.ne("received"))
            .count()
            .get_result::<i64>(&mut conn)
            .await
            .expect("count")
    };
    let deadline = Instant::now() + Duration::from_secs(60);
    while decided().await < 10 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(decided().await >= 10, "the service is deciding the backlog");

    // Act: a paid form arrives after the whole backlog.
    let paid = support::form(true);
    let submitted = Instant::now();
    support::submit(&producer, &codec, &paid).await;
    let status = support::wait_for_status(&settings, paid.registration_id, Duration::from_secs(10)).await;
    let waited = submitted.elapsed();

    // Assert: decided within a second, ahead of most of the backlog.
    let mut conn = pool.get().await.expect("connection");
    let undecided: i64 = registrations::table
        .filter(registrations::registration_id.eq_any(&ids))
        .filter(registrations::status.eq("received"))
        .count()
        .get_result(&mut conn)
        .await
        .expect("count");
    let never_seen = BACKLOG as i64
        - registrations::table
            .filter(registrations::registration_id.eq_any(&ids))
            .count()
            .get_result::<i64>(&mut conn)
            .await
            .expect("count");
    println!("paid form decided in {waited:?}; standard forms still waiting: {}", undecided + never_seen);
    assert_eq!(status.as_deref(), Some("approved"));
    assert!(waited < Duration::from_secs(1), "paid form waited {waited:?}");
    assert!(undecided + never_seen > (BACKLOG / 2) as i64, "the paid form overtook the backlog");

    service.stop().await;
}
