"""A real server process for the burst and load tests: `manage.py` and Daphne in
subprocesses with their own environment, and a bounded burst of HTTP requests against it.

The in-process test client shares one connection and one thread; the failures these tests
guard against ("database is locked", "too many clients") only show with a real ASGI server
and many concurrent clients.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from cryptography.fernet import Fernet

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent


def server_env(var_dir: Path, **overrides: str) -> dict[str, str]:
    """The environment of a non-debug deployment with its own secrets and VAR_DIR: the
    embedded default unless `overrides` set DATABASE_URL / REDIS_URL."""
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL")}
    env.update(
        DJANGO_SETTINGS_MODULE="config.settings",
        VAR_DIR=str(var_dir),
        MEDIA_ROOT=str(var_dir / "media"),
        DEBUG="false",
        SECRET_KEY=Fernet.generate_key().decode() * 2,
        PARTNER_SECRETS_KEY=Fernet.generate_key().decode(),
        TRANSIT_CARD_HASH_KEY=Fernet.generate_key().decode(),
        PARTNER_REF_HASH_KEY=Fernet.generate_key().decode(),
        ALLOWED_HOSTS="127.0.0.1,localhost",
        PASSWORD_HASHERS="django.contrib.auth.hashers.MD5PasswordHasher",
        CELERY_TASK_ALWAYS_EAGER="true",
        LOG_LEVEL="WARNING",
        PYTHONUNBUFFERED="1",
    )
    env.update(overrides)
    return env


def manage(*args: str, env: dict[str, str], timeout: float = 120) -> str:
    """Run a management command in its own process; its stdout, or a failure with stderr."""
    done = subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert done.returncode == 0, f"manage.py {' '.join(args)} failed:\n{done.stderr[-3000:]}"
    return done.stdout


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass(frozen=True)
class Server:
    url: str
    process: subprocess.Popen


@contextmanager
def daphne(
    *, env: dict[str, str], log: Path, start_timeout: float = 30, args: Sequence[str] = ()
) -> Iterator[Server]:
    """Serve the ASGI app on a free loopback port; yield it; stop it after. `args` go to
    Daphne (e.g. its WebSocket ping interval and timeout)."""
    port = free_port()
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [
                str(BIN / "daphne"),
                # As scripts/serve.sh: the default listen backlog (50) overflows in a burst,
                # and the kernel then resets connections.
                "-e",
                f"tcp:port={port}:interface=127.0.0.1:backlog=1024",
                *args,
                "config.asgi:application",
            ],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + start_timeout
        while True:
            assert proc.poll() is None, f"daphne exited:\n{log.read_text()[-3000:]}"
            try:
                urllib.request.urlopen(f"{base}/api/v1/behaviours", timeout=2)
                break
            except urllib.error.HTTPError:
                break  # it answered (401 without a token): up
            except OSError:
                assert time.monotonic() < deadline, f"daphne not up:\n{log.read_text()[-3000:]}"
                time.sleep(0.2)
        yield Server(base, proc)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=15)


def _uvicorn_bin() -> str:
    """The project's own uvicorn (its .venv), else the one beside this interpreter."""
    for candidate in (ROOT / ".venv" / "bin" / "uvicorn", BIN / "uvicorn"):
        if candidate.exists():
            return str(candidate)
    raise FileNotFoundError("uvicorn is not installed: uv sync")


@contextmanager
def uvicorn(
    *, env: dict[str, str], log: Path, workers: int = 2, start_timeout: float = 60
) -> Iterator[Server]:
    """Serve the ASGI app as scripts/serve.sh does in production: uvicorn worker processes
    sharing one loopback port. Yields once every worker has started."""
    port = free_port()
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [
                _uvicorn_bin(),
                "config.asgi:application",
                *("--host", "127.0.0.1", "--port", str(port), "--workers", str(workers)),
                *("--backlog", "1024", "--lifespan", "off", "--no-proxy-headers"),
                *("--ws-ping-interval", "10", "--ws-ping-timeout", "20"),
            ],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + start_timeout
        while log.read_text().count("Started server process") < workers:
            assert proc.poll() is None, f"uvicorn exited:\n{log.read_text()[-3000:]}"
            assert time.monotonic() < deadline, f"uvicorn not up:\n{log.read_text()[-3000:]}"
            time.sleep(0.2)
        yield Server(f"http://127.0.0.1:{port}", proc)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=15)


@dataclass(frozen=True)
class Call:
    method: str
    path: str
    token: str
    body: dict | None = None


@dataclass(frozen=True)
class Answer:
    call: Call
    status: int
    body: str


def login(base: str, *, email: str, password: str) -> str:
    """An access token, the way the app gets one."""
    request = urllib.request.Request(
        f"{base}/api/v1/auth/token",
        data=json.dumps({"email": email, "password": password}).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read())["access"]


def _send(base: str, call: Call, timeout: float) -> Answer:
    data = json.dumps(call.body).encode() if call.body is not None else None
    request = urllib.request.Request(
        base + call.path,
        data=data,
        method=call.method,
        headers={"Authorization": f"Bearer {call.token}", "Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return Answer(call, response.status, response.read().decode())
    except urllib.error.HTTPError as exc:
        return Answer(call, exc.code, exc.read().decode(errors="replace"))


def burst(base: str, calls: Sequence[Call], *, clients: int, timeout: float = 30) -> list[Answer]:
    """Send every call from `clients` threads at once; a client that gets no answer at all
    (timeout, reset) raises, which fails the test as surely as a 500."""
    with ThreadPoolExecutor(max_workers=clients) as pool:
        return list(pool.map(lambda call: _send(base, call, timeout), calls))


# --- a bare WebSocket client (RFC 6455, text frames) for tests and benchmarks against a real
# server: the in-process communicator can't show what several processes or a slow TCP peer do.


class WebSocketClosed(Exception):
    def __init__(self, code: int | None):
        super().__init__(f"closed with {code}")
        self.code = code


class WebSocket:
    def __init__(self, reader, writer):
        self.reader, self.writer = reader, writer

    @classmethod
    async def connect(cls, base: str, path: str, *, rcvbuf: int | None = None) -> WebSocket:
        import asyncio
        import base64
        from urllib.parse import urlsplit

        parts = urlsplit(base)
        sock = None
        if rcvbuf is not None:
            # A client that never reads: a small receive buffer fills at once.
            sock = socket.socket()
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
            sock.connect((parts.hostname, parts.port))
            reader, writer = await asyncio.open_connection(sock=sock)
        else:
            reader, writer = await asyncio.open_connection(parts.hostname, parts.port)
        key = base64.b64encode(os.urandom(16)).decode()
        writer.write(
            (
                f"GET {path} HTTP/1.1\r\nHost: {parts.netloc}\r\nUpgrade: websocket\r\n"
                f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
                "Sec-WebSocket-Version: 13\r\n\r\n"
            ).encode()
        )
        await writer.drain()
        head = await reader.readuntil(b"\r\n\r\n")
        status = head.split(b" ", 2)[1]
        if status != b"101":
            writer.close()
            raise WebSocketClosed(int(status))
        return cls(reader, writer)

    async def _frame(self, opcode: int, payload: bytes) -> None:
        header = bytes([0x80 | opcode])
        length = len(payload)
        if length < 126:
            header += bytes([0x80 | length])
        elif length < 65536:
            header += bytes([0x80 | 126]) + length.to_bytes(2, "big")
        else:
            header += bytes([0x80 | 127]) + length.to_bytes(8, "big")
        mask = os.urandom(4)
        masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
        self.writer.write(header + mask + masked)
        await self.writer.drain()

    async def send_json(self, data) -> None:
        await self._frame(0x1, json.dumps(data).encode())

    async def receive_json(self):
        """The next text message, answering pings on the way; WebSocketClosed on a close."""
        while True:
            try:
                first, second = await self.reader.readexactly(2)
            except Exception as exc:  # EOF or reset: closed without a code
                raise WebSocketClosed(None) from exc
            opcode, length = first & 0x0F, second & 0x7F
            if length == 126:
                length = int.from_bytes(await self.reader.readexactly(2), "big")
            elif length == 127:
                length = int.from_bytes(await self.reader.readexactly(8), "big")
            payload = await self.reader.readexactly(length)
            if opcode == 0x8:
                raise WebSocketClosed(int.from_bytes(payload[:2], "big") if payload else None)
            if opcode == 0x9:
                await self._frame(0xA, payload)
                continue
            if opcode == 0x1:
                return json.loads(payload)

    async def close(self) -> None:
        try:
            await self._frame(0x8, (1000).to_bytes(2, "big"))
        except Exception:
            pass
        self.writer.close()
