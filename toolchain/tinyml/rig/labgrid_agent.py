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
    try:
        _ANSWERS.write(json.dumps(message) + "\n")
        _ANSWERS.flush()
    except OSError:  # tinyml is gone: the place is still released
        pass


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


class _Stop(Exception):
    """SIGTERM or SIGINT: tinyml is going (or gone); let go of the place."""


def _stop(*_args) -> None:
    raise _Stop


def _hold(args: argparse.Namespace) -> int:
    from labgrid.remote.client import Error as LabgridError

    # From the first moment: a signal that lands while the coordinator grants the place must still release it.
    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    session = _session(args.coordinator)
    session.args = argparse.Namespace(place=args.place, allow_unmatched=False, kick=False)
    if args.place not in session.places:
        _say(status="missing", places=sorted(session.places))
        return 3
    try:
        return _acquire_and_hold(session, args, LabgridError)
    except _Stop:
        return 0
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)  # releasing is not interrupted
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        session.loop.run_until_complete(session.sync_with_coordinator())
        if session.places[args.place].acquired == f"{session.gethostname()}/{session.getuser()}":
            session.loop.run_until_complete(session.release())
            _say(status="released")


def _acquire_and_hold(session, args: argparse.Namespace, labgrid_error: type[Exception]) -> int:
    deadline = time.monotonic() + args.wait
    while True:
        try:
            session.loop.run_until_complete(session.acquire())
            break
        except labgrid_error as exc:
            holder = session.places[args.place].acquired
            if not holder or time.monotonic() >= deadline:
                _say(status="busy" if holder else "error", holder=holder, message=str(exc))
                return 4
            time.sleep(RETRY_S)
            session.loop.run_until_complete(session.sync_with_coordinator())
    url = _serial_url(session, session.places[args.place])
    if url is None:
        _say(status="error", message=f"place {args.place} has no NetworkSerialPort")
        return 5
    _say(status="acquired", url=url)
    closed = threading.Event()
    threading.Thread(target=lambda: (sys.stdin.read(), closed.set()), daemon=True).start()
    while not closed.wait(0.2):
        pass
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
