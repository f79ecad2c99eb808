//! The notifier on the real stack: email requests produced to Kafka arrive
//! at the SMTP sink as `.eml` files, once per message id.

mod support;

use std::time::Duration;

use mamochi_common::kafka;
use mamochi_common::seal::Sealer;
use mamochi_events::codec::EventCodec;
use mamochi_events::topics::EMAIL_REQUESTS;
use rdkafka::consumer::Consumer;
use rdkafka::message::Message;
use rdkafka::{Offset, TopicPartitionList};
use support::{body, email_request, email_row, emails_with_id, eventually, header, mail_dir, Running, SERIAL};

const WAIT: Duration = Duration::from_secs(60);

#[tokio::test]
async fn an_email_request_arrives_once_with_its_headers_and_the_opened_secret() {
    let _serial = SERIAL.lock().await;
    // Arrange: a request whose body asks for a sealed API key.
    let settings = support::settings();
    let pool = support::pool(&settings);
    let codec = EventCodec::new(&settings.registry.url);
    let secret = format!("mamochi_{}", uuid::Uuid::new_v4().simple());
    let sealed = Sealer::from_hex(&settings.secrets.email_seal_key).expect("key").seal(&secret).expect("seals");
    let request =
        email_request("credentials", "Hola:\nTu clave de API es {secret}\nGuárdala bien.\n", Some(sealed.clone()));
    let service = Running::start(&settings).await;

    // Act
    let delivered = support::request(&settings, &codec, &request).await;

    // Assert: one .eml, right headers, the secret opened in the body...
    let row = eventually(WAIT, "the email to be sent", || async {
        email_row(&pool, request.message_id).await.filter(|(status, _, _)| status == "sent")
    })
    .await;
    assert_eq!(row, ("sent".to_string(), 1, true), "sent on the first attempt, with sent_at");
    let found = emails_with_id(&mail_dir(), request.message_id);
    assert_eq!(found.len(), 1, "exactly one .eml for the message id");
    let eml = &found[0];
    assert_eq!(header(eml, "To"), Some(request.to.as_str()));
    assert_eq!(header(eml, "Subject"), Some(request.subject.as_str()));
    assert_eq!(header(eml, "From"), Some("MAMOCHI <no-reply@mamochi.cl>"));
    let text = body(eml);
    assert!(text.contains(&format!("Tu clave de API es {secret}\n")), "{text}");
    assert!(text.contains("Guárdala bien."), "{text}");
    assert!(!eml.contains("{secret}"));
    // ...while the Kafka record holds only the sealed bytes.
    let reader = kafka::consumer(&settings.kafka, &format!("test.reader.{}", uuid::Uuid::new_v4().simple()), "test")
        .expect("reader");
    let mut at = TopicPartitionList::new();
    at.add_partition_offset(EMAIL_REQUESTS.name(), delivered.partition, Offset::Offset(delivered.offset)).expect("tpl");
    reader.assign(&at).expect("assign");
    let record = tokio::time::timeout(WAIT, reader.recv()).await.expect("record").expect("no error");
    let payload = record.payload().expect("payload");
    assert!(!payload.windows(secret.len()).any(|window| window == secret.as_bytes()), "no clear secret in Kafka");
    assert!(payload.windows(sealed.len()).any(|window| window == sealed.as_slice()), "the sealed bytes are there");
    service.stop().await;
}

#[tokio::test]
async fn the_same_request_produced_twice_is_sent_once() {
    let _serial = SERIAL.lock().await;
    // Arrange
    let settings = support::settings();
    let pool = support::pool(&settings);
    let codec = EventCodec::new(&settings.registry.url);
    let request = email_request("restock", "Tu carro fue reabastecido con 10 porciones.\n", None);
    let service = Running::start(&settings).await;

    // Act: the same request twice (a producer that retried after a crash).
    let first = support::request(&settings, &codec, &request).await;
    let second = support::request(&settings, &codec, &request).await;

    // Assert: both records consumed and committed, one email.
    assert_eq!(first.partition, second.partition, "same key, same partition");
    eventually(WAIT, "both records to be committed", || async {
        (support::committed(&settings, second.partition) > second.offset).then_some(())
    })
    .await;
    assert_eq!(emails_with_id(&mail_dir(), request.message_id).len(), 1, "one .eml");
    assert_eq!(email_row(&pool, request.message_id).await, Some(("sent".to_string(), 1, true)));
    let metrics = service.metrics().await;
    let skipped = support::sample(&metrics, "mamochi_notifier_duplicates_skipped_total{category=\"restock\"}");
    assert!(skipped.is_some_and(|count| count >= 1.0), "{metrics}");
    service.stop().await;
}

#[tokio::test]
async fn a_secret_that_does_not_open_is_never_sent_and_is_parked() {
    let _serial = SERIAL.lock().await;
    // Arrange: sealed with another key.
    let settings = support::settings();
    let pool = support::pool(&settings);
    let codec = EventCodec::new(&settings.registry.url);
    let other_key = secrecy::SecretString::from("ab".repeat(32));
    let sealed = Sealer::from_hex(&other_key).expect("key").seal("mamochi_not_for_you").expect("seals");
    let request = email_request("credentials", "Tu clave es {secret}\n", Some(sealed));
    let service = Running::start(&settings).await;

    // Act
    let delivered = support::request(&settings, &codec, &request).await;

    // Assert: marked failed, nothing sent, and the partition moved on.
    let row = eventually(WAIT, "the request to be rejected", || async {
        email_row(&pool, request.message_id).await.filter(|(status, _, _)| status == "failed")
    })
    .await;
    assert_eq!(row, ("failed".to_string(), 0, false));
    eventually(WAIT, "the record to be committed", || async {
        (support::committed(&settings, delivered.partition) > delivered.offset).then_some(())
    })
    .await;
    assert!(emails_with_id(&mail_dir(), request.message_id).is_empty());
    service.stop().await;
}
