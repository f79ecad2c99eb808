"""MAMOCHI · Carts: the distributor's cart tracking. How many carts report
their position, which incidents are open (reported missing, silent, out of
their area), how often alarms are raised and cleared and how long the
platform took to raise them, and whether reports on partition 0 of
mamochi.cart-tracking stay ahead of the location pings.

Every figure comes from the distributor's tracking metrics
(`mamochi_tracking_*`) and its consumer group `distributor-tracking`. The
two gauges are counted from the database, so every distributor instance
exports the same platform-wide figure: they are combined with `max`, never
summed.
"""

from house import Row, dashboard, stat_panel, timeseries_panel
from promql import LAG, per_minute, quantile, sum_rate

REPORTING = "mamochi_tracking_carts_reporting"
OPEN = "mamochi_tracking_open_incidents"
ALARMS = "mamochi_tracking_alarms_total"
LATENCY = "mamochi_tracking_alarm_latency_seconds"
PINGS = "mamochi_tracking_pings_total"
CAUSES = ("reported_missing", "silent", "out_of_area")
QUANTILES = (("p50", 0.5), ("p95", 0.95))

# Partition 0 of mamochi.cart-tracking is the report lane (missing and found
# reports only); location pings travel on partitions 1–3.
TRACKING = 'group="distributor-tracking", topic="mamochi.cart-tracking"'
REPORT_LANE = f'{TRACKING}, partition="0"'
PING_LANES = f'{TRACKING}, partition!="0"'

ANY_OPEN = ((None, "green"), (1, "red"))


def now_stats() -> list:
    """Carts reporting, open incidents in all and per cause, as figures."""
    return [
        stat_panel(
            "Carts reporting",
            "Carts whose last position is younger than tracking.silence_after_secs.",
            "short",
            [(f"max({REPORTING})", "reporting")],
            width=4,
            decimals=0,
        ),
        stat_panel(
            "Open incidents",
            "Cart incidents raised and not yet cleared, every cause.",
            "short",
            [(f"sum(max by (cause) ({OPEN}))", "open")],
            width=4,
            steps=ANY_OPEN,
            decimals=0,
        ),
        *[
            stat_panel(
                f"Open: {cause.replace('_', ' ')}",
                f"Open incidents whose cause is {cause.upper()}.",
                "short",
                [(f'max({OPEN}{{cause="{cause}"}})', cause)],
                width=4,
                steps=ANY_OPEN,
                decimals=0,
            )
            for cause in CAUSES
        ],
        stat_panel(
            "Alarm latency p95",
            "95th percentile, over the selected interval, of the time from an incident's evidence "
            "(the report, the position, the moment the silence passed its limit) to its RAISED alarm.",
            "s",
            [(quantile(0.95, LATENCY), "p95")],
            width=4,
            decimals=2,
        ),
    ]


def build():
    return dashboard(
        "mamochi-carts",
        "MAMOCHI · Carts",
        "Cart tracking: carts reporting, incidents open by cause (reported missing, silent, out of area), "
        "alarms raised and cleared, alarm latency, location pings and the report lane.",
        ["carts", "tracking"],
        [
            Row("Carts now", now_stats()),
            Row(
                "Incidents",
                [
                    timeseries_panel(
                        "Open incidents by cause",
                        "Incidents raised and not yet cleared, per cause. A reported-missing incident clears when "
                        "the cart is reported found; silent and out-of-area ones also when the cart reports from "
                        "inside its area again.",
                        "short",
                        [(f"max by (cause) ({OPEN})", "{{cause}}")],
                        width=8,
                        decimals=0,
                    ),
                    timeseries_panel(
                        "Alarms raised and cleared per minute",
                        "CartAlarm records the tracking decided, by cause and state; each raised and cleared alarm "
                        "also emails the vendor and staff.",
                        "cpm",
                        [(per_minute(sum_rate(ALARMS, by=("cause", "state"))), "{{cause}} {{state}}")],
                        width=8,
                    ),
                    timeseries_panel(
                        "Alarm latency by cause (p50, p95)",
                        "From an incident's evidence to its RAISED alarm, per cause (decided_at − evidence_at).",
                        "s",
                        [
                            (quantile(q, LATENCY, ("cause",)), f"{{{{cause}}}} {name}")
                            for name, q in QUANTILES
                        ],
                        width=8,
                    ),
                ],
            ),
            Row(
                "Pings and the report lane",
                [
                    timeseries_panel(
                        "Carts reporting",
                        "Carts whose last position is younger than tracking.silence_after_secs.",
                        "short",
                        [(f"max({REPORTING})", "carts reporting")],
                        width=8,
                        decimals=0,
                    ),
                    timeseries_panel(
                        "Location pings per second",
                        "Location pings the tracking applied (from POST /v1/carts/me/locations).",
                        "suffix: pings/s",
                        [(sum_rate(PINGS), "pings")],
                        width=8,
                    ),
                    timeseries_panel(
                        "Tracking lag: reports versus pings",
                        "Records the distributor-tracking group has not yet read: partition 0 carries only missing "
                        "and found reports and is drained first, so it should stay near zero under a backlog of pings.",
                        "short",
                        [
                            (f"sum(max by (group, partition) ({LAG}{{{REPORT_LANE}}}))", "reports (partition 0)"),
                            (f"sum(max by (group, partition) ({LAG}{{{PING_LANES}}}))", "pings (partitions 1–3)"),
                        ],
                        width=8,
                        decimals=0,
                    ),
                ],
            ),
        ],
    )
