"""Free TCP ports on 127.0.0.1."""

from __future__ import annotations

import socket


def free_port() -> int:
    """A port nothing listens on now. Another process may take it before ours binds it; on
    127.0.0.1 with ports from the kernel's ephemeral range that has not been a problem."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]
