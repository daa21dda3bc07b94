"""``python -m console [streamlit options]``: check the settings, then ``streamlit run app.py`` (what ``make run``
and ``make demo`` start).

Streamlit runs app.py only when a browser opens a session, so a bad ``REDIS_URL`` would otherwise be found by
the first operator, as a page. Here it is found before anything is served: one line on stderr and exit
status 2 for a setting the console cannot use (malformed ``REDIS_URL``, an option the client refuses, a plain
URL naming a cluster node, any other ConfigError). A Redis that does not answer yet is not refused: the
console shows it unreachable and keeps retrying.
"""

from __future__ import annotations

import sys
from pathlib import Path

from breaker import ConfigError, Settings
from breaker.ops.target import connect_target

APP = Path(__file__).resolve().parents[1] / "app.py"
EXIT_CONFIG = 2


def check_settings() -> str | None:
    """The one-line reason the console cannot start, or None."""
    try:
        settings = Settings.from_env()
        if settings.redis_url:  # the embedded sandbox needs no check (and starts with the first page)
            connect_target(settings).close()
    except ConfigError as exc:
        return f"configuration error: {exc}"
    return None


def main(argv: list[str]) -> int:
    problem = check_settings()
    if problem is not None:
        print(f"vix-breaker console: {problem}", file=sys.stderr)
        return EXIT_CONFIG
    from streamlit.web import cli as streamlit_cli

    sys.argv = ["streamlit", "run", str(APP), *argv]
    return streamlit_cli.main()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
