"""MAMOCHI · Paid versus standard approval: paid forms travel on partition 0
of mamochi.registrations and are fetched first; how long each lane waits for
its decision, and how much each lane carries."""

from house import Row, dashboard, stat_panel, timeseries_panel
from promql import LAG, per_minute, quantile, sum_rate

WAIT = "mamochi_approval_wait_seconds"
LANES = ("paid", "standard")
QUANTILES = (("p50", 0.5), ("p95", 0.95), ("p99", 0.99))


def lane_stats() -> list:
    """p50, p95 and p99 of each lane's wait, as single figures."""
    return [
        stat_panel(
            f"{lane.capitalize()} {name}",
            f"{name} of the {lane} lane's wait over the selected interval.",
            "s",
            [(quantile(q, WAIT, matchers=f'lane="{lane}"'), lane)],
            width=4,
            decimals=2,
        )
        for lane in LANES
        for name, q in QUANTILES
    ]


def build():
    # Partition 0 of mamochi.registrations is the paid lane.
    paid = 'topic="mamochi.registrations", partition="0"'
    standard = 'topic="mamochi.registrations", partition!="0"'
    return dashboard(
        "mamochi-approval",
        "MAMOCHI · Paid versus standard approval",
        "Paid forms travel on partition 0 of mamochi.registrations and are fetched first: "
        "how long each lane waits for its decision.",
        ["approval"],
        [
            Row(
                "Wait from submission to decision",
                [
                    *lane_stats(),
                    timeseries_panel(
                        "Approval wait by lane (p50, p95, p99)",
                        "From a form's submission to its automatic decision, per lane. "
                        "The paid line should stay low when standard forms pile up.",
                        "s",
                        [(quantile(q, WAIT, ("lane",)), f"{{{{lane}}}} {name}") for name, q in QUANTILES],
                        width=16,
                        height=9,
                    ),
                    timeseries_panel(
                        "Mean wait by lane",
                        "Average wait per lane: sum of waits over number of decisions.",
                        "s",
                        [
                            (
                                f"{sum_rate(WAIT + '_sum', by=('lane',))} / {sum_rate(WAIT + '_count', by=('lane',))}",
                                "{{lane}}",
                            )
                        ],
                        width=8,
                        height=9,
                    ),
                ],
            ),
            Row(
                "Load on each lane",
                [
                    timeseries_panel(
                        "Decisions per minute by lane and outcome",
                        "Forms decided per lane: approved, rejected, or sent to manual review.",
                        "cpm",
                        [
                            (
                                per_minute(sum_rate("mamochi_approval_decisions_total", by=("lane", "outcome"))),
                                "{{lane}} {{outcome}}",
                            )
                        ],
                    ),
                    timeseries_panel(
                        "Forms waiting by lane",
                        "Lag of the approval group on mamochi.registrations: partition 0 is the paid lane, 1–3 the standard one.",
                        "short",
                        [
                            (f"sum(max by (group, partition) ({LAG}{{{paid}}}))", "paid (partition 0)"),
                            (f"sum(max by (group, partition) ({LAG}{{{standard}}}))", "standard (partitions 1–3)"),
                        ],
                    ),
                    timeseries_panel(
                        "Credentials email after approval, p95",
                        "95th percentile from the approval requesting the credentials email to the SMTP relay accepting it.",
                        "s",
                        [
                            (
                                quantile(0.95, "mamochi_notifier_end_to_end_seconds", matchers='category="credentials"'),
                                "credentials p95",
                            )
                        ],
                        width=24,
                    ),
                ],
            ),
        ],
    )
