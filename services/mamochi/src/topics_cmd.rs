//! `mamochi topics`: creates every topic of the catalog that does not exist
//! yet, with its partitions and retention, and lists them.

use anyhow::Context;
use mamochi_common::{kafka, Settings};
use mamochi_events::topics;

pub async fn run(settings: &Settings) -> anyhow::Result<()> {
    let admin = kafka::admin(&settings.kafka).context("while creating the admin client")?;
    kafka::ensure_topics(&admin, &topics::all_specs()).await.context("while creating topics")?;
    for topic in topics::ALL {
        println!("{:<32} {:>2} partitions  {}", topic.name, topic.partitions, topic.doc);
    }
    Ok(())
}
