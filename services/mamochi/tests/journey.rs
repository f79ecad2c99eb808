//! The guild's whole journey on the real stack, with every service running:
//! vendors register (one paid), are approved, read their API keys from the
//! credentials emails in the SMTP sink, sell until their carts run out
//! (every ten sales), are restocked, and when the week closes receive a
//! statement whose count and earnings equal what they sold. It is the demo's
//! scenario, shortened: a quick seller and a fifteen-second week.

mod support;

use mamochi::demo::{self, DemoArgs};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn register_approve_sell_restock_and_receive_the_weekly_statement() {
    // Arrange
    let settings = support::isolated_settings();
    let mail_dir = std::env::var_os("MAMOCHI_MAIL_DIR").expect("MAMOCHI_MAIL_DIR is set by the test stack").into();
    let args = DemoArgs {
        vendors: 2,
        paid: 1,
        sell_every_min: 0.2,
        sell_every_max: 0.4,
        price_clp: 1_800,
        week_minutes: 0.25,
        time_scale: 2016.0,
        mail_dir,
    };

    // Act
    let reports = demo::run(&settings, args).await.expect("the journey completes");

    // Assert
    assert_eq!(reports.len(), 2);
    assert_eq!(reports.iter().filter(|report| report.paid).count(), 1);
    for report in &reports {
        assert!(report.sales >= 10, "{} sold past one stock-out: {report:?}", report.name);
        assert!(report.restocks >= report.sales / 10 - 1, "restocked after stock-outs: {report:?}");
        assert!(report.restocks >= 1, "at least one restock email: {report:?}");
        assert_eq!(report.statement_sales, Some(i64::from(report.sales)), "statement count: {report:?}");
        assert_eq!(
            report.statement_earnings_clp,
            Some(i64::from(report.sales) * 1_800),
            "statement earnings: {report:?}"
        );
    }
}
