"""A real gorpd process on a fixed port and data directory, killable and
restartable where its clients expect it; its process group dies with the test."""

import os
import pathlib
import signal
import socket
import subprocess
import tempfile
import time

REPO = pathlib.Path(__file__).resolve().parents[3]


def gorpd_binary() -> pathlib.Path:
    """GORP_GORPD, else gorpd in $CARGO_TARGET_DIR/debug (as tests/run.sh builds it)."""
    if os.environ.get("GORP_GORPD"):
        return pathlib.Path(os.environ["GORP_GORPD"])
    target = pathlib.Path(os.environ.get("CARGO_TARGET_DIR", REPO / "target"))
    binary = target / "debug" / "gorpd"
    if not binary.is_file():
        raise RuntimeError(f"{binary} is missing: run `cargo build --workspace` or set GORP_GORPD")
    return binary


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Gorpd:
    def __init__(self) -> None:
        self._dir = tempfile.TemporaryDirectory(prefix="gorp-py-")
        self.dir = pathlib.Path(self._dir.name)
        (self.dir / "gorpd.toml").write_text("echo_chunk_delay_ms = 1\nread_max = 1000\n")
        self.port = free_port()
        self.process = None
        self.starts = 0
        self.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def data_dir(self) -> pathlib.Path:
        return self.dir / "data"

    @property
    def token(self) -> str:
        return (self.data_dir / "admin.token").read_text().strip()

    def start(self) -> None:
        self.starts += 1
        env = {"GORP_LOG": "info", "HOME": str(self.dir)}
        if "GORP_TEST_RUN" in os.environ:  # tests/run.sh finds leaked processes by it
            env["GORP_TEST_RUN"] = os.environ["GORP_TEST_RUN"]
        with open(self.dir / f"gorpd-{self.starts}.log", "wb") as log:
            self.process = subprocess.Popen(
                [str(gorpd_binary()), "--config", str(self.dir / "gorpd.toml"), "--data-dir", str(self.data_dir),
                 "--grpc-addr", f"127.0.0.1:{self.port}", "--http-addr", "127.0.0.1:0"],
                env=env, stdout=subprocess.DEVNULL, stderr=log, start_new_session=True)
        deadline = time.monotonic() + 30
        while b"gorpd is serving" not in (self.dir / f"gorpd-{self.starts}.log").read_bytes():
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"gorpd did not start: {(self.dir / f'gorpd-{self.starts}.log').read_text()}")
            time.sleep(0.02)

    def kill(self) -> None:
        """SIGKILL to the whole process group: a crash, no clean shutdown."""
        os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait()
        self.process = None

    def stop(self) -> None:
        if self.process is not None:
            self.kill()
        self._dir.cleanup()
