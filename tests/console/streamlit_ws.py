"""A raw Streamlit client: BackMsg protobufs over ``/_stcore/stream``, as any browser (or script) can send them.

Enough of the protocol to run the script, fill the widgets it drew by their keys, submit a form, and send
``clear_cache``: what an attacker needs, without a browser.
"""

from __future__ import annotations

import time
from contextlib import ExitStack
from typing import Any

from streamlit.proto.BackMsg_pb2 import BackMsg
from streamlit.proto.ClientState_pb2 import ClientState
from streamlit.proto.ForwardMsg_pb2 import ForwardMsg
from streamlit.proto.WidgetStates_pb2 import WidgetState, WidgetStates
from websockets.sync.client import connect


class StreamlitSocket:
    """One browser session on a running ``streamlit run``."""

    def __init__(self, http_url: str) -> None:
        self._stack = ExitStack()
        self.ws = self._stack.enter_context(connect(
            http_url.replace("http://", "ws://") + "/_stcore/stream", subprotocols=["streamlit"], max_size=None,
            open_timeout=30))
        self.widgets: dict[str, Any] = {}  # element id -> the widget proto, from the last run
        self.texts: list[str] = []

    def close(self) -> None:
        self._stack.close()

    def rerun(self, values: dict[str, Any] | None = None, *, timeout_s: float = 60.0) -> list[str]:
        """Run the script with ``values`` (widget key -> value; True presses a button); return its text."""
        states = []
        for key, value in (values or {}).items():
            state = WidgetState(id=self.widget_id(key))
            if value is True:
                state.trigger_value = True
            else:
                state.string_value = str(value)
            states.append(state)
        self.send(BackMsg(rerun_script=ClientState(widget_states=WidgetStates(widgets=states))))
        return self.wait_finished(timeout_s)

    def clear_cache(self) -> None:
        self.send(BackMsg(clear_cache=True))

    def send(self, msg: BackMsg) -> None:
        self.ws.send(msg.SerializeToString())

    def widget_id(self, key: str) -> str:
        """The id of the widget with user key ``key``, or else with label ``key`` (a form's submit button)."""
        matches = [wid for wid in self.widgets if wid.endswith(f"-{key}")] or [
            wid for wid, widget in self.widgets.items() if getattr(widget, "label", None) == key]
        if len(matches) != 1:
            raise KeyError(f"no single widget with key {key!r} in {sorted(self.widgets)}")
        return matches[0]

    def wait_finished(self, timeout_s: float) -> list[str]:
        """Collect elements until a full script run (not a fragment tick) reports it has finished."""
        deadline = time.monotonic() + timeout_s
        self.texts = []
        while time.monotonic() < deadline:
            msg = ForwardMsg()
            msg.ParseFromString(self.ws.recv(timeout=max(0.1, deadline - time.monotonic())))
            kind = msg.WhichOneof("type")
            if kind == "delta" and msg.delta.WhichOneof("type") == "new_element":
                self._collect(msg.delta.new_element)
            elif kind == "script_finished" and msg.script_finished == ForwardMsg.FINISHED_SUCCESSFULLY:
                return self.texts
        raise TimeoutError("the script did not finish")

    def _collect(self, element: Any) -> None:
        kind = element.WhichOneof("type")
        inner = getattr(element, kind)
        if getattr(inner, "id", ""):
            self.widgets[inner.id] = inner
        for field in ("body", "label", "value"):
            text = getattr(inner, field, None)
            if isinstance(text, str) and text:
                self.texts.append(text)
