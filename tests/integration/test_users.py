"""The service layout of docs/operations.md with real users: a sender user copies files into the setgid 2770
inbox, the daemon runs as its own service user without capabilities. The service may rename and
unlink the sender's files (the folders are its own) but not chmod or chown them, and every path a
file takes (processed, quarantined, requeued, archived) must work all the same."""

from __future__ import annotations

import json
import os
import pwd
import secrets
import shlex
import shutil
import stat
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from dcmwatch.testing import write_series
from tests.conftest import KEY_HEX, DaemonProcess, outputs

pytestmark = pytest.mark.integration

TINY = {"rows": 16, "columns": 16}
JUNK = b"not a DICOM file at all, just what a sender sent by mistake\n" * 4


def _can_make_users() -> bool:
    tools = ("useradd", "userdel", "groupadd", "groupdel", "setpriv", "unshare", "getent")
    if os.geteuid() != 0 or not all(shutil.which(t) for t in tools):
        return False
    probe = ["unshare", "--mount", "--propagation", "private", "true"]
    return subprocess.run(probe, capture_output=True, check=False).returncode == 0


needs_users = pytest.mark.skipif(
    not _can_make_users(),
    reason="needs root with useradd/groupadd, setpriv and a mount namespace (unshare) to make a "
           "sender and a service user (file ownership is the fault under test; one user cannot "
           "show it)",
)


@dataclass(frozen=True)
class Users:
    group: str
    sender: str
    service: str


@pytest.fixture
def users() -> Iterator[Users]:
    tag = secrets.token_hex(3)
    u = Users(group=f"dcmwt-in{tag}", sender=f"dcmwt-s{tag}", service=f"dcmwt-v{tag}")
    made: list[str] = []
    try:
        subprocess.run(["groupadd", "--system", u.group], check=True)
        for name in (u.sender, u.service):
            subprocess.run(["useradd", "--system", "--user-group", "--no-create-home",
                            "--shell", "/usr/sbin/nologin", "--groups", u.group, name],
                           check=True)
            made.append(name)
        yield u
    finally:
        for name in made:
            subprocess.run(["userdel", "--force", name], check=False, capture_output=True)
        subprocess.run(["groupdel", u.group], check=False, capture_output=True)


def _as_user(user: str, argv: list[str], scratch: Path) -> list[str]:
    """`argv` as `user` with its groups and no capabilities at all, as the unit runs it.

    The interpreter may live below a folder only root can enter (a pyenv under /root): then the
    command runs in a private mount namespace where that folder is an open tmpfs with the
    interpreter's tree bound back in, so the unprivileged user can run it and nothing else of
    that folder."""
    drop = ["setpriv", "--reuid", user, "--regid", user, "--init-groups",
            "--inh-caps=-all", "--bounding-set=-all", "--", *argv]
    closed = _closed_ancestor(Path(os.path.realpath(sys.executable)))
    if closed is None:
        return drop
    folder, child = closed
    stash = tempfile.mkdtemp(prefix=".stash-", dir=scratch)
    script = (
        f"mount --bind {shlex.quote(str(folder / child))} {shlex.quote(stash)} && "
        f"mount -t tmpfs -o mode=0755 tmpfs {shlex.quote(str(folder))} && "
        f"mkdir {shlex.quote(str(folder / child))} && "
        f"mount --bind {shlex.quote(stash)} {shlex.quote(str(folder / child))} && "
        f"exec {shlex.join(drop)}"
    )
    return ["unshare", "--mount", "--propagation", "private", "sh", "-c", script]


def _closed_ancestor(path: Path) -> tuple[Path, str] | None:
    """The first folder on `path` that others may not enter, and its child on the way."""
    for folder in reversed(path.parents):
        if folder != Path("/") and not folder.stat().st_mode & stat.S_IXOTH:
            return folder, path.relative_to(folder).parts[0]
    return None


class ServiceDaemon(DaemonProcess):
    """The daemon as the service user (the log file is opened here, by root, as journald would
    hold stdout)."""

    def __init__(self, config: Path, root: Path, service: str) -> None:
        super().__init__(config, root)
        self.service = service

    def start(self, wait_ready: bool = True) -> DaemonProcess:
        before = self.mark()
        self._log_fh = self.log_path.open("ab")
        env = {k: v for k, v in os.environ.items()
               if not k.startswith("DCMWATCH") and k not in ("NOTIFY_SOCKET", "WATCHDOG_USEC")}
        self.proc = subprocess.Popen(
            _as_user(self.service, [sys.executable, "-m", "dcmwatch", "run",
                                    "--config", str(self.config)], self.root),
            stdout=self._log_fh, stderr=self._log_fh, cwd=self.root, env=env,
        )
        if wait_ready:
            self.wait_event("daemon.started", timeout=60, after=before)
            self.wait_event("inbox.rescan", timeout=60, after=before)
        return self


def _layout(users: Users, extra: str = "") -> Path:
    """The folders of docs/operations.md: inbox service:inbox-group 2770, outbox 2750, quarantine 0700,
    state 0750, key 0600, all the service's."""
    root = Path(tempfile.mkdtemp(prefix="dcmwt-"))
    root.chmod(0o755)
    svc = pwd.getpwnam(users.service)
    inbox_gid = int(subprocess.run(["getent", "group", users.group], check=True,
                                   capture_output=True, text=True).stdout.split(":")[2])
    for name, mode, gid in (("inbox", 0o2770, inbox_gid), ("outbox", 0o2750, svc.pw_gid),
                            ("quarantine", 0o700, svc.pw_gid), ("state", 0o750, svc.pw_gid)):
        folder = root / name
        folder.mkdir()
        os.chown(folder, svc.pw_uid, gid)
        folder.chmod(mode)
    key = root / "secret.key"
    key.write_text(KEY_HEX + "\n")
    os.chown(key, svc.pw_uid, svc.pw_gid)
    key.chmod(0o600)
    cfg = root / "dcmwatch.toml"
    cfg.write_text(f"""
[paths]
inbox = "inbox"
outbox = "outbox"
quarantine = "quarantine"
state = "state"

[watch]
settle_seconds = 1.0

[workers]
count = 1

[log]
format = "json"
level = "debug"

[schedule]
rescan_seconds = 2
heartbeat_seconds = 1

[deid]
key_file = "secret.key"
{extra}
""")
    cfg.chmod(0o644)
    src = root / "src"
    write_series(src, 1, **TINY)
    (src / "junk.dcm").write_bytes(JUNK)
    src.chmod(0o755)
    for f in src.iterdir():
        f.chmod(0o644)
    return root


def _send(users: Users, src: Path, dest: Path) -> None:
    """The sender copies a file in with the umask docs/operations.md asks of senders (027)."""
    cmd = f"umask 027 && cp {shlex.quote(str(src))} {shlex.quote(str(dest))}"
    subprocess.run(["setpriv", "--reuid", users.sender, "--regid", users.sender,
                    "--init-groups", "--inh-caps=-all", "--bounding-set=-all", "sh", "-c", cmd],
                   check=True)


def _cli(users: Users, cfg: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DCMWATCH")}
    argv = _as_user(users.service, [sys.executable, "-m", "dcmwatch", *args,
                                    "--config", str(cfg)], cfg.parent)
    return subprocess.run(argv, capture_output=True, text=True, timeout=120, check=False,
                          env=env, cwd=cfg.parent)


def _valid(root: Path) -> Path:
    return next(p for p in sorted((root / "src").iterdir()) if p.name != "junk.dcm")


def _owned_by_service(path: Path, users: Users, mode: int = 0o640) -> None:
    st = path.stat()
    assert st.st_uid == pwd.getpwnam(users.service).pw_uid, path.name
    assert stat.S_IMODE(st.st_mode) == mode, (path.name, oct(st.st_mode))


@needs_users
def test_a_senders_files_are_processed_quarantined_and_requeued(users: Users) -> None:
    """Valid file → outbox; junk → quarantine with its sidecar and reason, as a file the service
    owns with its mode; nothing stays in the work area; `status` counts it; `requeue` (as the
    service) puts it back and it is quarantined again. No `file.retry` on the way."""
    root = _layout(users)
    d = ServiceDaemon(root / "dcmwatch.toml", root, users.service)
    try:
        d.start()
        _send(users, _valid(root), d.inbox / "scan.dcm")
        _send(users, root / "src" / "junk.dcm", d.inbox / "junk.dcm")
        d.wait_event("file.processed", timeout=60)
        quarantined = d.wait_event("file.quarantined", timeout=60)
        assert quarantined[0]["reason"] == "not_dicom"
        assert len(outputs(d.outbox)) == 1
        cid = quarantined[0]["claim_id"]
        original = d.quarantine / f"{cid}.dcm"
        assert original.read_bytes() == JUNK
        _owned_by_service(original, users)
        sidecar = json.loads((d.quarantine / f"{cid}.json").read_text())
        assert sidecar["reason"] == "not_dicom"
        assert sorted(p.name for p in d.quarantine.iterdir()) == [f"{cid}.dcm", f"{cid}.json"]
        assert list((d.state / "work").iterdir()) == []
        d.wait_event("heartbeat", count=2, timeout=30, where=lambda e: e["quarantined"] >= 1)

        st = _cli(users, d.config, "status", "--json")
        assert st.returncode == 0, st.stderr
        data = json.loads(st.stdout)
        assert data["queue"] == {"inbox": 0, "claimed": 0, "quarantine": 1}
        assert data["quarantine_reasons"]["last_day"] == {"not_dicom": 1}
        assert data["outcomes"]["last_day"].get("processed") == 1

        before = d.mark()
        rq = _cli(users, d.config, "requeue")
        assert rq.returncode == 0, rq.stderr
        assert '"file.requeued"' in rq.stdout
        again = d.wait_event("file.quarantined", timeout=60, after=before)
        assert again[0]["reason"] == "not_dicom"
        assert list((d.state / "work").iterdir()) == []
        assert len(list(d.quarantine.glob("*.dcm"))) == 1
        assert d.stop() == 0
        assert not [e for e in d.events() if e.get("event") == "file.retry"], d.log_text()[-3000:]
    finally:
        d.kill()
        shutil.rmtree(root, ignore_errors=True)


@needs_users
def test_a_senders_file_is_archived_as_the_services_own(users: Users) -> None:
    """`on_success = "archive"`: the original is kept under state/archive, with its content,
    owned by the service with the configured mode (the sender's file cannot be chmodded)."""
    root = _layout(users, '\n[output]\non_success = "archive"\n')
    d = ServiceDaemon(root / "dcmwatch.toml", root, users.service)
    try:
        d.start()
        _send(users, _valid(root), d.inbox / "scan.dcm")
        d.wait_event("file.processed", timeout=60)
        assert d.stop() == 0
        archived = list((d.state / "archive").rglob("*.dcm"))
        assert len(archived) == 1
        assert archived[0].read_bytes() == _valid(root).read_bytes()
        _owned_by_service(archived[0], users)
        assert list((d.state / "work").iterdir()) == []
        assert list(d.inbox.iterdir()) == []
        assert not [e for e in d.events() if e.get("event") == "file.retry"], d.log_text()[-3000:]
    finally:
        d.kill()
        shutil.rmtree(root, ignore_errors=True)
