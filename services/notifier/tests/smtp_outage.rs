//! SMTP down, then back: the notifier keeps retrying with backoff, records
//! each failed attempt, and once a relay answers delivers every email exactly
//! once. The relay is a private SMTP sink started by the test on a port where
//! nothing listened before.

mod support;

use std::time::Duration;

use mamochi_events::codec::EventCodec;
use support::{email_request, email_row, emails_with_id, eventually, Running, SERIAL};

#[tokio::test]
async fn with_smtp_down_then_back_every_email_is_delivered_exactly_once() {
    let _serial = SERIAL.lock().await;
    // Arrange: nothing pending from earlier runs, then a notifier pointed at
    // a port where nothing listens yet.
    let mut settings = support::settings();
    support::drain_backlog(&settings).await;
    let port = support::free_port();
    settings.smtp.port = port;
    let pool = support::pool(&settings);
    let codec = EventCodec::new(&settings.registry.url);
    let maildir = std::env::temp_dir().join(format!("mamochi-outage-{}", uuid::Uuid::new_v4().simple()));
    let service = Running::start(&settings).await;

    // Act 1: five requests while SMTP is down.
    let requests: Vec<_> = (0..5).map(|n| email_request("statement", &format!("Resumen semanal {n}\n"), None)).collect();
    for request in &requests {
        support::request(&settings, &codec, request).await;
    }

    // Assert 1: the record being handled is retried with its failures
    // recorded (the runner retries one record at a time, so the others wait
    // behind it), and nothing is sent.
    eventually(Duration::from_secs(60), "failed attempts to be recorded", || async {
        for request in &requests {
            if email_row(&pool, request.message_id).await.is_some_and(|(_, attempts, _)| attempts >= 2) {
                return Some(());
            }
        }
        None
    })
    .await;
    for request in &requests {
        let row = email_row(&pool, request.message_id).await;
        assert!(row.as_ref().is_none_or(|(status, _, sent)| status == "pending" && !sent), "{row:?}");
    }
    let metrics = service.metrics().await;
    assert!(support::sample(&metrics, "mamochi_notifier_send_failures_total{category=\"statement\"}").is_some_and(|n| n >= 2.0));
    assert!(support::sample(&metrics, "mamochi_notifier_send_retries_total{category=\"statement\"}").is_some_and(|n| n >= 1.0));

    // Act 2: a relay comes up on that port.
    let mut sink = tokio::process::Command::new("/usr/bin/python3")
        .args([concat!(env!("CARGO_MANIFEST_DIR"), "/../../deploy/local/smtp_sink.py"), "--host", "127.0.0.1", "--port", &port.to_string(), "--maildir"])
        .arg(&maildir)
        .kill_on_drop(true)
        .spawn()
        .expect("smtp sink starts");
    let sink_pid = sink.id().expect("sink pid");

    // Assert 2: every email sent, each exactly once, all to the private sink.
    for request in &requests {
        eventually(Duration::from_secs(90), "every email to be sent", || async {
            email_row(&pool, request.message_id).await.filter(|(status, _, _)| status == "sent")
        })
        .await;
    }
    for request in &requests {
        assert_eq!(emails_with_id(&maildir, request.message_id).len(), 1, "one .eml for {}", request.message_id);
        assert!(emails_with_id(&support::mail_dir(), request.message_id).is_empty(), "nothing on the shared sink");
    }
    assert_eq!(support::eml_files(&maildir).len(), requests.len(), "no other mail on the private sink");

    service.stop().await;
    // Stop exactly the sink this test started.
    assert_eq!(sink.id(), Some(sink_pid));
    sink.kill().await.expect("sink stops");
    std::fs::remove_dir_all(&maildir).ok();
}
