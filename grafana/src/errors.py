"""MAMOCHI · Errors and dead letters: services up, HTTP client and server
errors, records parked in the dead letters, email that could not be sent."""

from house import Row, dashboard, stat_panel, timeseries_panel
from promql import per_minute, sum_increase, sum_rate

HTTP = "mamochi_gateway_http_requests_total"
DEAD_LETTERS = "mamochi_kafka_dead_letters_total"
SEND_FAILURES = "mamochi_notifier_send_failures_total"


def share(matchers: str, window: str = "$__rate_interval") -> str:
    """The gateway's answers matching `matchers`, as a share of all of them."""
    return f"{sum_rate(HTTP, matchers, window=window)} / {sum_rate(HTTP, window=window)}"


def build():
    return dashboard(
        "mamochi-errors",
        "MAMOCHI · Errors and dead letters",
        "What went wrong: HTTP client and server errors, records parked in the dead letters, "
        "email that could not be sent, services down.",
        ["errors"],
        [
            Row(
                "Health",
                [
                    stat_panel(
                        "Services up",
                        "Services Prometheus can scrape now, out of those it is configured for.",
                        "short",
                        [("sum(up)", "up")],
                        sparkline=False,
                    ),
                    stat_panel(
                        "Gateway 5xx ratio",
                        "Share of the gateway's answers that were server errors over the last 5 minutes (alert above 5%).",
                        "percentunit",
                        [(share('status=~"5.."', window="5m"), "5xx")],
                        steps=((None, "green"), (0.01, "yellow"), (0.05, "red")),
                        decimals=2,
                    ),
                    stat_panel(
                        "Dead letters (time range)",
                        "Records parked in mamochi.dead-letters during the selected time range, every topic and reason.",
                        "short",
                        [(sum_increase(DEAD_LETTERS, window="$__range"), "dead letters")],
                        steps=((None, "green"), (1, "red")),
                        decimals=0,
                    ),
                    stat_panel(
                        "Email send failures (time range)",
                        "SMTP attempts that failed (and are retried) during the selected time range.",
                        "short",
                        [(sum_increase(SEND_FAILURES, window="$__range"), "failures")],
                        steps=((None, "green"), (1, "yellow"), (20, "red")),
                        decimals=0,
                    ),
                    timeseries_panel(
                        "Scrape status by service",
                        "1 when Prometheus could scrape the service, 0 when it could not (alert after a minute at 0).",
                        "short",
                        [("up", "{{job}}")],
                        width=24,
                        height=6,
                        legend_calcs=("lastNotNull", "min"),
                    ),
                ],
            ),
            Row(
                "HTTP",
                [
                    timeseries_panel(
                        "Gateway 4xx per second by route and status",
                        "Requests the gateway refused as the client's fault: validation (400, 422), authentication (401), stock (409)…",
                        "reqps",
                        [(sum_rate(HTTP, 'status=~"4.."', by=("route", "status")), "{{status}} {{route}}")],
                    ),
                    timeseries_panel(
                        "Gateway 5xx per second by route and status",
                        "Requests the gateway failed on its side; the cause is in its log.",
                        "reqps",
                        [(sum_rate(HTTP, 'status=~"5.."', by=("route", "status")), "{{status}} {{route}}")],
                    ),
                    timeseries_panel(
                        "Gateway error ratio",
                        "Share of answers that were 4xx and 5xx.",
                        "percentunit",
                        [(share('status=~"4.."'), "4xx"), (share('status=~"5.."'), "5xx")],
                        dashed_steps=((None, "green"), (0.05, "red")),
                    ),
                    timeseries_panel(
                        "Schema registry errors per second",
                        "Registry answers with a 4xx or 5xx status, by route and status.",
                        "reqps",
                        [
                            (
                                sum_rate("mamochi_registry_http_requests_total", 'status=~"4..|5.."', by=("route", "status")),
                                "{{status}} {{route}}",
                            )
                        ],
                    ),
                ],
            ),
            Row(
                "Kafka",
                [
                    timeseries_panel(
                        "Dead letters by topic and reason",
                        "Records parked in mamochi.dead-letters per interval, by source topic, reason and service. "
                        "Read them with `stack kafka-tool console-consumer --topic mamochi.dead-letters`.",
                        "short",
                        [(sum_increase(DEAD_LETTERS, by=("topic", "reason", "job")), "{{topic}} {{reason}} ({{job}})")],
                        bars=True,
                        decimals=0,
                    ),
                    timeseries_panel(
                        "Dead letters so far by reason",
                        "Running count since each service started, by source topic and reason.",
                        "short",
                        [(f"sum by (topic, reason) ({DEAD_LETTERS})", "{{topic}} {{reason}}")],
                        decimals=0,
                    ),
                ],
            ),
            Row(
                "Email",
                [
                    timeseries_panel(
                        "Email send failures and retries per minute",
                        "SMTP attempts that failed (and will be retried) and attempts on emails whose earlier attempt failed, by category.",
                        "cpm",
                        [
                            (per_minute(sum_rate(SEND_FAILURES, by=("category",))), "failed {{category}}"),
                            (
                                per_minute(sum_rate("mamochi_notifier_send_retries_total", by=("category",))),
                                "retried {{category}}",
                            ),
                        ],
                    ),
                    timeseries_panel(
                        "Emails sent versus failed per minute",
                        "Emails the relay accepted against failed attempts, every category.",
                        "cpm",
                        [
                            (per_minute(sum_rate("mamochi_notifier_emails_sent_total")), "sent"),
                            (per_minute(sum_rate(SEND_FAILURES)), "failed attempts"),
                        ],
                    ),
                ],
            ),
        ],
    )
