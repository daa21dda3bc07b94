"""The Fleet page's view model and figures: pure functions over hand-made heartbeats."""

import pytest

from breaker.heartbeat import WorkerBeat
from console.figures import figure_tier_distribution, plotly_text
from console.fleet_view import (
    WorkerFilter,
    filter_workers,
    fleet_summary,
    honouring,
    override_label,
    sort_workers,
    state_counts,
    tier_matrix,
    tiers_text,
    worker_rows,
)

NOW = 1_800_000_000.0


def beat(worker_id, state="calm", *, host="h1", seen=NOW - 0.5, error=None, override=None, version="0.1.0",
         calls=None, tiers=None, pid=1):
    return WorkerBeat(worker_id=worker_id, host=host, pid=pid, started=NOW - 100, seen=seen, interval_s=1.0,
                      calls=calls or {}, fail_safe=0, tiers=tiers or {}, override=override, error=error,
                      version=version, state=state)


FLEET = [
    beat("a:1:0001", "panic", calls={"PANIC_FULL": 4}, tiers={"high_stakes": 1, "low_stakes": 3}),
    beat("b:2:0002", "fail_safe", host="h2", error="TimeoutError: Timeout reading from socket", seen=NOW - 2),
    beat("c:3:0003", "stale", host="h3", seen=NOW - 10),
    beat("d:4:0004", "calm", host="h2", calls={"NORMAL": 9}),
    beat("e:5:0005", "gone", seen=NOW - 100),
]


def test_filter_keeps_chosen_states_and_drops_gone():
    """The state filter keeps what is ticked; a gone worker is never shown, whatever is ticked."""
    assert [w.worker_id for w in filter_workers(FLEET, WorkerFilter())] == ["a:1:0001", "b:2:0002", "c:3:0003",
                                                                           "d:4:0004"]
    only = WorkerFilter(frozenset({"stale", "gone"}))
    assert [w.worker_id for w in filter_workers(FLEET, only)] == ["c:3:0003"]


def test_text_filter_searches_id_host_error_and_version_case_insensitively():
    """The text box finds a worker by any of id, host, error or version."""
    assert [w.worker_id for w in filter_workers(FLEET, WorkerFilter(text="timeout"))] == ["b:2:0002"]
    assert [w.worker_id for w in filter_workers(FLEET, WorkerFilter(text="H2"))] == ["b:2:0002", "d:4:0004"]
    assert [w.worker_id for w in filter_workers(FLEET, WorkerFilter(errors_only=True))] == ["b:2:0002"]


@pytest.mark.parametrize(("order", "first"), [
    ("state", "b:2:0002"), ("last seen", "a:1:0001"), ("host", "a:1:0001"), ("answers", "d:4:0004"),
    ("errors first", "b:2:0002"),
])
def test_sort_orders(order, first):
    """Each sort order puts the worker an operator looks for first at the top."""
    assert sort_workers(FLEET[:4], order)[0].worker_id == first


def test_unknown_sort_order_is_refused():
    """A sort order the page does not offer is a programming error, named."""
    with pytest.raises(ValueError, match="order must be one of"):
        sort_workers(FLEET, "random")


def test_rows_show_seen_age_tiers_answers_and_worker_text_untouched():
    """A row has the age in server seconds, tiers in stakes order, the answer count, and the worker's strings as
    they are (the table shows them as text)."""
    odd = beat("x:**1**:[a](http://e)", "panic", error="<b>boom</b>", calls={"PANIC_FULL": 2, "DEGRADED": 1},
               tiers={"low_stakes": 3, "high_stakes": 1}, seen=NOW - 1.26)
    [row] = worker_rows([odd], NOW)
    assert row["worker"] == "x:**1**:[a](http://e)" and row["last error"] == "<b>boom</b>"
    assert row["seen (s ago)"] == 1.3 and row["answers"] == 3 and row["state"] == "panic"
    assert row["tiers"] == "high 1 · low 3"


def test_tiers_text_orders_classes_and_keeps_unknown_ones():
    """Known classes in stakes order, anything else after them, a dash for none."""
    assert tiers_text({"medium_stakes": 2, "high_stakes": 1, "cup": 4}) == "high 1 · medium 2 · cup 4"
    assert tiers_text({}) == "—"


def test_honouring_counts_workers_reporting_the_mode_and_ignores_stale_ones():
    """The banner's count: live workers whose beat names the mode (as a mode or as the override's JSON)."""
    workers = [
        beat("a", "panic", override="force_full"),
        beat("b", "calm", override='{"mode": "force_full", "who": "x", "why": "y", "since": 1, "until": 2}'),
        beat("c", "calm", override=None),
        beat("d", "stale", override="force_full"),
        beat("e", "calm", override="force_calm"),
    ]
    assert honouring(workers, "force_full") == (2, 4)
    assert honouring(workers, "force_calm") == (1, 4)
    assert override_label(workers[1].override) == "force_full" and override_label("{broken") == "{broken"


def test_state_counts_and_summary():
    """Counts per state with zeros, and Live's one line (numbers only)."""
    counts = state_counts(FLEET)
    assert counts == {"panic": 1, "calm": 1, "fail_safe": 1, "stale": 1}
    assert fleet_summary(counts, 12.34, 2) == ("Fleet: 4 workers (1 panic, 1 calm, 1 fail-safe, 1 stale) · "
                                               "12.3 answers/s · 2 disagree with the clock")
    assert fleet_summary(dict.fromkeys(counts, 0), 0.0) == "Fleet: no worker reports heartbeats."


def test_tier_matrix_fills_zeros_and_reads_json_keys():
    """Every class and tier 0–4 appear; tiers that came as JSON strings count as numbers."""
    matrix = tier_matrix({"high_stakes": {1: 3, "2": 1}, "low_stakes": {}, "<b>cup</b>": {1: 1}})
    assert matrix["high_stakes"] == {0: 0, 1: 3, 2: 1, 3: 0, 4: 0}
    assert list(matrix) == ["high_stakes", "medium_stakes", "low_stakes"]  # a made-up class labels no bar


def test_tier_distribution_figure_stacks_one_bar_trace_per_tier():
    """Five stacked traces (tiers 0–4), one bar per stakes class."""
    figure = figure_tier_distribution(tier_matrix({"medium_stakes": {2: 5}}))
    assert [t.name for t in figure.data] == [f"tier {t}" for t in range(5)]
    assert list(figure.data[2].y) == [0, 5, 0]
    assert figure.layout.barmode == "stack"


def test_plotly_text_escapes_markup():
    """Operators' words in hover texts are escaped: Plotly would read <a href> and <b> as markup."""
    assert plotly_text('<a href="x">hi</a> & <b>') == '&lt;a href="x"&gt;hi&lt;/a&gt; &amp; &lt;b&gt;'


def test_skew_text_never_says_minus_zero():
    """Clocks a few ms behind the server round to zero: the caption says +0.0, not -0.0."""
    from console.fleet_view import skew_text

    assert skew_text(-0.04, -0.01) == " · worker clocks +0.0 s to +0.0 s off the server's"
    assert skew_text(-3600.04, 0.26) == " · worker clocks -3600.0 s to +0.3 s off the server's"
    assert skew_text(None, None) == ""
