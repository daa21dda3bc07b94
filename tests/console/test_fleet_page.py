"""Fleet page in AppTest: heartbeats written into the real server's workers hash (SPEC 7 format), 0 / 3 / 1000
workers with stale and failing ones, disagreement with the clock, worker text shown as text, Live's summary."""

import json
import time
from pathlib import Path

from breaker import PanicClock
from tests.console.conftest import open_console

README = Path(__file__).resolve().parents[2] / "README.md"


def server_now(client) -> float:
    seconds, micros = client.time()
    return seconds + micros / 1e6


def write_beat(client, worker_id, *, now, age_s=0.3, interval=1.0, calls=None, fail_safe=0, tiers=None,
               override=None, error=None, version="0.1.0", prefix="brain:"):
    """One heartbeat as a worker writes it: a field of {prefix}workers holding the SPEC 7 JSON."""
    host, pid, _ = worker_id.rsplit(":", 2)
    value = {"v": 1, "host": host, "pid": int(pid), "started": now - 600, "seen": now - age_s, "interval": interval,
             "calls": calls if calls is not None else {"NORMAL": 10}, "fail_safe": fail_safe,
             "tiers": tiers or {}, "override": override, "error": error, "version": version}
    client.hset(f"{prefix}workers", worker_id, json.dumps(value))


def metrics(at) -> dict[str, str]:
    return {m.label: m.value for m in at.metric}


def table(at, column):
    """The page's dataframe that has ``column`` (AppTest does not expose a dataframe's key)."""
    [frame] = [d.value for d in at.dataframe if column in d.value.columns]
    return frame


def fleet(**_):
    return open_console("pages/fleet.py")


def test_no_worker_shows_how_a_worker_starts_reporting(console_env):
    """Empty hash: the page says no worker reports and shows the README's worker example, no metrics."""
    at = fleet()
    assert not at.exception
    assert any(i.value.startswith("No worker reports heartbeats") for i in at.info)
    [code] = [c.value for c in at.code if "get_ttl" in c.value]
    assert code.strip() in README.read_text()  # the same example as the README's, kept in step
    assert not at.metric and not at.dataframe


def test_three_workers_panic_failing_and_stale(console_env):
    """Three workers: one in panic, one failing over with its error, one stale; counts, alerts and rows agree."""
    now = server_now(console_env)
    write_beat(console_env, "web1:101:aaaa", now=now, calls={"PANIC_FULL": 6}, tiers={"high_stakes": 1})
    write_beat(console_env, "web2:102:bbbb", now=now, calls={"PANIC_FULL": 3}, fail_safe=3,
               error="TimeoutError: Timeout reading from 10.0.0.5:6379")
    write_beat(console_env, "web3:103:cccc", now=now, age_s=12)
    at = fleet()
    assert not at.exception
    shown = metrics(at)
    assert (shown["Workers"], shown["Panic"], shown["Calm"], shown["Fail-safe"], shown["Stale"]) == (
        "3", "1", "0", "1", "1")
    assert shown["Answers/s"] == "9.0"  # the stale worker's answers are not current
    assert any(e.value.startswith("1 worker(s) answered fail-safe") for e in at.error)
    assert any(w.value.startswith("1 worker(s) stale") for w in at.warning)
    rows = table(at, "last error")
    assert sorted(rows["worker"]) == ["web1:101:aaaa", "web2:102:bbbb", "web3:103:cccc"]
    failing = rows[rows["worker"] == "web2:102:bbbb"].iloc[0]
    assert failing["state"] == "fail-safe" and failing["last error"].startswith("TimeoutError")
    assert table(at, "last error").iloc[0]["worker"] == "web2:102:bbbb"  # default sort: trouble first


def test_calm_fleet_draws_no_empty_tier_chart(console_env):
    """Workers that answered no panic tier: a caption says there is no distribution, instead of an empty chart."""
    write_beat(console_env, "web1:101:aaaa", now=server_now(console_env))
    at = fleet()
    assert not at.get("plotly_chart")
    assert any(c.value.startswith("No worker answered a panic tier") for c in at.caption)


def test_table_filters_by_state_text_and_errors(console_env):
    """The filters narrow the table; the caption says how many of how many are shown."""
    now = server_now(console_env)
    write_beat(console_env, "web1:101:aaaa", now=now, calls={"PANIC_FULL": 6}, tiers={"high_stakes": 1})
    write_beat(console_env, "web2:102:bbbb", now=now, fail_safe=1, error="ConnectionError: refused")
    write_beat(console_env, "api1:103:cccc", now=now, age_s=12)
    at = fleet()
    at.multiselect(key="fleet_states").set_value(["stale"]).run()
    assert list(table(at, "last error")["worker"]) == ["api1:103:cccc"]
    at.multiselect(key="fleet_states").set_value(["panic", "calm", "fail_safe", "stale"]).run()
    at.text_input(key="fleet_text").input("WEB").run()
    assert sorted(table(at, "last error")["worker"]) == ["web1:101:aaaa", "web2:102:bbbb"]
    at.checkbox(key="fleet_errors_only").check().run()
    assert list(table(at, "last error")["worker"]) == ["web2:102:bbbb"]
    assert any(c.value.startswith("1 of the 3 workers of the first page shown") for c in at.caption)
    at.selectbox(key="fleet_sort").select("host").run()
    assert not at.exception


def test_a_thousand_workers(console_env):
    """1000 workers, stale and failing among them: every one is counted and listed, the tier chart sums up."""
    now = server_now(console_env)
    pipe = console_env.pipeline(transaction=False)
    for i in range(1000):
        stale, failing = i % 10 == 0, i % 25 == 1
        value = {"v": 1, "host": f"host{i // 8}", "pid": 1000 + i, "started": now - 900,
                 "seen": now - (15 if stale else 0.4), "interval": 1.0,
                 "calls": {"PANIC_FULL": 2} if i % 2 else {"NORMAL": 2}, "fail_safe": 2 if failing else 0,
                 "tiers": {"high_stakes": 1, "low_stakes": 1} if i % 2 else {}, "override": None,
                 "error": "ConnectionError: reset" if failing else None, "version": "0.1.0"}
        pipe.hset("brain:workers", f"host{i // 8}:{1000 + i}:{i:04x}", json.dumps(value))
    pipe.execute()
    at = fleet()
    assert not at.exception
    shown = metrics(at)
    assert shown["Workers"] == "1000" and shown["Stale"] == "100" and shown["Fail-safe"] == "40"
    assert int(shown["Panic"]) + int(shown["Calm"]) + 40 + 100 == 1000
    assert len(table(at, "last error")) == 1000
    chart = json.loads(at.get("plotly_chart")[0].proto.spec)
    tier1 = next(t for t in chart["data"] if t["name"] == "tier 1")
    assert tier1["y"][0] == sum(1 for i in range(1000) if i % 2 and i % 10)  # high stakes, not stale


def test_workers_that_disagree_with_the_clock_are_named(console_env):
    """A clock 46 min old implies low stakes tier 3: a worker still answering tier 1 is listed beside the tier
    the clock implies, with a warning that says what to suspect."""
    PanicClock(console_env).start_drill(time.time(), backdate_s=46 * 60, hold_s=900)
    now = server_now(console_env)
    write_beat(console_env, "good:1:aaaa", now=now, calls={"DEGRADED": 5}, tiers={"low_stakes": 3, "high_stakes": 1})
    write_beat(console_env, "old:2:bbbb", now=now, calls={"PANIC_FULL": 5}, tiers={"low_stakes": 1},
               version="0.0.9")
    at = fleet()
    [warning] = [w.value for w in at.warning if "tier the clock does not imply" in w.value]
    assert warning.startswith("1 worker(s)") and "another key prefix" in warning and "stale build" in warning
    [row] = table(at, "clock implies").to_dict("records")
    assert (row["worker"], row["reports"], row["clock implies"], row["version"]) == (
        "old:2:bbbb", "low 1", "low 3", "0.0.9")


def test_worker_supplied_text_never_reaches_markdown(console_env):
    """Ids, hosts, errors and versions with markdown and HTML appear in the table only, never as markdown."""
    now = server_now(console_env)
    evil = "**x**[l](http://e)<b>"
    write_beat(console_env, f"{evil}:1:aaaa", now=now, fail_safe=1, error=f"err {evil}", version=evil)
    console_env.hset("brain:workers", "garbage:2:bbbb", "{not json " + evil)
    at = fleet()
    assert not at.exception
    markdown = [e.value for e in (*at.markdown, *at.caption, *at.warning, *at.error, *at.info, *at.success)]
    assert not any(evil in text or "<b>" in text for text in markdown)
    assert table(at, "last error").iloc[0]["last error"] == f"err {evil}"
    assert any(w.value.startswith("1 field(s) of the workers hash are not heartbeats") for w in at.warning)


def test_redis_down_shows_an_error_not_a_traceback(monkeypatch, console_env):
    """Unreachable Redis: the Fleet page says so (workers fail safe meanwhile), the banner says the override is
    unknown, and nothing raises."""
    from breaker.ops.drills import unreachable_loopback_url

    monkeypatch.setenv("REDIS_URL", unreachable_loopback_url())
    at = fleet()
    assert not at.exception
    assert any("Redis unreachable while reading the fleet" in e.value for e in at.error)
    assert any(c.value.startswith("Override: unknown, Redis did not answer") for c in at.caption)  # the banner


def test_live_has_a_one_line_fleet_summary_linking_to_fleet(console_env):
    """Live shows the fleet in one line (from the same round trip as the clock) that links to the Fleet page."""
    now = server_now(console_env)
    write_beat(console_env, "web1:101:aaaa", now=now, calls={"NORMAL": 30}, interval=2.0)
    write_beat(console_env, "web2:102:bbbb", now=now, age_s=20)
    at = open_console()
    [link] = [e for e in at.get("page_link")]
    assert link.proto.label == "Fleet: 2 workers (0 panic, 1 calm, 0 fail-safe, 1 stale) · 15.0 answers/s"
    assert link.proto.page.endswith("fleet")


def test_hostile_heartbeats_are_listed_apart_and_the_page_stands(console_env):
    """Fields no worker writes (deep JSON nesting, counts beyond a 64-bit column) never fail the Fleet page."""
    now = server_now(console_env)
    write_beat(console_env, "web1:101:aaaa", now=now, calls={"PANIC_FULL": 6}, tiers={"high_stakes": 1})
    console_env.hset("brain:workers", mapping={
        "deep:1:aaaa": '{"v":1,"x":' + "[" * 4000 + "]" * 4000 + "}",
        "big:2:bbbb": json.dumps({"v": 1, "seen": now, "pid": 10**30, "fail_safe": 1e300,
                                  "calls": {"NORMAL": 1e308, "PANIC_FULL": 1e308}}),
    })
    at = fleet()
    assert not at.exception
    assert metrics(at)["Workers"] == "1"
    assert sorted(table(at, "why")["field"]) == ["big:2:bbbb", "deep:1:aaaa"]


def test_redis_down_fleet_says_one_thing(monkeypatch, console_env):
    """Unreachable Redis: one error (the fleet read), no second "error reading the override" and no "No override
    is on", which nobody can know (issue 20)."""
    from breaker.ops.drills import unreachable_loopback_url

    monkeypatch.setenv("REDIS_URL", unreachable_loopback_url())
    at = fleet()
    assert not at.exception
    assert [e.value for e in at.error if "Redis" in e.value and "override" in e.value] == []
    assert not any("No override is on" in c.value for c in at.caption)
    assert any(c.value.startswith("The override cannot be read while Redis does not answer") for c in at.caption)


def test_the_worker_table_is_read_a_page_at_a_time(console_env):
    """Issue 24: 2 500 heartbeats: the table shows one HSCAN page (about 1 000), "Next page" follows the
    server's cursor, and the pages together list every worker once; the counts come from the summary."""
    now = server_now(console_env)
    pipe = console_env.pipeline(transaction=False)
    for i in range(2500):
        write_beat(pipe, f"h{i // 8}:{i}:{i:04x}", now=now)
    pipe.execute()
    at = fleet()
    assert not at.exception
    assert metrics(at)["Workers"] == "2500"
    seen = list(table(at, "last error")["worker"])
    assert 0 < len(seen) < 2500
    for _ in range(10):
        buttons = [b for b in at.button if b.key == "fleet_next_page"]
        if not buttons:
            break
        buttons[0].click().run()
        assert not at.exception
        seen += list(table(at, "last error")["worker"])
    assert len(seen) == len(set(seen)) == 2500


def test_a_worker_an_hour_ahead_shows_its_skew(console_env):
    """Issue 24: the skew the round trip measured (the worker's clock minus the server's) is a column of the table."""
    from breaker import VIXCircuitBreaker

    ahead = VIXCircuitBreaker(console_env, clock=lambda: time.time() + 3600)
    ahead.get_ttl(60, "normal")
    at = fleet()
    assert not at.exception
    [row] = table(at, "clock skew (s)").to_dict("records")
    assert row["worker"] == ahead.worker_id and abs(row["clock skew (s)"] - 3600) < 5
