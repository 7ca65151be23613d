"""`escalation serve` on the command line: binding, --lan, a taken port, a missing extra."""

from __future__ import annotations

import re
import signal
import socket
import subprocess
import sys

import pytest

from tests.web.conftest import ROOT


def serve(*argv: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "sim", "serve", "--no-browser", "--db", ":memory:", *argv],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def stop(proc: subprocess.Popen) -> int:
    proc.send_signal(signal.SIGINT)
    try:
        return proc.wait(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()


def test_serve_binds_loopback_only_by_default_and_stops_on_ctrl_c():
    import httpx

    proc = serve("--port", "0")
    try:
        first, second = proc.stdout.readline(), proc.stdout.readline()
        port = int(re.search(r"http://127\.0\.0\.1:(\d+)/", first).group(1))
        assert "Only this machine can connect" in second
        assert httpx.get(f"http://127.0.0.1:{port}/api/scenarios").status_code == 200
        listening = subprocess.run(["ss", "-ltn"], capture_output=True, text=True).stdout
        assert f"127.0.0.1:{port} " in listening and f"0.0.0.0:{port} " not in listening
    finally:
        status = stop(proc)
    assert status in (0, 130)


@pytest.mark.parametrize("flags", [["--lan"], ["--host", "0.0.0.0"]])
def test_lan_listens_on_every_interface_and_says_where(flags):
    proc = serve(*flags, "--port", "0")
    try:
        first, second = proc.stdout.readline(), proc.stdout.readline()
        port = int(re.search(r":(\d+)/", first).group(1))
        assert "Listening on every network interface: the class joins at" in second
        listening = subprocess.run(["ss", "-ltn"], capture_output=True, text=True).stdout
        assert f"0.0.0.0:{port} " in listening
    finally:
        stop(proc)


def test_a_taken_port_is_one_line_and_status_2():
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        proc = serve("--port", str(port))
        out, err = proc.communicate(timeout=60)
    assert proc.returncode == 2
    assert err.strip().splitlines() == [
        f"escalation serve: error: cannot listen on 127.0.0.1:{port}: Address already in use"
    ]


def test_without_the_web_extra_serve_says_what_to_install():
    code = (
        "import sys; sys.modules['uvicorn'] = None\n"
        "from sim.cli.main import main\n"
        "sys.exit(main(['serve', '--no-browser']))"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    assert out.returncode == 2
    assert out.stderr.strip() == "needs starlette and uvicorn: pip install 'escalation-sim[web]'"
