//! Reads one histogram out of a service's Prometheus `/metrics` text.
//!
//! Only what the bench needs: the `_bucket`, `_sum` and `_count` lines of one
//! metric, optionally narrowed by one label (`topic="mamochi.sales"`). Two
//! scrapes around a stage, diffed ([`crate::stats::Buckets::since`]), give
//! that stage's server-side distribution.

use crate::stats::Buckets;

/// The histogram `name` (without suffix) whose labels include `label`
/// (`key="value"`, or any when `None`); `None` when the text has no such series.
pub fn histogram(text: &str, name: &str, label: Option<&str>) -> Option<Buckets> {
    let mut buckets = Buckets::default();
    let mut found = false;
    for line in text.lines().filter(|line| !line.starts_with('#')) {
        let Some((series, value)) = line.rsplit_once(' ') else { continue };
        let Ok(value) = value.trim().parse::<f64>() else { continue };
        let (metric, labels) = match series.split_once('{') {
            Some((metric, labels)) => (metric, labels.trim_end_matches('}')),
            None => (series, ""),
        };
        if label.is_some_and(|wanted| !labels.split(',').any(|pair| pair.trim() == wanted)) {
            continue;
        }
        match metric.strip_prefix(name) {
            Some("_bucket") => {
                let Some(bound) = labels.split(',').find_map(|pair| pair.trim().strip_prefix("le=")) else { continue };
                let bound = bound.trim_matches('"');
                let bound = if bound == "+Inf" {
                    f64::INFINITY
                } else if let Ok(bound) = bound.parse() {
                    bound
                } else {
                    continue;
                };
                buckets.cumulative.push((bound, value));
                found = true;
            }
            Some("_sum") => buckets.sum = value,
            Some("_count") => buckets.count = value,
            _ => {}
        }
    }
    buckets.cumulative.sort_by(|a, b| a.0.total_cmp(&b.0));
    found.then_some(buckets)
}

/// The first of `names` present in `text` (metric names move as the
/// platform's metrics evolve; the bench accepts the old and the new).
pub fn first_histogram(text: &str, names: &[&str], label: Option<&str>) -> Option<(String, Buckets)> {
    names.iter().find_map(|name| histogram(text, name, label).map(|buckets| (name.to_string(), buckets)))
}

/// GETs `url` and returns the body, or `None` if the service does not answer.
pub async fn fetch(client: &reqwest::Client, url: &str) -> Option<String> {
    let response = client.get(url).send().await.ok()?;
    if !response.status().is_success() {
        return None;
    }
    response.text().await.ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = r#"# HELP mamochi_kafka_produce_seconds Seconds from encoding a record to acks=all.
# TYPE mamochi_kafka_produce_seconds histogram
mamochi_kafka_produce_seconds_bucket{topic="mamochi.sales",le="0.005"} 10
mamochi_kafka_produce_seconds_bucket{topic="mamochi.sales",le="0.01"} 30
mamochi_kafka_produce_seconds_bucket{topic="mamochi.sales",le="+Inf"} 31
mamochi_kafka_produce_seconds_sum{topic="mamochi.sales"} 0.25
mamochi_kafka_produce_seconds_count{topic="mamochi.sales"} 31
mamochi_kafka_produce_seconds_bucket{topic="mamochi.stock",le="0.005"} 2
mamochi_kafka_produce_seconds_bucket{topic="mamochi.stock",le="0.01"} 2
mamochi_kafka_produce_seconds_bucket{topic="mamochi.stock",le="+Inf"} 2
mamochi_kafka_produce_seconds_sum{topic="mamochi.stock"} 0.002
mamochi_kafka_produce_seconds_count{topic="mamochi.stock"} 2
mamochi_accounting_end_to_end_seconds_bucket{le="0.1"} 4
mamochi_accounting_end_to_end_seconds_bucket{le="+Inf"} 5
mamochi_accounting_end_to_end_seconds_sum 0.6
mamochi_accounting_end_to_end_seconds_count 5
"#;

    #[test]
    fn one_labelled_series_is_picked_out() {
        let buckets =
            histogram(TEXT, "mamochi_kafka_produce_seconds", Some(r#"topic="mamochi.sales""#)).expect("series");
        assert_eq!(buckets.cumulative, vec![(0.005, 10.0), (0.01, 30.0), (f64::INFINITY, 31.0)]);
        assert_eq!((buckets.sum, buckets.count), (0.25, 31.0));
    }

    #[test]
    fn an_unlabelled_histogram_is_read() {
        let buckets = histogram(TEXT, "mamochi_accounting_end_to_end_seconds", None).expect("series");
        assert_eq!(buckets.count, 5.0);
        assert_eq!(buckets.cumulative.len(), 2);
    }

    #[test]
    fn the_first_known_name_wins_and_unknown_names_are_none() {
        let (name, _) =
            first_histogram(TEXT, &["mamochi_gateway_produce_duration_seconds", "mamochi_kafka_produce_seconds"], None)
                .expect("one of them");
        assert_eq!(name, "mamochi_kafka_produce_seconds");
        assert!(histogram(TEXT, "nothing_here", None).is_none());
    }
}
