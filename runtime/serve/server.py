"""The ``tritonserver`` that nvidia-pytriton bundles (Triton 2.51, Python backend only), started so that it runs
this project's Python models and never outlives its parent.

What the bundled server needs, found on the project's machines (docs/serving.md):

- Its Python stub links the system's ``libpython3.X.so.1.0``; a virtual environment of another patch release then
  fails inside the stub (``RLock._recursion_count``): the interpreter's own ``lib/`` goes first on
  ``LD_LIBRARY_PATH``.
- The stub finds packages through the ``python3`` first on ``PATH``: the interpreter's ``bin/`` goes first.
- The stub for this Python version sits outside the backend folder: a private backend folder links the bundled
  Python backend and that stub.
- Killed with its parent, a server ignored SIGTERM for 30 s: it runs in its own process group, is told to die
  with its parent (``PR_SET_PDEATHSIG``), waits at most ``exit_timeout`` seconds for requests when stopped, and
  :meth:`TritonServer.stop` ends the whole group (SIGTERM, then SIGKILL).

Every endpoint binds ``host`` (127.0.0.1 by default); metrics are off unless a port is given.
"""
from __future__ import annotations

import contextlib
import ctypes
import importlib.util
import os
import signal
import subprocess
import sys
import sysconfig
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import FrameType, TracebackType

from gldfn_model.common.errors import GldfnError
from gldfn_model.common.optional import MissingDependencyError
from gldfn_runtime.runners.triton_contract import SERVE_EXTRA

DEFAULT_HOST = "127.0.0.1"
DEFAULT_HTTP_PORT, DEFAULT_GRPC_PORT = 8000, 8001
READY_TIMEOUT = 120.0  # seconds for the models to load
EXIT_TIMEOUT = 5  # seconds the server waits for requests in flight when told to stop
_PR_SET_PDEATHSIG = 1
_LOG_TAIL = 20


class TritonServerError(GldfnError, RuntimeError):
    """The server cannot be found, started or made ready; the message holds the reason from its log."""


@dataclass(frozen=True)
class BundledTriton:
    """Where nvidia-pytriton keeps its server: the binary, its libraries, the Python backend and the stub."""

    binary: Path
    libraries: Path
    python_backend: Path
    stub: Path


def find_bundled_triton() -> BundledTriton:
    """The bundled server's files (the package is located, not imported); MissingDependencyError without it."""
    spec = importlib.util.find_spec("pytriton")
    if spec is None or not spec.submodule_search_locations:
        raise MissingDependencyError(f"nvidia-pytriton is not installed; gldfn-trt serve runs the tritonserver it "
                                     f"bundles: {SERVE_EXTRA}")
    package = Path(next(iter(spec.submodule_search_locations)))
    root = package / "tritonserver"
    version = f"{sys.version_info.major}.{sys.version_info.minor}"
    bundled = BundledTriton(root / "bin" / "tritonserver", package.parent / "nvidia_pytriton.libs",
                            root / "backends" / "python", root / "python_backend_stubs" / version / "triton_python_backend_stub")
    for path, what in ((bundled.binary, "its tritonserver"), (bundled.python_backend, "its Python backend"),
                       (bundled.stub, f"a Python backend stub for Python {version}")):
        if not path.exists():
            raise TritonServerError(f"nvidia-pytriton in {package} lacks {what} ({path}); reinstall it: {SERVE_EXTRA}")
    return bundled


def python_library_dir() -> Path | None:
    """The folder holding this interpreter's shared libpython, where it has one."""
    folder, library = sysconfig.get_config_var("LIBDIR"), sysconfig.get_config_var("LDLIBRARY")
    if folder and library and (Path(folder) / library).exists() and library.endswith(".so"):
        return Path(folder)
    return None


def server_environment(bundled: BundledTriton, base: dict[str, str] | None = None) -> dict[str, str]:
    """The environment the server and its stubs run with: this interpreter's libpython and ``python3`` first."""
    env = dict(os.environ if base is None else base)
    libraries = [str(p) for p in (python_library_dir(), bundled.libraries) if p is not None]
    env["LD_LIBRARY_PATH"] = os.pathsep.join(libraries + [p for p in env.get("LD_LIBRARY_PATH", "").split(os.pathsep) if p])
    # The venv's bin/ (sys.executable's folder, not resolved: a venv's python3 is a link to the base interpreter).
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    return env


def make_backend_dir(bundled: BundledTriton, folder: Path) -> Path:
    """``folder/python``: the bundled Python backend's files and this Python's stub, linked; returns ``folder``."""
    python = folder / "python"
    python.mkdir(parents=True)
    for entry in bundled.python_backend.iterdir():
        if entry.name != "__pycache__":
            (python / entry.name).symlink_to(entry)
    (python / bundled.stub.name).symlink_to(bundled.stub)
    return folder


def _die_with_parent() -> Callable[[], None] | None:
    """A preexec function that asks Linux to kill the child when its parent dies (None elsewhere). libc is loaded
    here, in the parent: the child only makes the call."""
    if not sys.platform.startswith("linux"):
        return None
    prctl = ctypes.CDLL(None, use_errno=True).prctl

    def preexec() -> None:
        prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)

    return preexec


def _port_taken(host: str, port: int) -> bool:
    import socket

    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError:
            return True
    return False


class TritonServer:
    """One bundled ``tritonserver`` on ``repository``: :meth:`start` returns once every model is ready (or raises
    with the log's reason), :meth:`stop` ends its process group. A context manager does both."""

    def __init__(self, repository: str | os.PathLike[str], *, host: str = DEFAULT_HOST, http_port: int = DEFAULT_HTTP_PORT,
                 grpc_port: int = DEFAULT_GRPC_PORT, metrics_port: int | None = None, log_file: str | os.PathLike[str] | None = None,
                 extra_args: Sequence[str] = (), exit_timeout: int = EXIT_TIMEOUT) -> None:
        self.repository = Path(repository)
        self.host, self.http_port, self.grpc_port, self.metrics_port = host, http_port, grpc_port, metrics_port
        self.log_file = Path(log_file) if log_file is not None else None
        self.extra_args, self.exit_timeout = list(extra_args), exit_timeout
        self.process: subprocess.Popen[bytes] | None = None
        self._scratch: tempfile.TemporaryDirectory[str] | None = None
        self._log_path: Path | None = None

    @property
    def http_url(self) -> str:
        return f"{self.host}:{self.http_port}"

    @property
    def grpc_url(self) -> str:
        return f"grpc://{self.host}:{self.grpc_port}"

    def command(self, backend_dir: Path, binary: Path) -> list[str]:
        command = [str(binary), f"--model-repository={self.repository.resolve()}", f"--backend-directory={backend_dir}",
                   f"--http-address={self.host}", f"--http-port={self.http_port}",
                   f"--grpc-address={self.host}", f"--grpc-port={self.grpc_port}",
                   f"--exit-timeout-secs={self.exit_timeout}", "--strict-readiness=true"]
        if self.metrics_port is None:
            command.append("--allow-metrics=false")
        else:
            command += [f"--metrics-address={self.host}", f"--metrics-port={self.metrics_port}", "--allow-gpu-metrics=false"]
        return command + self.extra_args

    def _check_start(self) -> None:
        if not self.repository.is_dir():
            raise TritonServerError(f"{self.repository}: no such model repository (write one with gldfn-trt triton)")
        ports = {"--http-port": self.http_port, "--grpc-port": self.grpc_port, "--metrics-port": self.metrics_port}
        for flag, port in ports.items():
            if port is not None and _port_taken(self.host, port):
                raise TritonServerError(f"{self.host}:{port} is in use; choose another {flag}")

    def start(self, timeout: float = READY_TIMEOUT) -> TritonServer:
        """Start the server and wait until it is ready."""
        self._check_start()
        bundled = find_bundled_triton()
        self._scratch = tempfile.TemporaryDirectory(prefix="gldfn-triton-")
        scratch = Path(self._scratch.name)
        backend_dir = make_backend_dir(bundled, scratch / "backends")
        self._log_path = self.log_file or scratch / "tritonserver.log"
        with open(self._log_path, "ab") as log:
            self.process = subprocess.Popen(
                self.command(backend_dir, bundled.binary), stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                env=server_environment(bundled), start_new_session=True, preexec_fn=_die_with_parent())
        try:
            self.wait_ready(timeout)
        except BaseException:
            self.stop()
            raise
        return self

    def log_tail(self, lines: int = _LOG_TAIL) -> str:
        if self._log_path is None or not self._log_path.exists():
            return ""
        return "\n".join(self._log_path.read_text(errors="replace").splitlines()[-lines:])

    def _log_reason(self) -> str:
        """The server's own error lines (``E...`` in Triton's log format), else the log's last lines."""
        tail = self.log_tail(200).splitlines()
        errors = [line for line in tail if line.startswith("E")]
        return "\n".join((errors or tail)[-_LOG_TAIL:])

    def ready(self) -> bool:
        try:
            with urllib.request.urlopen(f"http://{self.http_url}/v2/health/ready", timeout=2) as response:
                return response.status == 200
        except (urllib.error.URLError, OSError):
            return False

    def wait_ready(self, timeout: float = READY_TIMEOUT) -> None:
        """Return once the server is ready; TritonServerError when it exits first or ``timeout`` passes."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process is None or self.process.poll() is not None:
                code = None if self.process is None else self.process.returncode
                raise TritonServerError(f"tritonserver exited (status {code}) before it was ready:\n{self._log_reason()}")
            if self.ready():
                return
            time.sleep(0.2)
        raise TritonServerError(f"tritonserver was not ready after {timeout:.0f} s:\n{self._log_reason()}")

    def signal(self, signum: int) -> None:
        """Send ``signum`` to the server's process group (the server and its Python stubs)."""
        if self.process is not None and self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signum)

    def stop(self, timeout: float | None = None) -> int | None:
        """End the server's process group: SIGTERM, and SIGKILL after ``timeout`` (default: the exit timeout plus
        5 s); returns the server's exit status."""
        process, code = self.process, None
        if process is not None:
            self.signal(signal.SIGTERM)
            try:
                code = process.wait(timeout if timeout is not None else self.exit_timeout + 5)
            except subprocess.TimeoutExpired:
                code = None
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)  # stubs left behind, or a server that did not stop
            if code is None:
                code = process.wait()
        if self._scratch is not None:
            if self.log_file is None and self._log_path is not None:
                self._log_path = None  # the log goes with the scratch folder
            self._scratch.cleanup()
            self._scratch = None
        return code

    def __enter__(self) -> TritonServer:
        return self.start() if self.process is None else self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None) -> None:
        self.stop()


def serve_until_signalled(server: TritonServer, on_ready: Callable[[TritonServer], None] | None = None) -> int:
    """Start ``server``, call ``on_ready``, and wait for it: SIGINT, SIGTERM and SIGHUP are forwarded to its
    process group (SIGTERM); whatever ends this function, the group is ended. Returns the server's exit status."""
    received: list[int] = []

    def forward(signum: int, frame: FrameType | None) -> None:
        received.append(signum)
        server.signal(signal.SIGTERM)

    previous = {s: signal.signal(s, forward) for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)}
    try:
        server.start()
        if on_ready is not None:
            on_ready(server)
        assert server.process is not None
        code = server.process.wait()
        if received and code != 0:
            code = 0  # stopped as asked
        return code
    finally:
        server.stop()
        for signum, handler in previous.items():
            signal.signal(signum, handler)
