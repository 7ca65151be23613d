"""`escalation serve`: the explorer and the classroom game in a browser (docs/classroom.md)."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

COMMAND = "serve"
HELP = "the explorer and the classroom game in a browser (needs the [web] extra)"
MISSING = "needs starlette and uvicorn: pip install 'escalation-sim[web]'"


def _port(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not a port number") from None
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError("the port must be from 0 to 65535 (0: any free port)")
    return value


def default_db() -> Path:
    """Where games are kept between runs: the user's data folder (XDG_DATA_HOME)."""
    base = os.environ.get("XDG_DATA_HOME") or os.path.join(
        os.path.expanduser("~"), ".local", "share"
    )
    return Path(base) / "escalation-sim" / "classroom.sqlite"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.description = (
        "Serve the scenario explorer, the browser game and the class game. Bound to this "
        "machine only (127.0.0.1) unless --lan. Games are kept in an SQLite file (--db), so a "
        "restart loses none."
    )
    p.add_argument("--host", default=None, help="address to listen on (default 127.0.0.1)")
    p.add_argument("--port", type=_port, default=8000, help="port (default 8000; 0: a free one)")
    p.add_argument(
        "--lan",
        action="store_true",
        help="listen on every network interface (0.0.0.0), so the class's laptops can join; "
        "prints the address they use",
    )
    p.add_argument("--no-browser", action="store_true", help="do not open a browser")
    p.add_argument(
        "--db",
        default=None,
        metavar="PATH",
        help=f"the SQLite file of games and uploads (default {default_db()}; ':memory:' keeps "
        "nothing)",
    )


def lan_address() -> str | None:
    """This machine's address on its local network (no packet is sent)."""
    import socket

    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        try:
            s.connect(("192.0.2.1", 9))  # TEST-NET-1: routing only, nothing leaves
            return s.getsockname()[0]
        except OSError:
            return None


def allowed_hosts(host: str) -> list[str]:
    """The host names a request may name: this machine's, and the address listened on (a
    page of another site that rebinds its own name to 127.0.0.1 is refused)."""
    hosts = ["127.0.0.1", "localhost", "[::1]", "::1"]
    if host in ("0.0.0.0", "::"):
        return ["*"]  # --lan: the laptops may know this machine by any of its addresses
    hosts.append(f"[{host}]" if ":" in host else host)
    return hosts


def _loopback(host: str) -> bool:
    """Whether `host` is reachable from this machine only."""
    import ipaddress

    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def run(args: argparse.Namespace) -> int:
    """Serve until Ctrl-C; exit status 2 if the extra is missing or the port is taken."""
    from sim.cli.main import UsageError

    try:
        import starlette  # noqa: F401
        import uvicorn
    except ImportError:
        print(MISSING, file=sys.stderr)
        return 2
    import socket

    if args.lan and args.host not in (None, "0.0.0.0"):
        raise UsageError("--lan listens on 0.0.0.0: give --host or --lan, not both")
    host = "0.0.0.0" if args.lan else (args.host or "127.0.0.1")
    db = args.db or str(default_db())
    if db != ":memory:":
        try:
            Path(db).parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise UsageError(f"--db {db}: {exc.strerror}") from None
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # proto IPPROTO_TCP: asyncio then sets TCP_NODELAY on each connection (else every
    # response waits 40 ms for a delayed ACK)
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, args.port))
    except OSError as exc:
        sock.close()
        raise UsageError(f"cannot listen on {host}:{args.port}: {exc.strerror}") from None
    sock.listen(128)
    sock.set_inheritable(True)
    port = sock.getsockname()[1]
    from sim.web.app import KEEP_ALIVE_SECONDS, create_app

    everywhere = host in ("0.0.0.0", "::")
    address = lan_address() if everywhere else None
    public = f"http://{address}:{port}/" if address else None
    try:
        app = create_app(db, public_url=public, hosts=allowed_hosts(host))
    except Exception as exc:  # sqlite3.Error: a file that is not a database
        sock.close()
        raise UsageError(f"--db {db}: {exc}") from None
    shown = f"[{host}]" if ":" in host else host
    local = f"http://127.0.0.1:{port}/" if everywhere else f"http://{shown}:{port}/"
    print(f"escalation serve: {local} (games kept in {db}; Ctrl-C stops)", flush=True)
    if everywhere:
        where = public or f"port {port} of this machine's network address"
        print(f"Listening on every network interface: the class joins at {where}", flush=True)
    elif _loopback(host):
        print("Only this machine can connect (--lan opens it to the classroom network).")
    else:
        print(f"Listening on {host}: any machine that can reach that address can connect.")
    if not args.no_browser:
        import threading
        import webbrowser

        threading.Timer(0.5, webbrowser.open, (local,)).start()
    config = uvicorn.Config(
        app,
        log_level="warning",
        access_log=False,
        timeout_graceful_shutdown=3,
        timeout_keep_alive=KEEP_ALIVE_SECONDS,
        lifespan="on",
    )
    hub = app.state.hub

    class Server(uvicorn.Server):
        def handle_exit(self, sig: int, frame: object) -> None:
            hub.closing = True  # the dashboards' event streams end now: a prompt shutdown
            super().handle_exit(sig, frame)

    Server(config).run(sockets=[sock])
    return 0
