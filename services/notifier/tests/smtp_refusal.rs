//! A recipient the relay refuses for good (SMTP 550): that email is marked
//! `failed` at once (status, one attempt, the relay's answer), counted and
//! parked in the dead letters with the reason, and never retried; the emails
//! behind it on its partition and on the others are delivered. The relay is
//! one the test controls (`support::relay`).

mod support;

use std::time::Duration;

use mamochi_events::codec::EventCodec;
use mamochi_events::dead_letter::headers;
use support::relay::TestRelay;
use support::{email_request, email_row, eventually, failure_row, Running, SERIAL};

const WAIT: Duration = Duration::from_secs(60);

/// A category no service sends.
const CATEGORY: &str = "notifier-budget-test";

#[tokio::test]
async fn a_recipient_refused_for_good_is_marked_failed_and_every_other_email_is_delivered() {
    let _serial = SERIAL.lock().await;
    // Arrange: nothing pending from earlier runs, then a notifier on a relay
    // that refuses one recipient.
    let mut settings = support::settings();
    support::drain_backlog(&settings).await;
    let refused = email_request("credentials", "Tu clave de API es {secret}\n", None);
    let relay = TestRelay::start(&[refused.to.as_str()]).await;
    settings.smtp.host = "127.0.0.1".to_string();
    settings.smtp.port = relay.port();
    let pool = support::pool(&settings);
    let codec = EventCodec::new(&settings.registry.url);
    let dead_letters_from = support::dead_letters_end(&settings);
    let service = Running::start(&settings).await;

    // Act: the refused request first, then others until at least two sit
    // behind it on its partition (and some on other partitions).
    let parked = support::request(&settings, &codec, &refused).await;
    let mut others = Vec::new();
    let mut behind = 0;
    while behind < 2 || others.len() < 6 {
        assert!(others.len() < 60, "two requests land on partition {} behind the refused one", parked.partition);
        let other = email_request("restock", "Tu carro fue reabastecido.\n", None);
        let delivered = support::request(&settings, &codec, &other).await;
        if delivered.partition == parked.partition {
            assert!(delivered.offset > parked.offset);
            behind += 1;
        }
        others.push(other);
    }

    // Assert: every other email delivered once...
    for other in &others {
        eventually(WAIT, "every other email to be sent", || async {
            email_row(&pool, other.message_id).await.filter(|(status, _, _)| status == "sent")
        })
        .await;
        assert_eq!(relay.accepted_with_id(other.message_id), 1, "one message for {}", other.message_id);
    }
    // ...the refused one recorded failed after one attempt, with the relay's answer...
    let (status, attempts, last_error) = eventually(WAIT, "the refused email to be marked failed", || async {
        failure_row(&pool, refused.message_id).await.filter(|(status, _, _)| status == "failed")
    })
    .await;
    assert_eq!((status.as_str(), attempts), ("failed", 1), "failed after its one attempt");
    let last_error = last_error.expect("last_error recorded");
    assert!(last_error.contains("550"), "{last_error}");
    // The relay quoted the refused address; no trace of it is kept.
    assert!(!last_error.contains(&refused.to), "personal data in the emails table: {last_error}");
    assert_eq!(relay.refusals(), vec![refused.to.clone()], "refused once, never retried");
    assert_eq!(relay.accepted_with_id(refused.message_id), 0);
    // ...parked with the reason and where it came from...
    let dead_letter = support::dead_letter_of(&settings, dead_letters_from, &parked, WAIT).await;
    assert_eq!(dead_letter.get(headers::REASON).map(String::as_str), Some("handler_rejected"), "{dead_letter:?}");
    assert!(dead_letter.get(headers::ERROR).is_some_and(|error| error.contains("550")), "{dead_letter:?}");
    assert!(
        dead_letter.get(headers::ERROR).is_some_and(|error| !error.contains(&refused.to)),
        "personal data in the dead-letter headers: {dead_letter:?}"
    );
    // ...and counted as refused, nothing else counted failed.
    let metrics = service.metrics().await;
    let failed = |category: &str, reason: &str| {
        support::sample(
            &metrics,
            &format!("mamochi_notifier_emails_failed_total{{category=\"{category}\",reason=\"{reason}\"}}"),
        )
    };
    assert_eq!(failed("credentials", "refused"), Some(1.0), "{metrics}");
    assert_eq!(failed("restock", "refused"), Some(0.0), "{metrics}");
    assert_eq!(failed("credentials", "attempts_exhausted"), Some(0.0), "{metrics}");
    assert_eq!(
        support::sample(&metrics, "mamochi_notifier_send_failures_total{category=\"credentials\"}"),
        None,
        "{metrics}"
    );
    service.stop().await;
}

#[tokio::test]
async fn an_email_that_keeps_failing_is_given_up_after_its_attempts_and_the_partition_moves_on() {
    let _serial = SERIAL.lock().await;
    // Arrange: a budget of three attempts, and a relay nowhere to be found
    // while the first request is handled. The category is one no service
    // sends (counted as `other`), so the figures are this test's alone.
    let mut settings = support::settings();
    support::drain_backlog(&settings).await;
    settings.notifier.max_attempts = 3;
    settings.smtp.host = "127.0.0.1".to_string();
    settings.smtp.port = support::free_port();
    let pool = support::pool(&settings);
    let codec = EventCodec::new(&settings.registry.url);
    let dead_letters_from = support::dead_letters_end(&settings);
    let service = Running::start(&settings).await;

    // Act 1: one request while nothing listens.
    let doomed = email_request(CATEGORY, "Resumen semanal\n", None);
    let parked = support::request(&settings, &codec, &doomed).await;

    // Assert 1: given up on its third failed attempt, counted, parked.
    let (status, attempts, last_error) = eventually(WAIT, "the email to be given up", || async {
        failure_row(&pool, doomed.message_id).await.filter(|(status, _, _)| status == "failed")
    })
    .await;
    assert_eq!((status.as_str(), attempts), ("failed", 3));
    let last_error = last_error.expect("last_error recorded");
    assert!(last_error.starts_with("gave up after 3 failed attempts"), "{last_error}");
    let dead_letter = support::dead_letter_of(&settings, dead_letters_from, &parked, WAIT).await;
    assert!(dead_letter.get(headers::ERROR).is_some_and(|error| error.contains("gave up after 3")), "{dead_letter:?}");
    let metrics = service.metrics().await;
    let counted = "mamochi_notifier_emails_failed_total{category=\"other\",reason=\"attempts_exhausted\"}";
    assert_eq!(support::sample(&metrics, counted), Some(1.0), "{metrics}");
    assert_eq!(support::sample(&metrics, "mamochi_notifier_send_failures_total{category=\"other\"}"), Some(3.0));

    // Act 2: a relay comes up on that port; another request on the same partition.
    let relay = TestRelay::start_on(settings.smtp.port, &[]).await;
    let mut produced = 0;
    let next = loop {
        assert!(produced < 60, "a request lands on partition {}", parked.partition);
        produced += 1;
        let next = email_request(CATEGORY, "Resumen semanal\n", None);
        if support::request(&settings, &codec, &next).await.partition == parked.partition {
            break next;
        }
    };

    // Assert 2: the partition moved on; the given-up email was not sent.
    eventually(WAIT, "the next email on the partition to be sent", || async {
        email_row(&pool, next.message_id).await.filter(|(status, _, _)| status == "sent")
    })
    .await;
    assert_eq!(relay.accepted_with_id(next.message_id), 1);
    assert_eq!(relay.accepted_with_id(doomed.message_id), 0);
    service.stop().await;
}
