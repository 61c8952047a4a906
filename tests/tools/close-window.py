#!/usr/bin/python3
"""Closes a window as a person clicking its close button does: sends it WM_DELETE_WINDOW.

Usage: close-window.py TITLE   (on $DISPLAY; exits 1 if no window has that title)
Xvfb runs no window manager, so the request goes straight to the application.
"""
import sys

from Xlib import X, display, protocol


def windows(d, window):
    yield window
    for child in window.query_tree().children:
        yield from windows(d, child)


def main(title):
    d = display.Display()
    wm_protocols = d.intern_atom("WM_PROTOCOLS")
    wm_delete = d.intern_atom("WM_DELETE_WINDOW")
    for window in windows(d, d.screen().root):
        try:
            name = window.get_wm_name()
            protocols = window.get_wm_protocols() or []
        except Exception:
            continue
        if name == title and wm_delete in protocols:
            event = protocol.event.ClientMessage(
                window=window,
                client_type=wm_protocols,
                data=(32, [wm_delete, X.CurrentTime, 0, 0, 0]),
            )
            window.send_event(event, event_mask=X.NoEventMask)
            d.flush()
            return 0
    print(f"no window titled {title!r}", file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
