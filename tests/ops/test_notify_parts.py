"""The notifier's parts without a loop: targets config, message formats (a Slack golden), signing, the retry
schedule, one bounded POST, History's delivery states, and the CLI's start-up errors."""

from __future__ import annotations

import json
import random
import socket
import threading
import time
from pathlib import Path

import pytest
from click.testing import CliRunner
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from breaker.ops.cli import cli
from breaker.ops.notify import (
    AuditEvent,
    RetryPolicy,
    TargetsError,
    delivery_states,
    load_targets,
    post_once,
    signed_headers,
    slack_body,
    standard_body,
)
from breaker.ops.notify.store import Outcome

SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
GOLDEN = Path(__file__).parent / "golden" / "notify_slack.json"

EVENT = AuditEvent("1800000000123-0", {
    "at": "1800000000.0", "kind": "operator", "who": "alice", "action": "override_set",
    "why": "cup final <!channel> & more", "detail": json.dumps({"mode": "force_full", "until": 1800003600.0}),
    "auth": "token:t1", "role": "operator",
})


# ---- targets ----------------------------------------------------------------------------------------------

def _write(tmp_path, text: str) -> str:
    path = tmp_path / "webhooks.toml"
    path.write_text(text)
    return str(path)


def test_one_target_from_two_variables():
    env = {"VIX_BREAKER_WEBHOOK_URL": "https://hooks.example/x", "VIX_BREAKER_WEBHOOK_SECRET": SECRET}
    [target] = load_targets(env)
    assert (target.name, target.url, target.events, target.format) == ("default", "https://hooks.example/x", ("*",),
                                                                      "standard")
    assert SECRET not in repr(target)


def test_several_targets_from_toml(tmp_path):
    path = _write(tmp_path, f"""
[[webhook]]
name = "pager"
url = "https://pager.example/hook"
secret = "{SECRET}"
events = ["panic_*", "zombie_clear", "force_calm_requested"]

[[webhook]]
name = "chat"
url = "https://hooks.slack.example/T/B/x"
secret = "{SECRET}"
format = "slack"
""")
    pager, chat = load_targets({"VIX_BREAKER_WEBHOOKS": path})
    assert pager.wants("panic_start") and pager.wants("zombie_clear") and not pager.wants("login")
    assert chat.format == "slack" and chat.wants("login")


@pytest.mark.parametrize(("text", "message"), [
    ("[[webhook]\nurl=1", "not TOML"),
    ("[other]\nx = 1", "expected one or more [[webhook]] tables"),
    (f'[[webhook]]\nurl = "ftp://x"\nsecret = "{SECRET}"', "url must be an http:// or https:// URL"),
    ('[[webhook]]\nurl = "https://x.example"\nsecret = "hunter2-not-whsec"', "must start with 'whsec_'"),
    ('[[webhook]]\nurl = "https://x.example"\nsecret = "whsec_@@@"', "is not base64"),
    ('[[webhook]]\nurl = "https://x.example"\nsecret = "whsec_c2hvcnQ="', "use at least 16"),
    (f'[[webhook]]\nurl = "https://x.example"\nsecret = "{SECRET}"\nformat = "teams"', "format must be one of"),
    (f'[[webhook]]\nurl = "https://x.example"\nsecret = "{SECRET}"\nevents = []', "events must be a non-empty list"),
    (f'[[webhook]]\nurl = "https://x.example"\nsecret = "{SECRET}"\nsecrets = 1', "unknown key(s) secrets"),
    (f'[[webhook]]\nname="a"\nurl = "https://x.example"\nsecret = "{SECRET}"\n'
     f'[[webhook]]\nname="a"\nurl = "https://y.example"\nsecret = "{SECRET}"', "names must be unique"),
])
def test_malformed_file_is_one_clear_error(tmp_path, text, message):
    with pytest.raises(TargetsError) as caught:
        load_targets({"VIX_BREAKER_WEBHOOKS": _write(tmp_path, text)})
    assert message in str(caught.value) and "\n" not in str(caught.value)
    assert "MfKQ9r8" not in str(caught.value)


def test_no_target_and_url_without_secret_are_errors():
    with pytest.raises(TargetsError, match="no webhook target"):
        load_targets({})
    with pytest.raises(TargetsError, match="VIX_BREAKER_WEBHOOK_SECRET is not"):
        load_targets({"VIX_BREAKER_WEBHOOK_URL": "https://x.example"})


def test_cli_refuses_a_malformed_file_with_exit_2_and_no_secret(tmp_path, redis_url):
    path = _write(tmp_path, f'[[webhook]]\nurl = "https://x.example"\nsecret = "{SECRET}"\nformat = "teams"')
    result = CliRunner().invoke(cli, ["notify"], env={"REDIS_URL": redis_url, "VIX_BREAKER_WEBHOOKS": path})
    assert result.exit_code == 2
    assert "format must be one of standard, slack" in result.output
    assert result.output.count("\n") == 1 and SECRET not in result.output


# ---- messages ---------------------------------------------------------------------------------------------

def test_standard_document_carries_server_time_actor_and_fields():
    doc = json.loads(standard_body(EVENT))
    assert doc == {
        "type": "override_set", "id": "1800000000123-0", "time": "2027-01-15T08:00:00.123Z",
        "timestamp": 1800000000.123, "actor": {"name": "alice", "auth": "token:t1", "role": "operator"},
        "data": {"kind": "operator", "why": "cup final <!channel> & more", "tier": None,
                 "detail": {"mode": "force_full", "until": 1800003600.0}, "recorded_at": 1800000000.0},
    }


def test_entries_without_identity_fields_have_empty_auth_and_role():
    fields = {k: v for k, v in EVENT.fields.items() if k not in ("auth", "role")}
    assert json.loads(standard_body(AuditEvent(EVENT.id, fields)))["actor"] == {"name": "alice", "auth": "",
                                                                                "role": ""}


def test_slack_body_matches_the_golden_file():
    """The Slack body, byte for byte (regenerate the golden file only for a deliberate change)."""
    assert json.loads(slack_body(EVENT)) == json.loads(GOLDEN.read_text())
    assert b"<!channel>" not in slack_body(EVENT)  # an operator's text never pings a channel


# ---- signing ----------------------------------------------------------------------------------------------

def test_signature_verifies_with_standardwebhooks_and_tampering_fails():
    body = standard_body(EVENT)
    headers = signed_headers(SECRET, EVENT.id, body, time.time())
    assert headers["webhook-id"] == EVENT.id
    assert Webhook(SECRET).verify(body, headers)["id"] == EVENT.id
    with pytest.raises(WebhookVerificationError):
        Webhook(SECRET).verify(body.replace(b"alice", b"mallory"), headers)
    with pytest.raises(WebhookVerificationError):
        Webhook(SECRET).verify(body, {**headers, "webhook-id": "1800000000124-0"})


# ---- retry schedule and one try ---------------------------------------------------------------------------

def test_backoff_doubles_up_to_the_cap_with_jitter():
    policy = RetryPolicy(tries=10, base_s=1.0, cap_s=8.0, jitter=0.5)
    rng = random.Random(7)
    for failed, ceiling in ((1, 1.0), (2, 2.0), (3, 4.0), (4, 8.0), (9, 8.0)):
        delays = [policy.delay_s(failed, rng) for _ in range(50)]
        assert all(ceiling * 0.5 <= d <= ceiling for d in delays) and len(set(delays)) > 1
    assert policy.worst_case_s() == 10 * 10.0 + (1 + 2 + 4 + 8 * 6)
    with pytest.raises(ValueError):
        RetryPolicy(tries=0)


@pytest.fixture
def trickling_server():
    """Accepts, then sends an HTTP answer one byte every 0.1 s: each read is quick, the whole never ends."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    stop = threading.Event()

    def serve() -> None:
        conn, _ = listener.accept()
        with conn:
            conn.recv(65536)
            for byte in b"HTTP/1.1 200 OK\r\nX-Slow: " + b"a" * 10_000:
                if stop.wait(0.1):
                    return
                try:
                    conn.sendall(bytes([byte]))
                except OSError:
                    return

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{listener.getsockname()[1]}/hook"
    stop.set()
    listener.close()
    thread.join(5)


def test_one_try_is_bounded_as_a_whole_not_per_read(trickling_server):
    outcome = post_once(trickling_server, b"{}", {}, timeout_s=0.5)
    assert not outcome.ok and outcome.error == "no complete answer within 0.5 s"
    assert outcome.seconds < 3  # per-read timeouts alone would wait 1000 s here


# ---- History's delivery states ----------------------------------------------------------------------------

def test_delivery_states_per_event():
    outcomes = [Outcome("5-0", "chat", "dead", 8, "HTTP 500", 9.0),  # newest first, as outcomes() returns them
                Outcome("5-0", "ops", "delivered", 1, "", 8.0),
                Outcome("4-0", "ops", "dead", 8, "HTTP 500", 7.0),
                Outcome("4-0", "ops", "retry_delivered", 1, "", 10.0)]
    outcomes.sort(key=lambda o: o.at, reverse=True)
    states = delivery_states(["3-0", "4-0", "5-0", "6-0", "7-0"], outcomes, "6-0", {"6-0"})
    assert states == {"3-0": "not sent (no target wanted it, or older than the notifier)",
                      "4-0": "ops: delivered on retry", "5-0": "chat: dead, ops: delivered",
                      "6-0": "in delivery", "7-0": "waiting"}
    assert delivery_states(["1-0"], [], None, set()) == {"1-0": "no notifier"}


# ---- metrics ----------------------------------------------------------------------------------------------

def test_metrics_are_served_and_documented():
    """Every metric the notifier serves is in NOTIFY_METRICS and in docs/notifications.md, and the alert rules
    use only those names."""
    import re
    import urllib.request

    from breaker.ops.notify import NOTIFY_METRICS, NotifierMetrics

    metrics = NotifierMetrics()
    metrics.delivered.labels("ops").inc()
    server, _ = metrics.serve(0)
    try:
        text = urllib.request.urlopen(f"http://127.0.0.1:{server.server_port}/metrics", timeout=5).read().decode()
    finally:
        server.shutdown()
    families = {m.name + ("_total" if m.type == "counter" else "") for m in metrics.registry.collect()}
    assert families == set(NOTIFY_METRICS)
    assert 'vix_breaker_notify_delivered_total{target="ops"} 1.0' in text
    root = Path(__file__).resolve().parents[2]
    docs = (root / "docs" / "notifications.md").read_text()
    assert all(f"`{name}`" in docs for name in NOTIFY_METRICS)
    rules = (root / "deploy" / "alerts" / "notifier.yml").read_text()
    assert set(re.findall(r"vix_breaker_notify_\w+", rules)) <= set(NOTIFY_METRICS)


# ---- review findings: hostile URLs and hostile audit text ---------------------------------------------------

SLACK_PATH = "/services/T0/B0/SECRETPATHTOKEN"


@pytest.mark.parametrize("url", [
    f"https://hooks.slack.example{SLACK_PATH} ",  # a trailing space pasted with the URL
    f"https://hooks.slack.example{SLACK_PATH}\\u0000",
    f"https://hooks.slack.example:99999{SLACK_PATH}",  # no such port
    f"https://hooks.slack.example:80a{SLACK_PATH}",
    f"hooks.slack.example{SLACK_PATH}",  # no scheme
    f"https://[::1{SLACK_PATH}",
])
def test_unusable_url_is_a_start_up_error_that_does_not_echo_the_url(tmp_path, url):
    """A Slack webhook URL is a credential: a URL that http.client would refuse (or that has no usable port) is
    refused at start-up, and the message names the target, not the URL."""
    path = _write(tmp_path, f'[[webhook]]\nname = "chat"\nurl = "{url}"\nsecret = "{SECRET}"')
    with pytest.raises(TargetsError) as caught:
        load_targets({"VIX_BREAKER_WEBHOOKS": path})
    assert "chat" in str(caught.value) and "SECRETPATHTOKEN" not in str(caught.value)


def test_a_refused_request_target_fails_the_try_without_echoing_the_url():
    """http.client's InvalidURL message repeats the path (a Slack URL's secret part): the try's error, which goes
    to logs, dead letters and History, must not."""
    outcome = post_once(f"http://127.0.0.1:9{SLACK_PATH} ", b"{}", {}, timeout_s=1.0)
    assert not outcome.ok and "SECRETPATHTOKEN" not in outcome.error


def _mrkdwn_objects(body: dict) -> list[dict]:
    section = body["blocks"][0]["text"]
    return [section, *body["blocks"][1]["elements"]]


def test_slack_body_of_hostile_audit_text_is_bounded_quoted_and_inert():
    """A 1 MB reason with control characters, Slack mentions and links, and a name with a line break: the
    body stays within Slack's limits (3000 characters per mrkdwn text, a short ``text``), every line of the
    reason stays inside the quote (it cannot fake a second headline), no raw ``<`` reaches Slack, and Slack's
    automatic parsing (bare URLs, @channel) is off."""
    why = ("fine\n*panic_end by admin (admin)*\r\n<!channel> <http://evil.example|click> @here \x1b[31m\x00"
           + "&" * 1_000_000)
    event = AuditEvent("1800000000123-0", {**EVENT.fields, "who": "mallory\n*zombie_clear by root*", "why": why,
                                           "auth": "token:" + "x" * 10_000})
    raw = slack_body(event)
    body = json.loads(raw)
    assert len(raw) < 20_000
    assert len(body["text"]) <= 3000
    for obj in _mrkdwn_objects(body):
        assert obj["type"] == "mrkdwn" and obj.get("verbatim") is True
        assert len(obj["text"]) <= 3000 and "<" not in obj["text"]
    headline, *rest = body["blocks"][0]["text"]["text"].split("\n")
    assert headline.startswith("*override_set by mallory") and headline.endswith("*")
    quoted = [line for line in rest if not line.startswith("• ")]
    assert quoted and all(line.startswith("> ") for line in quoted)
    assert "\x1b" not in raw.decode() and "\\u001b" not in raw.decode() and "\\u0000" not in raw.decode()
    assert "\n" not in body["text"]


def test_time_is_the_servers_clock_from_the_stream_id_not_the_writers():
    """``at`` is the writer's own clock for logins, drills, retries, demo controls and the notifier's gap entries
    (only overrides pass a server time). The stream id's milliseconds are the Redis server's clock at XADD: a
    console host 10 min fast must not move an event's ``time``. The writer's value stays as ``recorded_at``."""
    skewed = AuditEvent("1800000000123-0", {**EVENT.fields, "at": "1800000600.0"})
    doc = json.loads(standard_body(skewed))
    assert (doc["time"], doc["timestamp"]) == ("2027-01-15T08:00:00.123Z", 1800000000.123)
    assert doc["data"]["recorded_at"] == 1800000600.0
    assert "08:00:00.123Z (server time)" in json.loads(slack_body(skewed))["blocks"][1]["elements"][0]["text"]


def _strict_json(raw: bytes) -> object:
    def refuse(constant: str) -> None:
        raise ValueError(f"{constant} is not JSON")
    return json.loads(raw, parse_constant=refuse)


def test_a_non_finite_number_in_an_entry_still_makes_strict_json():
    """A stored detail with NaN or Infinity (Python's json writes them) must not reach a receiver as ``NaN``:
    RFC 8259 parsers (Go, JavaScript, most receivers) refuse the whole body, and the event ends as a dead letter."""
    event = AuditEvent(EVENT.id, {**EVENT.fields, "detail": '{"ratio": NaN, "limits": [Infinity, -Infinity, 1.5]}'})
    doc = _strict_json(standard_body(event))
    assert doc["data"]["detail"] == {"ratio": "NaN", "limits": ["Infinity", "-Infinity", 1.5]}
    _strict_json(slack_body(event))


def test_a_targets_repr_shows_neither_the_secret_nor_the_urls_path():
    """``repr`` is what ends up in a log line or a traceback: a Slack URL's path is as secret as the secret."""
    [target] = load_targets({"VIX_BREAKER_WEBHOOK_URL": f"https://hooks.slack.example{SLACK_PATH}?token=abc",
                             "VIX_BREAKER_WEBHOOK_SECRET": SECRET})
    text = repr(target)
    assert "SECRETPATHTOKEN" not in text and "abc" not in text and SECRET not in text
    assert "https://hooks.slack.example" in text and "default" in text


def test_a_url_with_user_and_password_is_refused_rather_than_sent_without_them(tmp_path):
    """http.client sends no credentials from a URL's userinfo: every try would get the receiver's 401 until the
    dead letter. Refused at start-up instead, without repeating the password."""
    path = _write(tmp_path, f'[[webhook]]\nname = "siem"\nurl = "https://bob:hunter2@siem.example/in"\n'
                            f'secret = "{SECRET}"')
    with pytest.raises(TargetsError, match="user or password") as caught:
        load_targets({"VIX_BREAKER_WEBHOOKS": path})
    assert "hunter2" not in str(caught.value)
