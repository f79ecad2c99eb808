//! `mamochi demo`: the guild's evaluation scenario, end to end, on the real
//! stack. Vendors (some paid) register over the REST API, read their API keys
//! from the credentials emails in the SMTP sink, sell every few seconds, run
//! out of stock every ten sales and are restocked, and when the week closes
//! receive their weekly statement by email. A timeline is printed as it
//! happens and a table per vendor at the end; the statement's figures are
//! checked against the sales the demo made.
//!
//! Carts say where they are: every sale carries the cart's position and each
//! cart sends a location ping at most every [`PING_EVERY`], within about a
//! kilometre of the centre of Santiago, the comuna every demo vendor
//! registers in. One cart (the
//! first vendor's) goes missing: its vendor reports it, stops selling, and
//! the demo waits for the cart alarm's emails ("MAMOCHI: alarma de carro")
//! to the vendor and to staff (`tracking.staff_email`); then the vendor
//! reports it found and the demo waits for the "MAMOCHI: carro ubicado"
//! emails. Each wait is bounded by [`ALARM_WAIT`]: an alarm or an email that
//! never comes fails the demo.
//!
//! A week passes in minutes through configuration only: the demo sets the
//! platform clock's scale and anchor (`[time]`) for the services it starts.
//! Nothing in the services knows it is a demo.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use chrono::{DateTime, SecondsFormat, Utc};
use chrono_tz::America::Santiago;
use mamochi_common::clock::{Clock, TimeSettings};
use mamochi_common::Settings;
use mamochi_rules::money::format_clp;
use serde_json::{json, Value};
use tokio::sync::Mutex;

use crate::mailbox::{self, Mail};
use crate::run::{run_services, Service};

/// Shortest real time between two location pings of one cart: under the
/// gateway's per-cart limit (one a second), whatever the selling pace.
pub const PING_EVERY: Duration = Duration::from_secs(2);

/// Longest real wait for each step of the missing-cart incident: the alarm's
/// two emails, then the two emails that it was cleared.
pub const ALARM_WAIT: Duration = Duration::from_secs(60);

/// The comuna every demo vendor registers in, and where its cart works.
const COMUNA: &str = "Santiago";

/// Subject openings of the cart-alarm emails (raised, cleared).
const ALARM_SUBJECT: &str = "MAMOCHI: alarma de carro";
const CLEARED_SUBJECT: &str = "MAMOCHI: carro ubicado";

/// Scenario knobs (defaults: the guild's example).
#[derive(Debug, Clone, clap::Args)]
pub struct DemoArgs {
    /// Vendors who register.
    #[arg(long, default_value_t = 5)]
    pub vendors: usize,
    /// How many of them pay for priority review.
    #[arg(long, default_value_t = 2)]
    pub paid: usize,
    /// Shortest pause between two sales of one vendor, in seconds.
    #[arg(long, default_value_t = 5.0)]
    pub sell_every_min: f64,
    /// Longest pause between two sales of one vendor, in seconds.
    #[arg(long, default_value_t = 7.0)]
    pub sell_every_max: f64,
    /// Price of a serving, in pesos.
    #[arg(long, default_value_t = 1_500)]
    pub price_clp: i64,
    /// Real minutes the demo's week lasts once vendors start selling.
    #[arg(long, default_value_t = 2.0)]
    pub week_minutes: f64,
    /// Platform seconds per real second (2016: a week in five minutes).
    #[arg(long, default_value_t = 2016.0)]
    pub time_scale: f64,
    /// Where the SMTP sink keeps mail (default: $MAMOCHI_MAIL_DIR).
    #[arg(long, env = "MAMOCHI_MAIL_DIR")]
    pub mail_dir: PathBuf,
}

/// What the demo saw of one vendor, for its table and for tests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VendorReport {
    pub name: String,
    pub paid: bool,
    pub sales: u32,
    pub earnings_clp: i64,
    pub restocks: u32,
    pub statement_sales: Option<i64>,
    pub statement_earnings_clp: Option<i64>,
    /// Location pings the gateway accepted.
    pub pings: u32,
    /// Cart-alarm emails the vendor received ("MAMOCHI: alarma de carro").
    pub alarm_emails: u32,
    /// Emails that the vendor's cart was found ("MAMOCHI: carro ubicado").
    pub cleared_emails: u32,
}

/// One vendor as the demo knows it.
#[derive(Debug, Default)]
struct Vendor {
    name: String,
    email: String,
    paid: bool,
    registration_id: String,
    token: String,
    api_key: String,
    sales: u32,
    earnings: i64,
    refused: u32,
    restocks: u32,
    statement: Option<Value>,
    plate: String,
    pings: u32,
    alarm_emails: u32,
    cleared_emails: u32,
    /// Reported missing and not yet found: the cart neither sells nor pings.
    missing: bool,
}

const NAMES: [&str; 8] =
    ["Rosa Pérez", "Juan Soto", "Marta Rojas", "Luis Muñoz", "Carmen Díaz", "Pedro Silva", "Ana Torres", "José Castro"];

pub async fn run(settings: &Settings, args: DemoArgs) -> anyhow::Result<Vec<VendorReport>> {
    if args.paid > args.vendors || args.vendors == 0 || args.sell_every_min > args.sell_every_max {
        bail!("need 1+ vendors, at most as many paid, and sell-every-min ≤ sell-every-max");
    }
    // Platform time: the current week ends `week_minutes` real minutes after
    // the vendors start selling (registration takes a few seconds first).
    let now = Utc::now();
    let week_real = chrono::Duration::milliseconds((args.week_minutes * 60_000.0) as i64);
    let week_end = next_monday_midnight(now);
    let platform_at_selling =
        week_end - chrono::Duration::milliseconds((week_real.num_milliseconds() as f64 * args.time_scale) as i64);
    let anchor_platform = platform_at_selling - chrono::Duration::milliseconds((15_000.0 * args.time_scale) as i64);
    let mut settings = settings.clone();
    settings.time =
        TimeSettings { scale: args.time_scale, anchor_real: Some(now), anchor_platform: Some(anchor_platform) };
    settings.accounting.grace_period_secs = settings.accounting.grace_period_secs.min(3600);
    // Every vendor registers from this one address, at once.
    let registrations = &mut settings.gateway.rate_limits.registrations_per_ip.burst;
    *registrations = (*registrations).max(u32::try_from(args.vendors).unwrap_or(u32::MAX));
    // The clock runs `time_scale` times faster than the carts ping: a few
    // real seconds between pings are hours of platform time. The silence
    // limit (and the oldest ping accepted) must span several pings, or
    // every cart would be silent between two of them and only the missing
    // cart is meant to raise an alarm.
    let ping_span = (PING_EVERY.as_secs_f64() * 5.0 * args.time_scale).ceil() as u64;
    settings.tracking.silence_after_secs = settings.tracking.silence_after_secs.max(ping_span);
    settings.gateway.location_max_age_secs = settings.gateway.location_max_age_secs.max(ping_span);
    let clock = Clock::from_settings(&settings.time)?;

    println!(
        "MAMOCHI demo: {} vendors ({} paid), a sale every {}–{} s, week ends {} (platform time, America/Santiago)",
        args.vendors,
        args.paid,
        args.sell_every_min,
        args.sell_every_max,
        week_end.with_timezone(&Santiago).format("%a %d %b %H:%M")
    );

    // Ctrl-C stops the scenario and shuts the services down cleanly, so their
    // consumers leave their groups instead of holding partitions.
    let shutdown = mamochi_common::shutdown::on_signals();
    let services = {
        let settings = settings.clone();
        let shutdown = shutdown.clone();
        tokio::spawn(async move { run_services(&settings, &[Service::All], shutdown).await })
    };
    let outcome = tokio::select! {
        outcome = scenario(&settings, &args, clock, week_end) => outcome,
        () = shutdown.cancelled() => Err(anyhow::anyhow!("interrupted")),
    };
    shutdown.cancel();
    services.await.context("services task")?.context("services")?;
    outcome
}

async fn scenario(
    settings: &Settings,
    args: &DemoArgs,
    clock: Clock,
    week_end: DateTime<Utc>,
) -> anyhow::Result<Vec<VendorReport>> {
    let api = settings.gateway.public_url.clone();
    let http = reqwest::Client::builder().timeout(Duration::from_secs(10)).build()?;
    let started = Instant::now();
    let log = |what: &str, who: &str, detail: String| {
        let platform = clock.now().with_timezone(&Santiago);
        println!(
            "[{:>5.1}s | {}] {:<12} {:<12} {}",
            started.elapsed().as_secs_f64(),
            platform.format("%a %H:%M"),
            what,
            who,
            detail
        );
    };
    wait_until_ready(&http, &format!("http://{}", settings.gateway.ops_listen)).await?;
    // Mail from now on: the sink may hold tens of thousands of older messages.
    let inbox = Mutex::new(mailbox::Mailbox::from_now(&args.mail_dir)?);

    // 1. Registration.
    let run_tag = &uuid::Uuid::new_v4().simple().to_string()[..8];
    let mut vendors = Vec::new();
    for index in 0..args.vendors {
        let paid = index < args.paid;
        let name = NAMES[index % NAMES.len()].to_string();
        let email = format!("vendedor{}.{run_tag}@example.cl", index + 1);
        let cart_plate = plate(index, run_tag);
        let body = json!({
            "full_name": name, "rut": rut(index, run_tag), "email": email, "phone": phone(index, run_tag),
            "comuna": COMUNA, "cart_plate": cart_plate, "paid": paid,
            "payment_reference": if paid { json!(payment_reference(index, run_tag)) } else { Value::Null },
        });
        let response = http.post(format!("{api}/v1/registrations")).json(&body).send().await?;
        let status = response.status();
        let answer: Value = response.json().await?;
        if status.as_u16() != 202 {
            bail!("registration of {name} refused ({status}): {answer}");
        }
        log(
            "registered",
            &name,
            format!(
                "{} form, id {}",
                if paid { "PAID" } else { "standard" },
                answer["registration_id"].as_str().unwrap_or("?")
            ),
        );
        vendors.push(Vendor {
            name,
            email,
            paid,
            registration_id: answer["registration_id"].as_str().unwrap_or_default().to_string(),
            token: answer["tracking_token"].as_str().unwrap_or_default().to_string(),
            plate: cart_plate,
            ..Vendor::default()
        });
    }

    // 2. Approval and credentials by email.
    for vendor in &mut vendors {
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            let status: Value = http
                .get(format!("{api}/v1/registrations/{}", vendor.registration_id))
                .header("X-Tracking-Token", &vendor.token)
                .send()
                .await?
                .json()
                .await?;
            match status["status"].as_str() {
                Some("approved") => break,
                Some("rejected") => bail!("{} was rejected: {}", vendor.name, status["reason"]),
                Some("manual_review") => bail!("{} went to manual review: {}", vendor.name, status["reason"]),
                _ if Instant::now() > deadline => bail!("{} was not decided within two minutes", vendor.name),
                _ => tokio::time::sleep(Duration::from_millis(200)).await,
            }
        }
        let mail = wait_for_mail(&inbox, &vendor.email, |mail| mailbox::api_key(&mail.body).is_some()).await?;
        vendor.api_key = mailbox::api_key(&mail.body).unwrap_or_default();
        log("approved", &vendor.name, format!("credentials email read: {}…", &vendor.api_key[..16]));
    }

    // 3. Selling until the week ends; restocks and alerts show up as emails.
    let seen_mail: Mutex<usize> = Mutex::new(inbox.lock().await.refresh()?.len());
    let vendors: Vec<Arc<Mutex<Vendor>>> = vendors.into_iter().map(|vendor| Arc::new(Mutex::new(vendor))).collect();
    let mut sellers = Vec::new();
    // The same table of comuna centres the tracking measures distances from.
    let centre = mamochi_rules::comuna::centre(COMUNA).context("the comuna table lists the demo's comuna")?.point;
    for vendor in &vendors {
        let (vendor, http, api, args) = (vendor.clone(), http.clone(), api.clone(), args.clone());
        sellers.push(tokio::spawn(async move {
            let mut number = 0_u32;
            let mut last_ping: Option<Instant> = None;
            while clock.now() < week_end - chrono::Duration::minutes(1) {
                let pause = args.sell_every_min + (args.sell_every_max - args.sell_every_min) * random_unit();
                tokio::time::sleep(Duration::from_secs_f64(pause)).await;
                if clock.now() >= week_end - chrono::Duration::minutes(1) {
                    break;
                }
                let (key, missing) = {
                    let vendor = vendor.lock().await;
                    (vendor.api_key.clone(), vendor.missing)
                };
                // A missing cart neither sells nor reports where it is.
                if missing {
                    continue;
                }
                let location = near(centre);
                if last_ping.is_none_or(|at| at.elapsed() >= PING_EVERY) {
                    last_ping = Some(Instant::now());
                    let status = ping(&http, &api, &key, &location, clock.now()).await;
                    let mut vendor = vendor.lock().await;
                    match status {
                        Ok(()) => vendor.pings += 1,
                        Err(error) => println!("{:>23} ping refused {:<12} {error}", "", vendor.name),
                    }
                }
                number += 1;
                let method = ["cash", "debit", "credit", "transfer"][(number % 4) as usize];
                let response = http
                    .post(format!("{api}/v1/sales"))
                    .bearer_auth(&key)
                    .header("Idempotency-Key", format!("demo-{number}"))
                    .json(&json!({
                        "quantity": 1, "unit_price_clp": args.price_clp, "payment_method": method,
                        "location": location,
                    }))
                    .send()
                    .await;
                let mut vendor = vendor.lock().await;
                match response {
                    Ok(answer) if answer.status().as_u16() == 201 => {
                        vendor.sales += 1;
                        vendor.earnings += args.price_clp;
                        println!(
                            "{:>23} sale #{:<3}  {:<12} {} ({method}) at {:.4}, {:.4}",
                            "",
                            vendor.sales,
                            vendor.name,
                            format_clp(args.price_clp),
                            location["latitude"].as_f64().unwrap_or_default(),
                            location["longitude"].as_f64().unwrap_or_default(),
                        );
                    }
                    Ok(answer) => {
                        vendor.refused += 1;
                        let status = answer.status();
                        let body: Value = answer.json().await.unwrap_or_default();
                        println!("{:>23} sale refused {:<12} {status}: {}", "", vendor.name, body["error"]["message"]);
                    }
                    Err(error) => println!("{:>23} sale failed  {:<12} {error}", "", vendor.name),
                }
            }
        }));
    }
    let by_email: HashMap<String, Arc<Mutex<Vendor>>> = {
        let mut map = HashMap::new();
        for vendor in &vendors {
            map.insert(vendor.lock().await.email.clone(), vendor.clone());
        }
        map
    };
    let staff = settings.tracking.staff_email.to_lowercase();
    let mail = Mailboxes { inbox: &inbox, seen: &seen_mail, vendors: &by_email, staff: &staff };
    // The first vendor's cart goes missing and is found again while everyone
    // sells; the timeline keeps printing mail until both are over.
    let incident_over = AtomicBool::new(false);
    let incident = async {
        let outcome = cart_incident(&vendors[0], &http, &api, &mail, &log, clock, week_end).await;
        incident_over.store(true, Ordering::SeqCst);
        outcome
    };
    let watch = async {
        while sellers.iter().any(|seller| !seller.is_finished()) || !incident_over.load(Ordering::SeqCst) {
            mail.report_new(&log).await?;
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
        anyhow::Ok(())
    };
    tokio::try_join!(incident, watch)?;
    log(
        "week ends",
        "",
        format!(
            "at {} (platform time); waiting for statements",
            week_end.with_timezone(&Santiago).format("%a %d %b %H:%M")
        ),
    );

    // 4. Statements, checked against what was sold.
    let deadline = Instant::now() + Duration::from_secs(120);
    for vendor in &vendors {
        let (key, name) = {
            let v = vendor.lock().await;
            (v.api_key.clone(), v.name.clone())
        };
        let statement = loop {
            mail.report_new(&log).await?;
            let list: Value =
                http.get(format!("{api}/v1/me/statements")).bearer_auth(&key).send().await?.json().await?;
            if let Some(first) = list["statements"].as_array().and_then(|items| items.first()) {
                break first.clone();
            }
            if Instant::now() > deadline {
                bail!("no statement for {name} within two minutes of the week's end");
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        };
        vendor.lock().await.statement = Some(statement);
    }
    for vendor in &vendors {
        let email = vendor.lock().await.email.clone();
        wait_for_mail(&inbox, &email, |mail| {
            mail.body.contains("ventas") || mail.subject.to_lowercase().contains("resumen")
        })
        .await
        .ok();
    }
    mail.report_new(&log).await?;

    // 5. The table.
    println!();
    println!(
        "{:<14} {:<5} {:>6} {:>12} {:>9} {:>10} {:<24}",
        "vendor", "paid", "sales", "earnings", "restocks", "refused", "weekly statement"
    );
    let mut consistent = true;
    let mut reports = Vec::new();
    for vendor in &vendors {
        let vendor = vendor.lock().await;
        reports.push(VendorReport {
            name: vendor.name.clone(),
            paid: vendor.paid,
            sales: vendor.sales,
            earnings_clp: vendor.earnings,
            restocks: vendor.restocks,
            statement_sales: vendor.statement.as_ref().and_then(|statement| statement["sales_count"].as_i64()),
            statement_earnings_clp: vendor.statement.as_ref().and_then(|statement| statement["earnings_clp"].as_i64()),
            pings: vendor.pings,
            alarm_emails: vendor.alarm_emails,
            cleared_emails: vendor.cleared_emails,
        });
        let statement = vendor.statement.clone().unwrap_or_default();
        let matches = statement["sales_count"].as_i64() == Some(i64::from(vendor.sales))
            && statement["earnings_clp"].as_i64() == Some(vendor.earnings);
        consistent &= matches;
        println!(
            "{:<14} {:<5} {:>6} {:>12} {:>9} {:>10} {} {} sales, {} ({})",
            vendor.name,
            if vendor.paid { "yes" } else { "no" },
            vendor.sales,
            format_clp(vendor.earnings),
            vendor.restocks,
            vendor.refused,
            statement["iso_week"].as_str().unwrap_or("?"),
            statement["sales_count"],
            format_clp(statement["earnings_clp"].as_i64().unwrap_or(0)),
            if matches { "matches" } else { "MISMATCH" },
        );
    }
    if !consistent {
        bail!("a statement does not match the sales the demo made");
    }
    println!(
        "\nevery vendor was approved, restocked after each stock-out and received a statement that matches their sales"
    );
    let pings: u32 = reports.iter().map(|report| report.pings).sum();
    if let Some(first) = reports.first() {
        println!(
            "carts sent {pings} location pings; {}'s cart was reported missing, raised an alarm ({} email to the vendor, \
             one to staff) and was found again ({} email to the vendor, one to staff)",
            first.name, first.alarm_emails, first.cleared_emails
        );
    }
    Ok(reports)
}

/// The SMTP sink's mail as the demo follows it: its vendors' and the cart
/// alarms' staff copies.
struct Mailboxes<'a> {
    inbox: &'a Mutex<mailbox::Mailbox>,
    /// Messages already printed.
    seen: &'a Mutex<usize>,
    vendors: &'a HashMap<String, Arc<Mutex<Vendor>>>,
    /// `tracking.staff_email`, lower-case.
    staff: &'a str,
}

impl Mailboxes<'_> {
    /// Prints mail that arrived since the last call to the demo's vendors,
    /// and staff's copies of their cart alarms; counts restocks and alarms.
    async fn report_new(&self, log: &impl Fn(&str, &str, String)) -> anyhow::Result<()> {
        let mut inbox = self.inbox.lock().await;
        let mails = inbox.refresh()?;
        let mut seen = self.seen.lock().await;
        for mail in mails.iter().skip(*seen) {
            let to = mail.to.to_lowercase();
            if to == self.staff {
                for vendor in self.vendors.values() {
                    if is_cart_mail(mail) && mentions(mail, &*vendor.lock().await) {
                        log("email", "staff", format!("{} ({})", mail.subject, self.staff));
                    }
                }
                continue;
            }
            let Some(vendor) = self.vendors.get(&to) else { continue };
            let mut vendor = vendor.lock().await;
            let subject = mail.subject.to_lowercase();
            if subject.contains("reabast") || subject.contains("restock") || subject.contains("repuesto") {
                vendor.restocks += 1;
            }
            if mail.subject.starts_with(ALARM_SUBJECT) {
                vendor.alarm_emails += 1;
            }
            if mail.subject.starts_with(CLEARED_SUBJECT) {
                vendor.cleared_emails += 1;
            }
            log("email", &vendor.name, mail.subject.clone());
        }
        *seen = mails.len();
        Ok(())
    }
}

/// Whether `mail` is a cart alarm or its clearing.
fn is_cart_mail(mail: &Mail) -> bool {
    mail.subject.starts_with(ALARM_SUBJECT) || mail.subject.starts_with(CLEARED_SUBJECT)
}

/// Whether `mail` is about `vendor`'s cart: the alarm emails name the
/// cart's plate, unique to this run (the staff address also gets every
/// other cart's alarms, and the demo's vendor names repeat across runs).
fn mentions(mail: &Mail, vendor: &Vendor) -> bool {
    !vendor.plate.is_empty() && (mail.subject.contains(&vendor.plate) || mail.body.contains(&vendor.plate))
}

/// The missing cart: once `vendor` has made a sale, it reports its cart
/// missing and stops selling; the alarm must reach the vendor and staff by
/// email within [`ALARM_WAIT`]. Then the vendor reports it found, sells
/// again, and the emails that it was found must arrive within the same
/// bound. Any step that does not happen fails the demo.
async fn cart_incident(
    vendor: &Mutex<Vendor>,
    http: &reqwest::Client,
    api: &str,
    mail: &Mailboxes<'_>,
    log: &impl Fn(&str, &str, String),
    clock: Clock,
    week_end: DateTime<Utc>,
) -> anyhow::Result<()> {
    // A cart that has sold (and so pinged): early in the week, so the
    // incident is over before the week's statements fill the mail queue.
    while vendor.lock().await.sales < 1 && clock.now() < week_end - chrono::Duration::minutes(1) {
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let (key, name) = {
        let mut vendor = vendor.lock().await;
        vendor.missing = true;
        (vendor.api_key.clone(), vendor.name.clone())
    };

    let note = "no está en la esquina de siempre";
    let reported = Instant::now();
    let since = mail.inbox.lock().await.refresh()?.len();
    report_cart(http, api, &key, "missing", note)
        .await
        .with_context(|| format!("while {name} reports the cart missing"))?;
    log("cart missing", &name, format!("reported missing (report lane, partition 0): \"{note}\""));
    wait_for_cart_mail(mail, vendor, since, ALARM_SUBJECT).await?;
    // The emails first, then what they mean.
    mail.report_new(log).await?;
    log(
        "cart alarm",
        &name,
        format!(
            "RAISED: emails to the vendor and to staff ({}) {:.1} s after the report",
            mail.staff,
            reported.elapsed().as_secs_f64()
        ),
    );

    // Found a little later (about an hour of platform time in the default demo).
    tokio::time::sleep(Duration::from_secs(2)).await;
    let note = "estaba en el estacionamiento del mercado";
    let found = Instant::now();
    let since = mail.inbox.lock().await.refresh()?.len();
    report_cart(http, api, &key, "found", note)
        .await
        .with_context(|| format!("while {name} reports the cart found"))?;
    vendor.lock().await.missing = false;
    log("cart found", &name, format!("reported found: \"{note}\""));
    wait_for_cart_mail(mail, vendor, since, CLEARED_SUBJECT).await?;
    mail.report_new(log).await?;
    log(
        "cart alarm",
        &name,
        format!(
            "CLEARED: emails to the vendor and to staff ({}) {:.1} s after the report",
            mail.staff,
            found.elapsed().as_secs_f64()
        ),
    );
    Ok(())
}

/// `POST /v1/carts/me/reports` with `kind` (`missing` or `found`); 202 expected.
async fn report_cart(http: &reqwest::Client, api: &str, key: &str, kind: &str, note: &str) -> anyhow::Result<()> {
    let answer = http
        .post(format!("{api}/v1/carts/me/reports"))
        .bearer_auth(key)
        .json(&json!({"kind": kind, "note": note}))
        .send()
        .await?;
    let status = answer.status();
    if status.as_u16() != 202 {
        let body: Value = answer.json().await.unwrap_or_default();
        bail!("the {kind} report was refused ({status}): {}", body["error"]["message"]);
    }
    Ok(())
}

/// Waits, up to [`ALARM_WAIT`], for a message with a subject starting
/// `subject` to the vendor and one to staff about the vendor's cart, both
/// among the messages after the first `since` of the mailbox.
async fn wait_for_cart_mail(
    mail: &Mailboxes<'_>,
    vendor: &Mutex<Vendor>,
    since: usize,
    subject: &str,
) -> anyhow::Result<()> {
    let deadline = Instant::now() + ALARM_WAIT;
    loop {
        let mut inbox = mail.inbox.lock().await;
        let mails = inbox.refresh()?;
        let (to_vendor, to_staff) = {
            let vendor = vendor.lock().await;
            let new = || mails.iter().skip(since).filter(|mail| mail.subject.starts_with(subject));
            (
                new().any(|mail| mail.to.eq_ignore_ascii_case(&vendor.email)),
                new().any(|message| message.to.eq_ignore_ascii_case(mail.staff) && mentions(message, &vendor)),
            )
        };
        if to_vendor && to_staff {
            return Ok(());
        }
        if Instant::now() > deadline {
            let name = vendor.lock().await.name.clone();
            bail!(
                "no \"{subject}…\" email {} within {} s of the report on {name}'s cart (mail directory {})",
                match (to_vendor, to_staff) {
                    (false, false) => "to the vendor nor to staff",
                    (false, true) => "to the vendor",
                    _ => "to staff",
                },
                ALARM_WAIT.as_secs(),
                inbox.dir().display()
            );
        }
        drop(inbox);
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// `POST /v1/carts/me/locations`: where the cart is at `at` (platform time).
async fn ping(http: &reqwest::Client, api: &str, key: &str, location: &Value, at: DateTime<Utc>) -> anyhow::Result<()> {
    let mut body = location.clone();
    body["occurred_at"] = json!(at.to_rfc3339_opts(SecondsFormat::Millis, true));
    let answer = http.post(format!("{api}/v1/carts/me/locations")).bearer_auth(key).json(&body).send().await?;
    let status = answer.status();
    if status.as_u16() != 202 {
        let body: Value = answer.json().await.unwrap_or_default();
        bail!("{status}: {}", body["error"]["message"]);
    }
    Ok(())
}

/// A position within about a kilometre of `centre` (well inside the
/// tracking's radius), with the device's accuracy: the `location` of a
/// sale, and a ping's body without its time.
fn near(centre: mamochi_rules::geo::Point) -> Value {
    json!({
        "latitude": centre.latitude + (random_unit() - 0.5) * 0.02,
        "longitude": centre.longitude + (random_unit() - 0.5) * 0.02,
        "accuracy_m": (5.0 + 20.0 * random_unit()).round(),
    })
}

/// Waits up to a minute for a message to `to` that is `wanted`, among those
/// `inbox` has seen arrive.
async fn wait_for_mail(
    inbox: &Mutex<mailbox::Mailbox>,
    to: &str,
    wanted: impl Fn(&Mail) -> bool,
) -> anyhow::Result<Mail> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        {
            let mut inbox = inbox.lock().await;
            let mails = inbox.refresh()?;
            if let Some(mail) = mails.iter().find(|mail| mail.to.eq_ignore_ascii_case(to) && wanted(mail)) {
                return Ok(mail.clone());
            }
            if Instant::now() > deadline {
                bail!("no such email to {to} within a minute (mail directory {})", inbox.dir().display());
            }
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Waits for the gateway's `/readyz` on its operations port (`ops`, a base URL).
async fn wait_until_ready(http: &reqwest::Client, ops: &str) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline {
        if let Ok(response) = http.get(format!("{ops}/readyz")).send().await {
            if response.status().is_success() {
                return Ok(());
            }
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    bail!("the gateway (operations port {ops}) did not become ready")
}

/// The first Monday 00:00 America/Santiago strictly after `instant`: the end
/// of the guild's week that contains it. The guild's week rule (mamochi-rules)
/// decides, the one accounting closes weeks by, so the demo's week ends
/// exactly where accounting closes it, daylight-saving weeks included.
fn next_monday_midnight(instant: DateTime<Utc>) -> DateTime<Utc> {
    mamochi_rules::week::Week::containing(instant).end
}

/// A valid RUT, different per vendor and per run.
fn rut(index: usize, run_tag: &str) -> String {
    let seed = u32::from_str_radix(&run_tag[..6], 16).unwrap_or(0) % 50_000_000;
    mamochi_rules::rut::for_number(20_000_000 + seed + index as u32 * 7_919)
}

/// A current-format plate (four consonants, two digits), per vendor and run.
fn plate(index: usize, run_tag: &str) -> String {
    let seed = u64::from_str_radix(&run_tag[..8], 16).unwrap_or(0);
    mamochi_rules::plate::current(seed + index as u64 * 104_729)
}

/// A mobile number, per vendor and run (members may not share a phone).
fn phone(index: usize, run_tag: &str) -> String {
    let seed = u64::from_str_radix(&run_tag[..7], 16).unwrap_or(0) % 9_000_000;
    mamochi_rules::phone::mobile(10_000_000 + seed * 10 + index as u64)
}

/// A payment reference in the gateway's format (`PAGO-` and 16 digits),
/// unique per run and vendor: each is accepted once only.
fn payment_reference(index: usize, run_tag: &str) -> String {
    let seed = u64::from_str_radix(&run_tag[..8], 16).unwrap_or(0);
    format!("PAGO-{seed:010}{index:06}")
}

fn random_unit() -> f64 {
    (uuid::Uuid::new_v4().as_u128() % 10_000) as f64 / 10_000.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn next_monday_midnight_is_the_first_santiago_monday_midnight_after_the_instant() {
        // Expected instants written out by hand from the Santiago offsets:
        // UTC-3 in summer, UTC-4 in winter; winter time ends on Sunday
        // 2026-09-06 and starts on Sunday 2026-04-05.
        let cases = [
            // A Thursday in summer time.
            ("2026-11-26T15:00:00Z", "2026-11-30T03:00:00Z"),
            // Sunday 23:59:59 local: the Monday an instant later.
            ("2026-11-30T02:59:59Z", "2026-11-30T03:00:00Z"),
            // Monday 00:00 local itself, and Monday noon: the next Monday.
            ("2026-11-30T03:00:00Z", "2026-12-07T03:00:00Z"),
            ("2026-11-30T15:00:00Z", "2026-12-07T03:00:00Z"),
            // Sunday 23:30 at UTC-4 before the week of the September change:
            // its week ends at UTC-4 (168 hours later would be Monday 00:30
            // local of the week after, at UTC-3).
            ("2026-08-31T03:30:00Z", "2026-08-31T04:00:00Z"),
            // Saturday before the change (UTC-4); Monday is at UTC-3.
            ("2026-09-05T16:00:00Z", "2026-09-07T03:00:00Z"),
            // Friday before the April change (UTC-3); Monday is at UTC-4.
            ("2026-04-03T15:00:00Z", "2026-04-06T04:00:00Z"),
            // Sunday 23:30 local after the April change (UTC-4).
            ("2026-04-06T03:30:00Z", "2026-04-06T04:00:00Z"),
        ];
        for (instant, expected) in cases {
            let instant: DateTime<Utc> = instant.parse().expect("instant");
            let expected: DateTime<Utc> = expected.parse().expect("expected");
            assert_eq!(next_monday_midnight(instant), expected, "after {instant}");
        }
    }

    #[test]
    fn generated_ruts_and_plates_are_valid_and_distinct() {
        let ruts: Vec<_> = (0..5).map(|index| rut(index, "1a2b3c4d")).collect();
        let plates: Vec<_> = (0..5).map(|index| plate(index, "1a2b3c4d")).collect();
        assert!(ruts.iter().all(|rut| mamochi_rules::rut::check_digit_ok(rut)));
        assert_eq!(ruts.iter().collect::<std::collections::HashSet<_>>().len(), 5);
        assert_eq!(plates.iter().collect::<std::collections::HashSet<_>>().len(), 5);
        assert!(plates.iter().all(|plate| plate.len() == 6));
    }
}
