//! The guild's whole journey on the real stack, with every service running:
//! vendors register (one paid), are approved, read their API keys from the
//! credentials emails in the SMTP sink, sell until their carts run out
//! (every ten sales), are restocked, and when the week closes receive a
//! statement whose count and earnings equal what they sold. It is the demo's
//! scenario, shortened: a quick seller and a fifteen-second week.

mod support;

use mamochi::demo;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn register_approve_sell_restock_and_receive_the_weekly_statement() {
    // Arrange
    let settings = support::isolated_settings();
    let args = support::short_journey();

    // Act
    let reports = demo::run(&settings, args).await.expect("the journey completes");

    // Assert
    support::assert_journey(&reports);
    for report in &reports {
        assert!(report.restocks >= report.sales / 10 - 1, "restocked after stock-outs: {report:?}");
    }
}
