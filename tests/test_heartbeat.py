"""Heartbeat values: the format a worker writes and the state a reader derives from it."""

import json
import os
import re
import socket
import threading

import pytest

from breaker.heartbeat import (
    GONE_AFTER_S,
    STALE_AFTER_INTERVALS,
    WORKERS_KEY_NAME,
    AnswerCounts,
    InvalidBeat,
    beat_json,
    new_worker_id,
    parse_beat,
)


def _beat(seen=1000.0, interval_s=1.0, calls=None, fail_safe=0, tiers=None):
    return beat_json(host="h", pid=7, started=900.0, interval_s=interval_s, calls=calls or {"NORMAL": 3},
                     fail_safe=fail_safe, tiers=tiers or {}, override=None, error=None, version="0.1.0", seen=seen)


def test_worker_id_is_host_pid_and_four_hex():
    """Worker ids are host:pid:<4 hex>, the random part telling breakers of one process apart."""
    ids = {new_worker_id() for _ in range(20)}
    assert all(re.fullmatch(rf"{re.escape(socket.gethostname())}:{os.getpid()}:[0-9a-f]{{4}}", i) for i in ids)
    assert len(ids) > 1
    assert WORKERS_KEY_NAME == "workers"


def test_beat_json_has_the_spec_fields():
    """The stored JSON carries v=1, host, pid, started, seen, calls, fail_safe, tiers, override, error, version."""
    data = json.loads(_beat())
    assert {"v", "host", "pid", "started", "seen", "calls", "fail_safe", "tiers", "override", "error",
            "version"} <= set(data)
    assert data["v"] == 1


def test_beat_without_seen_is_left_for_the_server_to_complete():
    """Without seen, the text ends in '"seen":' so the server appends its own time and the brace."""
    text = beat_json(host="h", pid=1, started=1.0, interval_s=1.0, calls={}, fail_safe=0, tiers={},
                     override=None, error=None, version="x")
    assert text.endswith('"seen":')
    assert json.loads(text + "123.5}")["seen"] == 123.5


@pytest.mark.parametrize(
    ("age", "calls", "fail_safe", "state"),
    [
        (0.5, {"NORMAL": 3}, 0, "calm"),
        (0.5, {"NORMAL": 3, "PANIC_PARTIAL": 1}, 0, "panic"),
        (0.5, {"PANIC_FULL": 3}, 2, "fail_safe"),
        (STALE_AFTER_INTERVALS + 0.5, {"NORMAL": 3}, 0, "stale"),
        (GONE_AFTER_S + 1, {"NORMAL": 3}, 0, "gone"),
    ],
)
def test_state_from_age_and_answers(age, calls, fail_safe, state):
    """Gone after 60 s, stale after 3 intervals, else fail_safe / panic / calm by what it answered."""
    beat = parse_beat(b"h:7:abcd", _beat(calls=calls, fail_safe=fail_safe), now=1000.0 + age)
    assert beat.state == state and beat.worker_id == "h:7:abcd" and beat.pid == 7


def test_stale_follows_the_workers_own_interval():
    """A worker on a 10 s interval is not stale after 5 s."""
    assert parse_beat("w", _beat(interval_s=10.0), now=1005.0).state == "calm"


@pytest.mark.parametrize("raw", [b"nope", "[]", json.dumps({"v": 2, "seen": 1.0}), json.dumps({"v": 1}),
                                 json.dumps({"v": 1, "seen": "x"}), json.dumps({"v": 1, "seen": 1.0, "calls": 3})])
def test_unreadable_beats_raise(raw):
    """A field that is not a version-1 beat raises InvalidBeat (the reader lists it apart)."""
    with pytest.raises(InvalidBeat):
        parse_beat("w", raw, now=1.0)


def test_a_first_beat_without_a_start_reads_as_started_when_seen():
    """A worker's first beat has started=null (it learns the server's time from that round trip)."""
    text = beat_json(host="h", pid=1, started=None, interval_s=1.0, calls={}, fail_safe=0, tiers={},
                     override=None, error=None, version="x", seen=50.0)
    assert parse_beat("w", text, now=50.0).started == 50.0


def test_answer_counts_are_exact_across_threads_while_beats_are_taken():
    """8 threads count 20 000 answers each while beats are taken: every answer is reported exactly once."""
    counts = AnswerCounts()
    modes = ("NORMAL", "PANIC_FULL", "PANIC_PARTIAL")
    go = threading.Barrier(9)

    def answer(n: int) -> None:
        go.wait()
        for i in range(20_000):
            counts.count(modes[(n + i) % 3], fail_safe=i % 7 == 0, stakes="low_stakes", tier=2)

    threads = [threading.Thread(target=answer, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    go.wait()
    calls, fail_safe, beats = {}, 0, 0
    while any(thread.is_alive() for thread in threads) or beats == 0:
        taken, taken_fail_safe, tiers = counts.take()
        beats += 1
        for mode, n in taken.items():
            calls[mode] = calls.get(mode, 0) + n
        fail_safe += taken_fail_safe
        assert set(tiers) <= {"low_stakes"}
    for thread in threads:
        thread.join()
    taken, taken_fail_safe, _ = counts.take()
    for mode, n in taken.items():
        calls[mode] = calls.get(mode, 0) + n
    assert sum(calls.values()) == 160_000 and fail_safe + taken_fail_safe == 8 * len(range(0, 20_000, 7))
    assert counts.take() == ({}, 0, {})  # ended threads' totals are reported once, then dropped


def test_a_beat_given_back_is_reported_again_with_newer_tiers_winning():
    """give_back returns a failed beat's counts to the next one; a tier answered since then replaces its tier."""
    counts = AnswerCounts()
    counts.count("PANIC_PARTIAL", stakes="low_stakes", tier=2)
    counts.count("PANIC_FULL", stakes="high_stakes", tier=1)
    counts.count("PANIC_FULL", fail_safe=True)
    counts.give_back(*counts.take())
    counts.count("PANIC_PARTIAL", stakes="high_stakes", tier=2)
    assert counts.take() == ({"PANIC_PARTIAL": 2, "PANIC_FULL": 2}, 1, {"low_stakes": 2, "high_stakes": 2})
    assert counts.take() == ({}, 0, {})
