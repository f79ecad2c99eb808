"""MAMOCHI · End-to-end latency: p50/p95/p99 of each flow from the event's
creation to its effect, then p95 of each step (HTTP, produce, handling,
schema registry)."""

from house import Row, dashboard, timeseries_panel
from promql import quantile, sum_rate

QUANTILES = (("p50", 0.5), ("p95", 0.95), ("p99", 0.99))


def three_quantiles(histogram: str) -> list[tuple[str, str]]:
    """p50, p95 and p99 of a histogram over every instance."""
    return [(quantile(q, histogram), name) for name, q in QUANTILES]


def build():
    return dashboard(
        "mamochi-latency",
        "MAMOCHI · End-to-end latency",
        "How long each flow takes, from the event's creation to its effect, as p50, p95 and p99 from the services' histograms.",
        ["latency"],
        [
            Row(
                "Flows",
                [
                    timeseries_panel(
                        "Sale → counted by accounting",
                        "From the gateway accepting a sale (recorded_at) to accounting committing it into the vendor's week.",
                        "s",
                        three_quantiles("mamochi_accounting_end_to_end_seconds"),
                    ),
                    timeseries_panel(
                        "Sale → cart stock updated",
                        "From the gateway accepting a sale (recorded_at) to the distributor committing the cart's new stock.",
                        "s",
                        three_quantiles("mamochi_distributor_end_to_end_seconds"),
                    ),
                    timeseries_panel(
                        "Form → decision (approval wait)",
                        "From a form's submission to its automatic decision, paid and standard lanes together "
                        "(see the approval dashboard for each lane).",
                        "s",
                        three_quantiles("mamochi_approval_wait_seconds"),
                    ),
                    timeseries_panel(
                        "Email request → accepted by SMTP",
                        "From a service requesting an email (requested_at) to the SMTP relay accepting it, every category.",
                        "s",
                        three_quantiles("mamochi_notifier_end_to_end_seconds"),
                    ),
                    timeseries_panel(
                        "Email request → accepted by SMTP, p95 by category",
                        "95th percentile per email category: credentials, restock, low_stock, statement, rejection.",
                        "s",
                        [(quantile(0.95, "mamochi_notifier_end_to_end_seconds", ("category",)), "{{category}}")],
                        width=24,
                    ),
                ],
            ),
            Row(
                "Steps",
                [
                    timeseries_panel(
                        "HTTP request duration p95 by route",
                        "95th percentile of the gateway's answer time per route (produce to Kafka with acks=all included).",
                        "s",
                        [(quantile(0.95, "mamochi_gateway_http_request_duration_seconds", ("route",)), "{{route}}")],
                    ),
                    timeseries_panel(
                        "HTTP request duration, all routes",
                        "p50, p95 and p99 of the gateway's answer time over every route.",
                        "s",
                        three_quantiles("mamochi_gateway_http_request_duration_seconds"),
                    ),
                    timeseries_panel(
                        "Kafka produce p95 by topic",
                        "95th percentile from encoding a record to Kafka's acks=all acknowledgement.",
                        "s",
                        [(quantile(0.95, "mamochi_kafka_produce_seconds", ("topic",)), "{{topic}}")],
                    ),
                    timeseries_panel(
                        "Record handling p95 by topic",
                        "95th percentile from a record reaching the consumer loop to its effect committed (database included).",
                        "s",
                        [(quantile(0.95, "mamochi_kafka_handle_seconds", ("topic",)), "{{topic}}")],
                    ),
                    timeseries_panel(
                        "Schema registry request duration p95 by route",
                        "95th percentile of the registry's answer time; clients cache schemas, so this is mostly start-up.",
                        "s",
                        [(quantile(0.95, "mamochi_registry_http_request_duration_seconds", ("route",)), "{{route}}")],
                    ),
                    timeseries_panel(
                        "Schema look-ups by the clients",
                        "Registry-client look-ups per second by kind and result: a hit is served from the cache, "
                        "a miss asks the registry.",
                        "ops",
                        [(sum_rate("mamochi_registry_client_lookups_total", by=("kind", "result")), "{{kind}} {{result}}")],
                    ),
                ],
            ),
        ],
    )
