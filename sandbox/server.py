"""Serving the sandbox: blocking, in a background thread, or as a subprocess.

Tests and the demo use :func:`run_in_thread` (fast, and the state is reachable from the test)
or :func:`run_subprocess` (a real separate process, for load measurements and chaos runs).
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from typing import Any

import uvicorn
from uvicorn.protocols.http.h11_impl import H11Protocol

from sandbox.app import build_app
from sandbox.config import SandboxConfig
from sandbox.contract import PROCESS_TALLY, ValidationTally
from sandbox.gate import TRANSPORT_KEY
from sandbox.options import config_from_args
from sandbox.state import Sandbox

__all__ = ["RunningSandbox", "bind", "run_in_thread", "run_subprocess", "serve"]

READY_PREFIX = "listening on "
VALIDATION_PREFIX = "request validation: "  # the last line: the validation tally, as JSON


class SandboxProtocol(H11Protocol):
    """uvicorn's h11 protocol, exposing the connection's transport in the request state so a
    fault can cut the socket (uvicorn offers no other way to drop a connection unanswered)."""

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        self.app_state = {**self.app_state, TRANSPORT_KEY: transport}
        super().connection_made(transport)


def bind(host: str, port: int) -> socket.socket:
    """A listening socket; port 0 picks a free one."""
    # IPPROTO_TCP explicitly: asyncio only sets TCP_NODELAY on sockets that say they are TCP,
    # and without it every keep-alive answer waits ~40 ms for a delayed ACK (Nagle).
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock


def _config(app: Any, log_level: str) -> uvicorn.Config:
    return uvicorn.Config(
        app,
        http=SandboxProtocol,
        log_level=log_level,
        access_log=False,
        lifespan="on",
        date_header=False,  # the gate sends the sandbox clock's own
    )


class _TallyingServer(uvicorn.Server):
    """Prints the validation tally once shut down (uvicorn re-raises SIGTERM after its
    shutdown, so nothing after ``run`` would be reached)."""

    def __init__(self, config: uvicorn.Config, sandboxes: list[Sandbox]) -> None:
        super().__init__(config)
        self._sandboxes = sandboxes

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        await super().shutdown(sockets)
        tally = ValidationTally()
        for sandbox in self._sandboxes:
            if sandbox.contract is not None:
                tally.absorb(sandbox.contract.tally.to_dict())
        print(VALIDATION_PREFIX + json.dumps(tally.to_dict()), flush=True)


def serve(sandbox: Sandbox, sock: socket.socket, *, log_level: str = "warning") -> None:
    """Serve until interrupted (SIGINT/SIGTERM), then save the state file if one is set, and
    print the validation tally (the tests' summary adds it up across processes)."""
    app = build_app(sandbox.config, sandbox)
    sandboxes = [sandbox, *app.state.tenants.values()]
    _TallyingServer(_config(app, log_level), sandboxes).run(sockets=[sock])


@dataclass(frozen=True, slots=True)
class RunningSandbox:
    base_url: str
    config: SandboxConfig
    sandbox: Sandbox | None  # in-thread only: direct access to the state, for assertions
    pid: int | None = None  # subprocess only: its process, for memory measurements

    @property
    def urls(self) -> dict[str, str]:
        return self.config.base_urls(self.base_url)


@contextmanager
def run_in_thread(
    config: SandboxConfig | None = None, **overrides: Any
) -> Iterator[RunningSandbox]:
    """Start uvicorn in a daemon thread (on a free port unless ``config`` names one); stop it
    on exit. The yielded value carries the in-memory state for assertions."""
    config = replace(config or SandboxConfig(port=0), **overrides)
    sock = bind(config.host, config.port)
    port = sock.getsockname()[1]
    config = replace(config, port=port)
    sandbox = Sandbox(config)
    server = uvicorn.Server(_config(build_app(config, sandbox), "warning"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started and thread.is_alive() and time.monotonic() < deadline:
        time.sleep(0.01)
    try:
        yield RunningSandbox(f"http://{config.host}:{port}", config, sandbox)
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()


@contextmanager
def run_subprocess(*args: str, env: dict[str, str] | None = None) -> Iterator[RunningSandbox]:
    """``python -m sandbox --port 0 ARGS`` in its own process; yields once it listens. Its
    validation tally is added to this process's (:data:`sandbox.contract.PROCESS_TALLY`)."""
    arguments = ["--port", "0", *args]
    environ = {**os.environ, **(env or {})}
    config, _ = config_from_args(arguments, environ)
    process = subprocess.Popen(
        [sys.executable, "-m", "sandbox", *arguments],
        stdout=subprocess.PIPE,
        text=True,
        env=environ,
    )
    try:
        base_url = _wait_ready(process)
        yield RunningSandbox(base_url, config, None, process.pid)
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        _absorb_tally(process)


def _absorb_tally(process: subprocess.Popen[str]) -> None:
    assert process.stdout is not None
    for line in process.stdout:
        if line.startswith(VALIDATION_PREFIX):
            PROCESS_TALLY.absorb(json.loads(line.removeprefix(VALIDATION_PREFIX)))


def _wait_ready(process: subprocess.Popen[str]) -> str:
    assert process.stdout is not None
    for line in process.stdout:
        if line.startswith(READY_PREFIX):
            return line.removeprefix(READY_PREFIX).strip()
    raise RuntimeError(f"the sandbox exited before listening (exit code {process.wait()})")
