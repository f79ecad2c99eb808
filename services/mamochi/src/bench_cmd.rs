//! `mamochi bench`: hands the benchmark (the `mamochi_bench` crate) the two
//! things only this binary knows: how to run every platform service in
//! process, and how to read an API key out of a credentials email.

use futures::future::BoxFuture;
use mamochi_common::shutdown::Shutdown;
use mamochi_common::Settings;

use crate::mailbox;
use crate::run::{run_services, Service};

/// The platform as `mamochi run all` runs it.
#[derive(Debug, Clone, Copy)]
pub struct InProcess;

impl mamochi_bench::Platform for InProcess {
    fn run(&self, settings: Settings, shutdown: Shutdown) -> BoxFuture<'static, anyhow::Result<()>> {
        Box::pin(async move { run_services(&settings, &[Service::All], shutdown).await })
    }

    fn api_key(&self, body: &str) -> Option<String> {
        mailbox::api_key(body)
    }
}

pub async fn run(settings: &Settings, args: mamochi_bench::BenchArgs) -> anyhow::Result<()> {
    mamochi_bench::run(settings, args, InProcess).await
}
