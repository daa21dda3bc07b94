"""The Demo page and the demo banner in AppTest against a real server (no fleet is started by these tests)."""

from breaker.ops.demo.load import LoadPoint, append_point
from breaker.ops.demo.marker import DemoMarker, pop_commands
from tests.console.conftest import open_console

PREFIX = "brain:"


def _marker(client, *, state="playing", phase="long panic", run="r1"):
    marker = DemoMarker(scenario="tour", title="Tour", speed=120.0, state=state, started=1.0, pid=1, run=run,
                        minute=87.0, total_minutes=392.0, phase=phase, workers=64,
                        shares={"high_stakes": 0.15, "medium_stakes": 0.15, "low_stakes": 0.15})
    client.hset(f"{PREFIX}demo", mapping=marker.fields())


def _load(client, run="r1"):
    for i, (tier, ours, seed) in enumerate([(1, 400.0, 400.0), (1, 380.0, 390.0), (2, 90.0, 410.0)]):
        append_point(client, PREFIX, LoadPoint(
            at=float(i), run=run, minute=80.0 + i, phase="long panic", ours={"high_stakes": ours},
            seed={"high_stakes": seed}, tiers={"high_stakes": tier, "medium_stakes": 2, "low_stakes": 3},
            answers=ours))


def _texts(at):
    return " ".join(str(e.value) for kind in ("info", "caption", "markdown", "error") for e in getattr(at, kind))


def test_every_page_says_a_demo_is_playing(sandbox_env):
    """With a demo marker stored, Live (and any page) shows the demo banner with scenario, speed and phase."""
    _marker(sandbox_env)
    at = open_console()
    banner = [i.value for i in at.info if "Demo playing" in i.value]
    assert banner and "120×" in banner[0] and "minute 87 of 392" in banner[0] and "64 simulated workers" in banner[0]


def test_no_banner_without_a_demo(sandbox_env):
    """No marker, no banner."""
    at = open_console()
    assert not [i for i in at.info if "Demo" in i.value]


def test_banner_shows_stored_text_as_text(sandbox_env):
    """A phase name with markdown in it goes through the console's one text-safety function (a code span: never
    a link, even a bare URL, which backslash escapes do not stop), on the banner and on the Demo page."""
    phase = "**bold** [link](http://x) www.evil.example"
    _marker(sandbox_env, phase=phase)
    at = open_console()
    (banner,) = [i.value for i in at.info if "Demo playing" in i.value]
    assert f"`{phase}`" in banner
    at.switch_page("pages/demo.py").run()
    assert f"phase `{phase}`" in _texts(at)


def test_demo_page_draws_the_load_chart_and_the_saving(sandbox_env):
    """The Demo page draws the backend-load chart of the current run and what it saved against the seed."""
    _marker(sandbox_env)
    _load(sandbox_env)
    _load(sandbox_env, run="old")  # another run's points are not this run's chart
    at = open_console("pages/demo.py")
    assert not at.exception
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Backend requests/s (ours)"] == "290.0" and metrics["Seed's protocol"] == "400.0"
    assert metrics["Saved"] == "28 %"
    assert "3 points, one per second" in _texts(at)
    assert at.get("plotly_chart")


def test_sandbox_pause_and_stop_are_queued_and_audited(sandbox_env):
    """In the sandbox, Pause and Stop queue a command for the conductor and leave an audit entry each."""
    _marker(sandbox_env)
    at = open_console("pages/demo.py")
    at.button(key="demo_pause").click().run()
    at.button(key="demo_stop").click().run()
    assert [c["action"] for c in pop_commands(sandbox_env, PREFIX)] == ["pause", "stop"]
    actions = [fields[b"action"] for _, fields in sandbox_env.xrange(f"{PREFIX}audit")]
    assert actions == [b"demo_pause", b"demo_stop"]


def test_real_target_has_no_demo_control(console_env):
    """Against REDIS_URL the page refuses to control a demo (real workers live there) and starts nothing."""
    _marker(console_env)
    at = open_console("pages/demo.py")
    assert not at.exception
    assert "embedded server only" in _texts(at)
    assert not [b for b in at.button if b.key in ("demo_start", "demo_pause", "demo_stop")]
