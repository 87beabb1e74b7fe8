"""Run by the labgrid venv's Python, never imported by tinyml: labgrid's client API as a small agent.

labgrid pulls in `pyserial-labgrid`, which replaces the `serial` package tinyml pins, so it
lives in a venv of its own (tinyml.rig.labgrid) and tinyml talks to it through this script:

    python labgrid_agent.py places COORDINATOR
        prints {"places": [...]} and exits
    python labgrid_agent.py hold COORDINATOR PLACE [--wait S]
        acquires PLACE (retrying while another user holds it, up to S seconds), prints
        {"status": "acquired", "url": "socket://HOST:PORT"} (or "busy", "missing", "error"),
        then holds it until its stdin closes or it gets SIGTERM/SIGINT, and releases it.

Every answer is one JSON line on stdout. Closing stdin is how tinyml lets go: it also happens
when tinyml dies, so a place is never left acquired by a run that is gone.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
import time

RETRY_S = 1.0


# labgrid's client prints its own progress ("acquired place ..."): that goes to stderr, so that
# stdout carries only the agent's JSON lines.
_ANSWERS = sys.stdout
sys.stdout = sys.stderr


def _say(**message) -> None:
    _ANSWERS.write(json.dumps(message) + "\n")
    _ANSWERS.flush()


def _session(address: str):
    from labgrid.remote.client import start_session

    return start_session(address)


def _places(args: argparse.Namespace) -> int:
    session = _session(args.coordinator)
    _say(places=sorted(session.places))
    session.loop.run_until_complete(session.stop())
    return 0


def _serial_url(session, place) -> str | None:
    for (_name, cls), resource in session.get_target_resources(place).items():
        if cls == "NetworkSerialPort":
            params = resource.params
            scheme = "socket" if params.get("protocol", "rfc2217") == "raw" else "rfc2217"
            return f"{scheme}://{params['host']}:{params['port']}"
    return None


def _hold(args: argparse.Namespace) -> int:
    from labgrid.remote.client import Error as LabgridError

    session = _session(args.coordinator)
    session.args = argparse.Namespace(place=args.place, allow_unmatched=False, kick=False)
    if args.place not in session.places:
        _say(status="missing", places=sorted(session.places))
        return 3
    deadline = time.monotonic() + args.wait
    while True:
        try:
            session.loop.run_until_complete(session.acquire())
            break
        except LabgridError as exc:
            holder = session.places[args.place].acquired
            if not holder or time.monotonic() >= deadline:
                _say(status="busy" if holder else "error", holder=holder, message=str(exc))
                return 4
            time.sleep(RETRY_S)
            session.loop.run_until_complete(session.sync_with_coordinator())
    released = threading.Event()

    def _release(*_args) -> None:
        if not released.is_set():
            released.set()
            session.loop.run_until_complete(session.release())

    try:
        url = _serial_url(session, session.places[args.place])
        if url is None:
            _say(status="error", message=f"place {args.place} has no NetworkSerialPort")
            return 5
        _say(status="acquired", url=url)
        stop = threading.Event()
        signal.signal(signal.SIGTERM, lambda *_: stop.set())
        signal.signal(signal.SIGINT, lambda *_: stop.set())
        threading.Thread(target=lambda: (sys.stdin.read(), stop.set()), daemon=True).start()
        while not stop.wait(0.2):
            pass
    finally:
        _release()
        _say(status="released")
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(prog="labgrid_agent")
    sub = parser.add_subparsers(dest="action", required=True)
    places = sub.add_parser("places")
    places.add_argument("coordinator")
    hold = sub.add_parser("hold")
    hold.add_argument("coordinator")
    hold.add_argument("place")
    hold.add_argument("--wait", type=float, default=0.0)
    args = parser.parse_args()
    try:
        return _places(args) if args.action == "places" else _hold(args)
    except Exception as exc:  # noqa: BLE001 - the parent needs one JSON line, not a traceback
        _say(status="error", message=f"{type(exc).__name__}: {exc}")
        return 1


if __name__ == "__main__":
    sys.exit(main())
