"""Each baseline kind on generated histories: it fires on the planted anomaly, once, and
stays quiet on steady traffic with ordinary noise — weekends, gradual growth, a new
employee's first day, a workspace whose lake is younger than the learning window."""

from __future__ import annotations

import json
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from hypothesis import given, settings
from hypothesis import strategies as st

from tests.unit.scan.history import MONDAY, Traffic, history, make_event, run

FIRST_SEEN = """\
id: new-ip
title: new client IP for a key
kind: first_seen
logsource: {product: ai_gateway}
where: {kind: inference}
by: [actor_key]
value: client_ip
learning: 7d
min_history: 3d
"""
VOLUME = """\
id: volume
title: requests far above the key's own hours
kind: volume
logsource: {product: ai_gateway}
by: [actor_key]
measure: requests
learning: 14d
min_history: 3d
threshold: {mad: 6, ratio: 3, min_value: 20}
"""
HOURS = """\
id: hours
title: activity outside the key's usual hours
kind: hours
logsource: {product: ai_gateway}
by: [actor_key]
learning: 14d
min_history: 3d
tolerance: 1
min_days: 5
"""
SILENCE = """\
id: silence
title: a steady key goes quiet
kind: silence
logsource: {product: ai_gateway}
by: [actor_key]
learning: 14d
min_history: 3d
min_gap: 4h
min_expected: 20
"""
SHARED_IPS = {"k1": ("10.1.0.1", "10.1.0.2", "10.8.0.9"), "k2": ("10.2.0.1",)}
DAY_15 = MONDAY + timedelta(days=15)  # a Tuesday


def steady(**kw: object) -> list[dict[str, object]]:
    return history(Traffic(ips=SHARED_IPS, **kw))  # type: ignore[arg-type]


# --- first_seen ----------------------------------------------------------------------

def test_first_seen_fires_once_on_a_new_ip_and_not_on_known_ones(tmp_path: Path) -> None:
    rows = steady()
    planted = [make_event(900_000 + i, DAY_15 + timedelta(hours=3, minutes=i), "k1",
                          client_ip="203.0.113.77") for i in range(5)]
    alerts = run(FIRST_SEEN, rows + planted, DAY_15, tmp_path)
    assert [(a["principal"], a["subject"], a["event_count"]) for a in alerts] == [
        (["k1"], "203.0.113.77", 5)
    ]
    assert [e["event_id"] for e in alerts[0]["events"]] == [p["event_id"] for p in planted]
    # A cold scan of the same lake (everything new) finds the same alert and nothing else.
    cold = run(FIRST_SEEN, rows + planted, MONDAY, tmp_path)
    assert [(a["principal"], a["subject"]) for a in cold] == [(["k1"], "203.0.113.77")]


def test_first_seen_is_quiet_on_steady_traffic_with_rotating_addresses(tmp_path: Path) -> None:
    assert run(FIRST_SEEN, steady(), DAY_15, tmp_path) == []
    assert run(FIRST_SEEN, steady(weekend=0.0, seed=3), MONDAY, tmp_path) == []


def test_first_seen_waits_for_the_learning_period(tmp_path: Path) -> None:
    rows = steady()
    # A new employee's key: its first day, from its own (new) address, is quiet ...
    newcomer = [make_event(800_000 + i, DAY_15 + timedelta(hours=9, minutes=i), "k9",
                           client_ip="10.9.9.9") for i in range(20)]
    assert run(FIRST_SEEN, rows + newcomer, DAY_15, tmp_path) == []
    # ... and a workspace whose lake is younger than the learning window never fires.
    young = [r for r in rows if r["ts"] >= MONDAY + timedelta(days=10)]
    planted = [make_event(900_000, DAY_15 + timedelta(hours=3), "k1", client_ip="203.0.113.9")]
    assert run(FIRST_SEEN, young + planted, DAY_15, tmp_path) == []
    assert run(FIRST_SEEN, rows + planted, DAY_15, tmp_path) != []


def test_first_seen_without_a_value_is_a_first_event(tmp_path: Path) -> None:
    text = """\
    id: first-bedrock
    title: first Bedrock call by a known principal
    kind: first_seen
    logsource: {product: ai_gateway}
    where: {vendor: [bedrock, aws-bedrock], outcome: {not: failure}}
    by: [actor_user]
    learning: 10d
    min_history: 5d
    """
    rows = steady()
    first = make_event(900_000, DAY_15 + timedelta(hours=2), "k2", vendor="bedrock")
    failed = make_event(900_001, DAY_15 + timedelta(hours=2), "k3", vendor="bedrock",
                        outcome="failure")
    alerts = run(text, [*rows, first, failed], DAY_15, tmp_path)
    assert [(a["principal"], a["event_count"]) for a in alerts] == [(["k2@example.org"], 1)]


def test_first_seen_over_a_list_column(tmp_path: Path) -> None:
    text = FIRST_SEEN.replace("value: client_ip", "value: pii_types")
    rows = steady()
    for row in rows[::50]:
        row["pii_types"] = ["email"]
    leak = make_event(900_000, DAY_15 + timedelta(hours=10), "k2", pii_types=["email", "iban"])
    alerts = run(text, [*rows, leak], DAY_15, tmp_path)
    assert [(a["principal"], a["subject"]) for a in alerts] == [(["k2"], "iban")]


# --- volume --------------------------------------------------------------------------

def test_volume_fires_on_a_burst_and_not_on_growth_or_weekends(tmp_path: Path) -> None:
    rows = steady(growth=0.02)
    assert run(VOLUME, rows, DAY_15, tmp_path) == []
    burst = [make_event(900_000 + i, DAY_15 + timedelta(hours=22, seconds=i * 10), "k2")
             for i in range(200)]
    alerts = run(VOLUME, rows + burst, DAY_15, tmp_path)
    assert [(a["principal"], a["subject"], a["event_count"]) for a in alerts] == [
        (["k2"], (DAY_15 + timedelta(hours=22)).strftime("%Y-%m-%dT%H:00Z"), 200)
    ]


def test_volume_needs_minimum_history(tmp_path: Path) -> None:
    rows = [r for r in steady() if r["ts"] >= DAY_15 - timedelta(days=1)]
    burst = [make_event(900_000 + i, DAY_15 + timedelta(hours=12, seconds=i), "k2")
             for i in range(300)]
    assert run(VOLUME, rows + burst, DAY_15, tmp_path) == []


def test_volume_of_tokens(tmp_path: Path) -> None:
    text = VOLUME.replace("measure: requests", "measure: tokens").replace(
        "min_value: 20", "min_value: 5000")
    rows = steady()
    big = [make_event(900_000 + i, DAY_15 + timedelta(hours=11, minutes=i), "k3",
                      prompt_tokens=100_000) for i in range(3)]
    alerts = run(text, rows + big, DAY_15, tmp_path)
    assert [a["principal"] for a in alerts] == [["k3"]]


@settings(max_examples=12, deadline=None, derandomize=True)
@given(seed=st.integers(0, 10_000), noise=st.floats(0.0, 0.6),
       weekend=st.sampled_from([0.0, 0.25, 1.0]), growth=st.floats(-0.02, 0.03))
def test_volume_never_fires_on_steady_noisy_traffic(
    seed: int, noise: float, weekend: float, growth: float
) -> None:
    rows = history(Traffic(seed=seed, noise=noise, weekend=weekend, growth=growth))
    with tempfile.TemporaryDirectory() as tmp:
        assert run(VOLUME, rows, DAY_15, Path(tmp)) == []


# --- hours ---------------------------------------------------------------------------

def test_hours_fires_at_3am_but_not_on_a_saturday_at_the_usual_time(tmp_path: Path) -> None:
    rows = steady(weekend=0.0)
    saturday = MONDAY + timedelta(days=19)
    assert saturday.weekday() == 5
    weekend_work = [make_event(700_000 + i, saturday + timedelta(hours=10, minutes=i), "k1")
                    for i in range(15)]
    assert run(HOURS, rows + weekend_work, DAY_15, tmp_path) == []
    night = [make_event(900_000 + i, DAY_15 + timedelta(hours=3, minutes=5 * i), "k1")
             for i in range(4)]
    alerts = run(HOURS, rows + weekend_work + night, DAY_15, tmp_path)
    assert [(a["principal"], a["subject"], a["event_count"]) for a in alerts] == [
        (["k1"], DAY_15.strftime("%Y-%m-%d"), 4)
    ]


def test_hours_is_quiet_for_a_new_employee_and_at_the_edge_of_usual_hours(
    tmp_path: Path,
) -> None:
    rows = steady()
    newcomer = [make_event(800_000 + i, DAY_15 + timedelta(hours=2, minutes=i), "k9")
                for i in range(10)]
    early = [make_event(810_000, DAY_15 + timedelta(hours=7, minutes=30), "k2")]  # 8-18 ±1
    assert run(HOURS, rows + newcomer + early, DAY_15, tmp_path) == []


def test_hours_are_counted_in_the_baselines_time_zone(tmp_path: Path) -> None:
    # A New York team working 9-17 local time (13-21 UTC in winter, 14-22 UTC in March after
    # the switch to daylight time, which this history crosses on 8 March).
    ny = ZoneInfo("America/New_York")
    rows = history(Traffic(hours=(), days=21))  # no UTC-hours traffic at all
    n = 0
    for day in range(21):
        local = datetime(2026, 3, 2, tzinfo=ny) + timedelta(days=day)
        if local.weekday() >= 5:
            continue
        for hour in range(9, 17):
            for minute in (5, 25, 45):
                ts = local.replace(hour=hour, minute=minute).astimezone(UTC)
                rows.append(make_event(n, ts, "k1"))
                n += 1
    text = HOURS + "timezone: America/New_York\n"
    assert run(text, rows, DAY_15, tmp_path) == []
    # UTC would call 13-22 usual and every post-switch 21:xx UTC (17:xx local) unusual.
    night = [make_event(900_000 + i, datetime(2026, 3, 17, 3, 10 + i, tzinfo=ny).astimezone(UTC),
                        "k1") for i in range(3)]
    alerts = run(text, rows + night, DAY_15, tmp_path)
    assert [(a["principal"], a["subject"], a["event_count"]) for a in alerts] == [
        (["k1"], "2026-03-17", 3)
    ]
    assert json.loads(alerts[0]["detail"])["hours"] == [3]


# --- silence -------------------------------------------------------------------------

def test_silence_fires_when_a_steady_key_stops(tmp_path: Path) -> None:
    rows = steady()
    assert run(SILENCE, rows, DAY_15, tmp_path) == []
    stop = DAY_15 + timedelta(hours=11)
    cut = [r for r in rows if not (r["actor_key"] == "k2" and r["ts"] >= stop)]
    alerts = run(SILENCE, cut, DAY_15, tmp_path)
    assert [a["principal"] for a in alerts] == [["k2"]]
    gap = alerts[0]
    assert gap["first_ts"] == stop.replace(minute=0)
    before = max(r["ts"] for r in cut if r["actor_key"] == "k2")
    assert [e["ts"] for e in gap["events"]] == [before]  # the last event before the gap


def test_silence_is_quiet_over_nights_weekends_and_a_young_key(tmp_path: Path) -> None:
    rows = steady(weekend=0.0)  # nobody on Saturdays and Sundays: that is not a gap
    assert run(SILENCE, rows, MONDAY + timedelta(days=12), tmp_path) == []
    # A key seen for two days only, then quiet: too young to have a usual rhythm.
    young = [r for r in steady() if not (r["actor_key"] == "k3"
             and not DAY_15 - timedelta(days=2) <= r["ts"] < DAY_15 + timedelta(hours=10))]
    assert run(SILENCE, young, DAY_15, tmp_path) == []


def test_silence_of_bodies_while_requests_go_on(tmp_path: Path) -> None:
    text = SILENCE.replace("min_expected: 20", "min_expected: 20\nwhile_active: true").replace(
        "by: [actor_key]", "by: [actor_key]\nwhere: {prompt_text: {present: true}}")
    rows = steady()
    assert run(text, rows, DAY_15, tmp_path) == []
    for row in rows:
        if row["actor_key"] == "k1" and row["ts"] >= DAY_15 + timedelta(hours=9):
            row["prompt_text"] = ""
    alerts = run(text, rows, DAY_15, tmp_path)
    assert alerts and {tuple(a["principal"]) for a in alerts} == {("k1",)}


@settings(max_examples=8, deadline=None, derandomize=True)
@given(seed=st.integers(0, 10_000), noise=st.floats(0.0, 0.6),
       weekend=st.sampled_from([0.0, 0.25, 1.0]), growth=st.floats(-0.02, 0.03),
       kind=st.sampled_from(["first_seen", "hours", "silence"]))
def test_other_kinds_never_fire_on_steady_noisy_traffic(
    seed: int, noise: float, weekend: float, growth: float, kind: str
) -> None:
    text = {"first_seen": FIRST_SEEN, "hours": HOURS, "silence": SILENCE}[kind]
    rows = history(Traffic(seed=seed, noise=noise, weekend=weekend, growth=growth,
                           ips=SHARED_IPS))
    with tempfile.TemporaryDirectory() as tmp:
        assert run(text, rows, DAY_15, Path(tmp)) == []
