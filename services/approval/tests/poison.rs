//! A poison form in approval's batch, on the real stack: a form whose full
//! name holds a NUL character, which PostgreSQL refuses to store in any text
//! column, fails its batch for good; the batch is split until that form is
//! alone, it is parked on `mamochi.dead-letters` with its reason and
//! provenance, and the forms behind it on the same partition, on another
//! standard partition and on the paid lane are decided.

mod support;

use std::time::Duration;

use mamochi_common::kafka;
use mamochi_events::codec::EventCodec;
use mamochi_events::dead_letter::headers;
use mamochi_events::publish::publish;
use mamochi_events::topics::{DEAD_LETTERS, PAID_REGISTRATION_PARTITION, REGISTRATIONS};
use mamochi_events::{RegistrationKey, RegistrationSubmitted};
use rdkafka::message::{Headers, Message, OwnedMessage};

const WAIT: Duration = Duration::from_secs(60);

fn header(message: &OwnedMessage, name: &str) -> String {
    message
        .headers()
        .and_then(|all| all.iter().find(|h| h.key == name))
        .and_then(|h| h.value)
        .map(|value| String::from_utf8_lossy(value).into_owned())
        .unwrap_or_default()
}

async fn submit_to(
    producer: &rdkafka::producer::FutureProducer,
    codec: &EventCodec,
    form: &RegistrationSubmitted,
    partition: i32,
) -> i64 {
    let key = RegistrationKey { registration_id: form.registration_id };
    publish(producer, codec, &REGISTRATIONS, &key, form, Some(partition)).await.expect("form acknowledged").offset
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_form_the_database_refuses_is_parked_and_the_others_are_decided() {
    // Arrange: written before the service starts, so they arrive together:
    // on partition 1 a good form, the poison form, another good form; one
    // good form on partition 2 and one on the paid lane.
    let settings = support::settings();
    let codec = EventCodec::new(&settings.registry.url);
    let producer = kafka::producer(&settings.kafka, "test").expect("producer");
    let mut poison = support::form(false);
    poison.full_name = "Rosa\u{0}Pérez".into();
    let same_partition = [support::form(false), support::form(false)];
    let other_partition = support::form(false);
    let paid = support::form(true);
    submit_to(&producer, &codec, &same_partition[0], 1).await;
    let poison_offset = submit_to(&producer, &codec, &poison, 1).await;
    submit_to(&producer, &codec, &same_partition[1], 1).await;
    submit_to(&producer, &codec, &other_partition, 2).await;
    submit_to(&producer, &codec, &paid, PAID_REGISTRATION_PARTITION).await;

    // Act
    let service = support::start(&settings);
    let parked = support::records(&settings, DEAD_LETTERS.name, 1, |message| {
        header(message, headers::SOURCE_TOPIC) == REGISTRATIONS.name()
            && header(message, headers::SOURCE_PARTITION) == "1"
            && header(message, headers::SOURCE_OFFSET) == poison_offset.to_string()
    })
    .await;
    let mut statuses = Vec::new();
    for form in same_partition.iter().chain([&other_partition, &paid]) {
        statuses.push(support::wait_for_status(&settings, form.registration_id, WAIT).await);
    }
    let poison_rows: i64 = {
        use diesel::prelude::*;
        use diesel_async::RunQueryDsl;
        use mamochi_common::schema::registrations;
        let pool = mamochi_common::db::pool(&settings.database).expect("pool");
        let mut conn = pool.get().await.expect("connection");
        registrations::table
            .filter(registrations::registration_id.eq(poison.registration_id))
            .count()
            .get_result(&mut conn)
            .await
            .expect("count")
    };
    service.stop().await;

    // Assert
    assert_eq!(parked.len(), 1, "the poison form is parked");
    assert_eq!(header(&parked[0], headers::REASON), "invalid_data");
    assert!(header(&parked[0], headers::ERROR).contains("0x00"), "the error says why");
    assert_eq!(header(&parked[0], headers::CONSUMER_GROUP), settings.kafka.group(mamochi_approval::FORMS_GROUP));
    let parked_form =
        codec.decode::<RegistrationSubmitted>(parked[0].payload()).await.expect("the parked bytes are the form");
    assert_eq!(parked_form.registration_id, poison.registration_id);
    assert_eq!(statuses, vec![Some("approved".to_string()); 4], "every other form decided");
    assert_eq!(poison_rows, 0, "the poison form left nothing behind");
}
