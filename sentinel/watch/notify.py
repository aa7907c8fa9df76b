"""systemd readiness (`Type=notify`): the sd_notify datagram, without a dependency.

The protocol is one datagram of `KEY=VALUE` lines to the socket named by
`$NOTIFY_SOCKET` (an abstract socket when it starts with `@`). The `sdnotify` package
does the same in 50 lines but has not been released since 2017, so sentinel keeps its
own dozen. Without `$NOTIFY_SOCKET` (not under systemd, or `Type=simple`) nothing is
sent.
"""

from __future__ import annotations

import os
import socket


def notify(message: str) -> bool:
    """Send `message` (e.g. "READY=1", "STOPPING=1", "WATCHDOG=1"); True when sent."""
    address = os.environ.get("NOTIFY_SOCKET")
    if not address:
        return False
    if address.startswith("@"):
        address = "\0" + address[1:]
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
            sock.connect(address)
            sock.sendall(message.encode())
    except OSError:
        return False
    return True
