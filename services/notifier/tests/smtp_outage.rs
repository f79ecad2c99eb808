//! SMTP down, then back: the notifier keeps retrying with backoff, records
//! each failed attempt, and once a relay answers delivers every email exactly
//! once. The relay is a private SMTP sink (or a relay the test controls)
//! started by the test on a port where nothing listened before. An outage
//! longer than the group's `max.poll.interval.ms` evicts nobody: the
//! notifier keeps its group membership and keeps running throughout.

mod support;

use std::time::{Duration, Instant};

use mamochi_events::codec::EventCodec;
use mamochi_notifier::service::GROUP;
use support::relay::TestRelay;
use support::{email_request, email_row, emails_with_id, eventually, Running, SERIAL};

/// `max.poll.interval.ms` of the long-outage test: the least librdkafka
/// accepts with the platform's 10 s session timeout.
const POLL_INTERVAL: Duration = Duration::from_secs(10);

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
    let requests: Vec<_> =
        (0..5).map(|n| email_request("statement", &format!("Resumen semanal {n}\n"), None)).collect();
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
    assert!(support::sample(&metrics, "mamochi_notifier_send_failures_total{category=\"statement\"}")
        .is_some_and(|n| n >= 2.0));
    assert!(support::sample(&metrics, "mamochi_notifier_send_retries_total{category=\"statement\"}")
        .is_some_and(|n| n >= 1.0));

    // Act 2: a relay comes up on that port.
    let mut sink = tokio::process::Command::new("/usr/bin/python3")
        .args([
            concat!(env!("CARGO_MANIFEST_DIR"), "/../../deploy/local/smtp_sink.py"),
            "--host",
            "127.0.0.1",
            "--port",
            &port.to_string(),
            "--maildir",
        ])
        .arg(&maildir)
        .kill_on_drop(true)
        .spawn()
        .expect("smtp sink starts");
    let sink_pid = sink.id().expect("sink pid");
    let relay_up = Instant::now();

    // Assert 2: every email sent, each exactly once, all to the private sink.
    let mut attempts = 0;
    for request in &requests {
        attempts += eventually(Duration::from_secs(120), "every email to be sent", || async {
            email_row(&pool, request.message_id).await.filter(|(status, _, _)| status == "sent")
        })
        .await
        .1;
    }
    eprintln!(
        "{} emails sent {:.2}s after the relay process started, {attempts} attempts in all",
        requests.len(),
        relay_up.elapsed().as_secs_f64()
    );
    for request in &requests {
        assert_eq!(emails_with_id(&maildir, request.message_id).len(), 1, "one .eml for {}", request.message_id);
        assert!(emails_with_id(&support::mail_dir(), request.message_id).is_empty(), "nothing on the shared sink");
    }
    // Other test processes may request mail on the shared topic meanwhile;
    // of this test's recipients, exactly its requests arrived.
    let ours = support::eml_files(&maildir)
        .iter()
        .filter(|eml| support::header(eml, "To").is_some_and(|to| requests.iter().any(|request| request.to == to)))
        .count();
    assert_eq!(ours, requests.len(), "no other mail to this test's recipients");

    service.stop().await;
    // Stop exactly the sink this test started.
    assert_eq!(sink.id(), Some(sink_pid));
    sink.kill().await.expect("sink stops");
    std::fs::remove_dir_all(&maildir).ok();
}

// Worker threads of their own for the notifier: the test's blocking Kafka
// probes (group members, producers) must not hold up its polling, or the
// test itself, not the notifier, would overrun the poll interval.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn smtp_down_for_longer_than_the_poll_interval_evicts_no_one_and_every_email_arrives_once() {
    let _serial = SERIAL.lock().await;
    // Arrange: a group that evicts a member silent for 10 s, a budget no
    // email spends in this outage, a relay port where nothing listens yet.
    let mut settings = support::settings();
    settings.kafka.max_poll_interval_ms = u32::try_from(POLL_INTERVAL.as_millis()).expect("fits");
    support::drain_backlog(&settings).await;
    settings.notifier.max_attempts = 1_000;
    let port = support::free_port();
    settings.smtp.host = "127.0.0.1".to_string();
    settings.smtp.port = port;
    let pool = support::pool(&settings);
    let codec = EventCodec::new(&settings.registry.url);
    let service = Running::start(&settings).await;
    let group = settings.kafka.group(GROUP);
    let rebalances = |kind: &str| format!("mamochi_kafka_rebalances_total{{group=\"{group}\",kind=\"{kind}\"}}");
    let members = eventually(Duration::from_secs(60), "the notifier to join its group", || async {
        let assigned = support::sample(&service.metrics().await, &rebalances("assign")).is_some();
        let members = support::group_members(&settings);
        (assigned && members.len() == 1).then_some(members)
    })
    .await;
    let before = service.metrics().await;
    let (assigns, revokes) =
        (support::sample(&before, &rebalances("assign")), support::sample(&before, &rebalances("revoke")));

    // Act 1: requests while SMTP is down; the outage lasts two and a half
    // poll intervals, and sends are seen failing and retried during it
    // (whose: mail other test processes request on the shared topic may be
    // ahead of ours).
    let outage = Instant::now();
    let requests: Vec<_> =
        (0..6).map(|n| email_request("statement", &format!("Resumen semanal {n}\n"), None)).collect();
    for request in &requests {
        support::request(&settings, &codec, request).await;
    }
    eventually(Duration::from_secs(60), "failed sends to be retried", || async {
        let metrics = service.metrics().await;
        let failures: f64 = metrics
            .lines()
            .filter(|line| line.starts_with("mamochi_notifier_send_failures_total{"))
            .filter_map(|line| line.rsplit(' ').next()?.parse::<f64>().ok())
            .sum();
        (failures >= 2.0).then_some(())
    })
    .await;
    // The outage itself, not a wait for something to (not) happen.
    tokio::time::sleep((POLL_INTERVAL * 5 / 2).saturating_sub(outage.elapsed())).await;
    assert!(service.is_running(), "the notifier survived the outage");

    // Act 2: the relay comes back on that port.
    let relay = TestRelay::start_on(port, &[]).await;
    let relay_up = Instant::now();
    let down_for = outage.elapsed();

    // Assert: every email delivered exactly once...
    for request in &requests {
        eventually(Duration::from_secs(120), "every email to be sent", || async {
            email_row(&pool, request.message_id).await.filter(|(status, _, _)| status == "sent")
        })
        .await;
    }
    eprintln!(
        "SMTP down {:.1}s (max.poll.interval.ms {} ms); {} emails sent {:.2}s after the relay came back",
        down_for.as_secs_f64(),
        POLL_INTERVAL.as_millis(),
        requests.len(),
        relay_up.elapsed().as_secs_f64()
    );
    for request in &requests {
        assert_eq!(relay.accepted_with_id(request.message_id), 1, "one message for {}", request.message_id);
    }
    // ...by the same group member all along: no eviction, no rebalance.
    let after = service.metrics().await;
    assert_eq!(support::sample(&after, &rebalances("assign")), assigns, "no new assignment");
    assert_eq!(support::sample(&after, &rebalances("revoke")), revokes, "nothing revoked");
    assert_eq!(support::group_members(&settings), members, "the same member, never evicted");
    assert!(service.is_running());
    service.stop().await;
}
