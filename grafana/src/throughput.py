"""MAMOCHI · Throughput: requests the API answers and records Kafka carries,
per second, and what each service did with them."""

from house import Row, dashboard, stat_panel, timeseries_panel
from promql import per_minute, sum_rate

HTTP = "mamochi_gateway_http_requests_total"
PRODUCED = "mamochi_kafka_records_produced_total"
CONSUMED = "mamochi_kafka_records_consumed_total"


def build():
    return dashboard(
        "mamochi-throughput",
        "MAMOCHI · Throughput",
        "Requests the API answers and records Kafka carries, per second: what the platform is doing right now.",
        ["throughput"],
        [
            Row(
                "Public API (gateway)",
                [
                    stat_panel(
                        "Requests per second",
                        "All HTTP requests the gateway answered, every route and status.",
                        "reqps",
                        [(sum_rate(HTTP), "requests/s")],
                    ),
                    stat_panel(
                        "Sales per second",
                        "Sales the gateway accepted (POST /v1/sales answered 201).",
                        "reqps",
                        [(sum_rate(HTTP, 'route="/v1/sales", status="201"'), "sales/s")],
                    ),
                    stat_panel(
                        "Registrations per minute",
                        "Forms the gateway accepted (POST /v1/registrations answered 202).",
                        "cpm",
                        [(per_minute(sum_rate(HTTP, 'route="/v1/registrations", status="202"')), "forms/min")],
                    ),
                    stat_panel(
                        "Records produced per second",
                        "Records Kafka acknowledged (acks=all) from every service, every topic.",
                        "suffix: rec/s",
                        [(sum_rate(PRODUCED), "records/s")],
                    ),
                    timeseries_panel(
                        "HTTP requests per second by route",
                        "Requests the gateway answered, by route pattern (every method and status).",
                        "reqps",
                        [(sum_rate(HTTP, by=("route",)), "{{route}}")],
                    ),
                    timeseries_panel(
                        "HTTP requests per second by status",
                        "Requests the gateway answered, by HTTP status code.",
                        "reqps",
                        [(sum_rate(HTTP, by=("status",)), "{{status}}")],
                    ),
                ],
            ),
            Row(
                "Kafka",
                [
                    timeseries_panel(
                        "Records produced per second by topic",
                        "Records Kafka acknowledged (acks=all), by topic and producing service.",
                        "suffix: rec/s",
                        [(sum_rate(PRODUCED, by=("topic", "job")), "{{topic}} ← {{job}}")],
                    ),
                    timeseries_panel(
                        "Records consumed per second by topic",
                        "Records the consumer loops took from each topic (decoded or parked), by consuming service.",
                        "suffix: rec/s",
                        [(sum_rate(CONSUMED, by=("topic", "job")), "{{topic}} → {{job}}")],
                    ),
                ],
            ),
            Row(
                "What the services did",
                [
                    timeseries_panel(
                        "Approval decisions per minute",
                        "Registration forms decided, by lane and outcome.",
                        "cpm",
                        [
                            (
                                per_minute(sum_rate("mamochi_approval_decisions_total", by=("lane", "outcome"))),
                                "{{lane}} {{outcome}}",
                            )
                        ],
                        width=8,
                    ),
                    timeseries_panel(
                        "Stock per minute",
                        "Sales applied to carts, stock-outs and restocks (by what asked for it) in the distributor.",
                        "cpm",
                        [
                            (per_minute(sum_rate("mamochi_distributor_sales_applied_total")), "sales applied"),
                            (per_minute(sum_rate("mamochi_distributor_stock_outs_total")), "stock-outs"),
                            (
                                per_minute(sum_rate("mamochi_distributor_restocks_total", by=("kind",))),
                                "restocks ({{kind}})",
                            ),
                        ],
                        width=8,
                    ),
                    timeseries_panel(
                        "Emails sent per minute by category",
                        "Emails the SMTP relay accepted, by category (credentials, restock, low_stock, statement, rejection).",
                        "cpm",
                        [(per_minute(sum_rate("mamochi_notifier_emails_sent_total", by=("category",))), "{{category}}")],
                        width=8,
                    ),
                    timeseries_panel(
                        "Sales counted by accounting per second",
                        "Sales accounting counted into a vendor's week (each sale once).",
                        "suffix: sales/s",
                        [(sum_rate("mamochi_accounting_sales_applied_total"), "counted")],
                    ),
                    timeseries_panel(
                        "Schema registry requests per second by route",
                        "Requests the schema registry answered, by route pattern.",
                        "reqps",
                        [(sum_rate("mamochi_registry_http_requests_total", by=("route",)), "{{route}}")],
                    ),
                ],
            ),
        ],
    )
