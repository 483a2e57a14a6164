"""The shipped systemd files: `systemd-analyze verify` clean, `security --offline` exposure ≤ 2.0,
sysusers/tmpfiles snippets that apply, and a service config that takes its key from the
credential.

`verify` checks that every Exec*= binary exists and loads the units a service depends on
(sysinit.target …). The binaries are installed later (`pip install` into /opt/dcmwatch), so each
unit is verified inside a throw-away `--root`: a copy of the host's unit folder, the unit, and an
executable stub at the path of every command it names. Everything else is checked for real.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
from pathlib import Path

import pytest

from dcmwatch import config as config_mod
from dcmwatch import keys
from dcmwatch.errors import ConfigError

ROOT = Path(__file__).parents[1]
SYSTEMD = ROOT / "systemd"
UNIT_SUFFIXES = {".service", ".socket", ".timer", ".path", ".target", ".mount", ".slice"}
UNITS = sorted(p for p in SYSTEMD.rglob("*") if p.suffix in UNIT_SUFFIXES)
MAX_EXPOSURE = 2.0

ANALYZE = shutil.which("systemd-analyze")
needs_analyze = pytest.mark.skipif(ANALYZE is None, reason="systemd-analyze is not installed")

_EXEC = re.compile(r"^\s*Exec\w*\s*=\s*(.+)$", re.MULTILINE)
_EXPOSURE = re.compile(r"Overall exposure level for \S+: (\d+(?:\.\d+)?)")


def test_units_are_shipped() -> None:
    """The glob finds the units (so an empty folder cannot pass every check below)."""
    names = {p.name for p in UNITS}
    assert {"dcmwatch.service", "dcmwatch@.service"} <= names


def _commands(unit_text: str) -> list[str]:
    """The executables named by Exec*= lines, without systemd's prefixes (-@:+!|)."""
    out = []
    for value in _EXEC.findall(unit_text):
        first = shlex.split(value)[0].lstrip("-@:+!|")
        if first:
            out.append(first)
    return out


def _stub(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("#!/bin/sh\nexit 0\n")
    path.chmod(0o755)


def _verify_root(tmp: Path, unit: Path) -> Path:
    """A root with the host's units, this unit, and stubs for the commands it runs."""
    host_units = next(p for p in (Path("/usr/lib/systemd/system"), Path("/lib/systemd/system"))
                      if p.is_dir())
    shutil.copytree(host_units, tmp / "usr/lib/systemd/system", symlinks=True)
    for cmd in _commands(unit.read_text()):
        _stub(tmp / cmd.lstrip("/") if cmd.startswith("/") else tmp / "usr/bin" / cmd)
    dest = tmp / "etc/systemd/system" / unit.name
    dest.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy(unit, dest)
    return dest


def _verify(tmp: Path, unit: Path) -> subprocess.CompletedProcess[str]:
    assert ANALYZE is not None
    dest = _verify_root(tmp, unit)
    return subprocess.run(
        [ANALYZE, "verify", f"--root={tmp}", "--man=no", "--generators=no", str(dest)],
        capture_output=True, text=True, check=False, timeout=60,
    )


def _exposure(unit: Path) -> tuple[float, str]:
    assert ANALYZE is not None
    res = subprocess.run([ANALYZE, "security", "--offline=true", str(unit)],
                         capture_output=True, text=True, check=False, timeout=60)
    text = res.stdout + res.stderr
    m = _EXPOSURE.search(text)
    assert m is not None, text
    return float(m.group(1)), text


@needs_analyze
@pytest.mark.parametrize("unit", UNITS, ids=lambda p: p.name)
class TestAnalyze:
    def test_verify_is_clean(self, unit: Path, tmp_path: Path) -> None:
        """No error and no warning: verify exits 0 even on unknown keys, so any output fails."""
        res = _verify(tmp_path, unit)
        assert res.returncode == 0, res.stdout + res.stderr
        assert (res.stdout + res.stderr).strip() == ""

    def test_security_exposure_at_most_2(self, unit: Path) -> None:
        """`systemd-analyze security --offline=true` rates the sandbox at most 2.0 of 10."""
        score, text = _exposure(unit)
        assert score <= MAX_EXPOSURE, text


@needs_analyze
class TestTheChecksCanFail:
    def test_verify_reports_a_typo(self, tmp_path: Path) -> None:
        """A misspelt key is reported, so a clean verify above means something."""
        broken = tmp_path / "src" / "dcmwatch.service"
        broken.parent.mkdir()
        broken.write_text((SYSTEMD / "dcmwatch.service").read_text()
                          .replace("ProtectClock=", "ProtectClok="))
        res = _verify(tmp_path / "root", broken)
        assert "ProtectClok" in res.stdout + res.stderr

    def test_exposure_rises_without_the_sandbox(self, tmp_path: Path) -> None:
        """Without its sandbox lines the same unit scores far worse than 2.0."""
        keep = ("[", "Type=", "ExecStart=", "User=", "Group=", "Description=")
        lines = [x for x in (SYSTEMD / "dcmwatch.service").read_text().splitlines()
                 if x.startswith(keep)]
        bare = tmp_path / "dcmwatch.service"
        bare.write_text("\n".join(lines) + "\n")
        score, _ = _exposure(bare)
        assert score > 5.0


OWN_USER = SYSTEMD / "dcmwatch@.service.d" / "own-user.conf"


def _instance_root(tmp: Path, dropin_text: str) -> Path:
    """A verify root with the template, the drop-in for instance ct-a, and the unit's stubs."""
    template = _verify_root(tmp, SYSTEMD / "dcmwatch@.service")
    dropin = template.parent / "dcmwatch@ct-a.service.d" / "own-user.conf"
    dropin.parent.mkdir()
    dropin.write_text(dropin_text)
    return template.parent / "dcmwatch@ct-a.service"


@needs_analyze
class TestOwnUserDropIn:
    """docs/operations.md "One user per instance": the shipped drop-in gives dcmwatch@NAME the user
    dcmwatch-NAME and passes the same checks as the units."""

    def test_sets_a_user_per_instance(self) -> None:
        d = _directives(OWN_USER)
        assert d == {"User": ["dcmwatch-%i"], "Group": ["dcmwatch-%i"]}
        assert _directives(SYSTEMD / "dcmwatch@.service")["StateDirectory"] == ["dcmwatch/%i"]

    def test_verify_is_clean_with_it(self, tmp_path: Path) -> None:
        instance = _instance_root(tmp_path, OWN_USER.read_text())
        res = subprocess.run(
            [ANALYZE or "", "verify", f"--root={tmp_path}", "--man=no", "--generators=no",
             str(instance)], capture_output=True, text=True, check=False, timeout=60)
        assert res.returncode == 0, res.stdout + res.stderr
        assert (res.stdout + res.stderr).strip() == ""

    def test_verify_reads_the_drop_in(self, tmp_path: Path) -> None:
        """So a clean verify above checked it: a misspelt key in it is reported."""
        instance = _instance_root(tmp_path, OWN_USER.read_text().replace("User=", "Usr="))
        res = subprocess.run(
            [ANALYZE or "", "verify", f"--root={tmp_path}", "--man=no", "--generators=no",
             str(instance)], capture_output=True, text=True, check=False, timeout=60)
        assert "Usr" in res.stdout + res.stderr

    def test_exposure_stays_at_most_2(self, tmp_path: Path) -> None:
        _instance_root(tmp_path, OWN_USER.read_text())
        res = subprocess.run([ANALYZE or "", "security", "--offline=true", f"--root={tmp_path}",
                              "dcmwatch@ct-a.service"],
                             capture_output=True, text=True, check=False, timeout=60)
        m = _EXPOSURE.search(res.stdout + res.stderr)
        assert m is not None, res.stdout + res.stderr
        assert float(m.group(1)) <= MAX_EXPOSURE
        assert "Usr" not in res.stderr


def _directives(unit: Path) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for line in unit.read_text().splitlines():
        if "=" in line and not line.startswith(("#", "[")):
            key, value = line.split("=", 1)
            out.setdefault(key.strip(), []).append(value.strip())
    return out


class TestServiceContract:
    def test_main_unit_matches_the_daemon(self) -> None:
        """What the daemon implements is what the unit asks for."""
        d = _directives(SYSTEMD / "dcmwatch.service")
        assert d["Type"] == ["notify"]
        assert d["NotifyAccess"] == ["main"]
        assert d["ExecReload"] == ["kill -HUP $MAINPID"]
        assert d["KillMode"] == ["mixed"]  # SIGTERM to the daemon, which drains its workers
        assert d["RestartPreventExitStatus"] == ["2"]  # configuration errors
        stop = float(d["TimeoutStopSec"][0].rstrip("s"))
        assert stop > 60.0  # the daemon's drain deadline
        assert d["LoadCredential"] == [f"{keys.CREDENTIAL_NAME}:/etc/dcmwatch/dcmwatch.key"]

    def test_example_config_fits_the_unit(self) -> None:
        """config/systemd.toml writes only where the unit lets it: ReadWritePaths= and the
        StateDirectory=."""
        cfg = config_mod.load(ROOT / "config" / "systemd.toml")
        d = _directives(SYSTEMD / "dcmwatch.service")
        writable = d["ReadWritePaths"][0].split()
        p = cfg.paths
        assert sorted(map(str, (p.inbox, p.outbox, p.quarantine))) == sorted(writable)
        assert str(p.state) == f"/var/lib/{d['StateDirectory'][0]}"
        assert cfg.log.format == "json"

    def test_template_instance_config_fits_the_template(self, tmp_path: Path) -> None:
        """The recipe of docs/operations.md for an instance config (the sed) gives folders the template
        lets instance NAME write, and the template's own key and config per instance."""
        text = (ROOT / "config" / "systemd.toml").read_text()
        text = text.replace("/srv/dcmwatch/", "/srv/dcmwatch/ct-a/").replace(
            '"/var/lib/dcmwatch"', '"/var/lib/dcmwatch/ct-a"')
        (tmp_path / "ct-a.toml").write_text(text)
        cfg = config_mod.load(tmp_path / "ct-a.toml")
        d = {k: [v.replace("%i", "ct-a") for v in vs]
             for k, vs in _directives(SYSTEMD / "dcmwatch@.service").items()}
        p = cfg.paths
        assert sorted(map(str, (p.inbox, p.outbox, p.quarantine))) == sorted(
            d["ReadWritePaths"][0].split())
        assert str(p.state) == f"/var/lib/{d['StateDirectory'][0]}"
        assert d["LoadCredential"] == [f"{keys.CREDENTIAL_NAME}:/etc/dcmwatch/ct-a.key"]
        assert d["ExecStart"][0].endswith("--config /etc/dcmwatch/ct-a.toml")

    def test_example_config_takes_the_key_from_the_credential(self, tmp_path: Path) -> None:
        """With $CREDENTIALS_DIRECTORY the key is the credential; without it, no key at all
        (never a generated or random one)."""
        cfg = config_mod.load(ROOT / "config" / "systemd.toml")
        (tmp_path / keys.CREDENTIAL_NAME).write_text("00" * 16 + "ab" * 16 + "\n")
        key = keys.resolve(cfg.deid, {"CREDENTIALS_DIRECTORY": str(tmp_path)}, create=True)
        assert key.origin == "systemd-credential"
        assert key.key == bytes.fromhex("00" * 16 + "ab" * 16)
        with pytest.raises(ConfigError):
            keys.resolve(cfg.deid, {}, create=True)


@pytest.mark.skipif(shutil.which("systemd-sysusers") is None, reason="no systemd-sysusers")
def test_sysusers_creates_the_user_and_groups(tmp_path: Path) -> None:
    """The sysusers snippet applies and makes dcmwatch a member of dcmwatch-inbox."""
    (tmp_path / "etc").mkdir()
    subprocess.run(["systemd-sysusers", f"--root={tmp_path}",
                    str(SYSTEMD / "sysusers.d" / "dcmwatch.conf")],
                   check=True, capture_output=True, timeout=60)
    passwd = (tmp_path / "etc/passwd").read_text()
    group = (tmp_path / "etc/group").read_text()
    assert re.search(r"^dcmwatch:x:\d+:\d+:.*:/var/lib/dcmwatch:.*nologin$", passwd, re.M)
    assert re.search(r"^dcmwatch-inbox:x:\d+:dcmwatch$", group, re.M)
    assert re.search(r"^dcmwatch-outbox:x:\d+:$", group, re.M)


@pytest.mark.skipif(shutil.which("systemd-tmpfiles") is None or shutil.which("systemd-sysusers")
                    is None, reason="no systemd-tmpfiles/systemd-sysusers")
@pytest.mark.skipif(os.geteuid() != 0, reason="tmpfiles sets owners: needs root")
def test_tmpfiles_creates_the_folders(tmp_path: Path) -> None:
    """The tmpfiles snippet creates the folders the unit's ReadWritePaths= name, with their
    modes: the inbox setgid for senders, the quarantine (PHI) for the service user only."""
    (tmp_path / "etc").mkdir()
    subprocess.run(["systemd-sysusers", f"--root={tmp_path}",
                    str(SYSTEMD / "sysusers.d" / "dcmwatch.conf")],
                   check=True, capture_output=True, timeout=60)
    subprocess.run(["systemd-tmpfiles", f"--root={tmp_path}", "--create",
                    str(SYSTEMD / "tmpfiles.d" / "dcmwatch.conf")],
                   check=True, capture_output=True, timeout=60)
    srv = tmp_path / "srv/dcmwatch"
    modes = {p.name: p.stat().st_mode & 0o7777 for p in srv.iterdir()}
    assert modes == {"inbox": 0o2770, "outbox": 0o2750, "quarantine": 0o700}
    d = _directives(SYSTEMD / "dcmwatch.service")
    for path in d["ReadWritePaths"][0].split():
        assert (tmp_path / path.lstrip("/")).is_dir()


@pytest.mark.skipif(shutil.which("systemd-sysusers") is None, reason="no systemd-sysusers")
def test_storescp_user_joins_the_inbox_group(tmp_path: Path) -> None:
    """docs/operations.md's storescp recipe: applied after dcmwatch.conf, the receiver's user
    exists and is a member of dcmwatch-inbox, so it can write into the setgid inbox."""
    (tmp_path / "etc").mkdir()
    for name in ("dcmwatch.conf", "dcmwatch-storescp.conf"):
        subprocess.run(["systemd-sysusers", f"--root={tmp_path}",
                        str(SYSTEMD / "sysusers.d" / name)],
                       check=True, capture_output=True, timeout=60)
    passwd = (tmp_path / "etc/passwd").read_text()
    group = (tmp_path / "etc/group").read_text()
    assert re.search(r"^dcmwatch-storescp:x:\d+:\d+:", passwd, re.M)
    members = re.search(r"^dcmwatch-inbox:x:\d+:(.*)$", group, re.M)
    assert members is not None
    assert set(members.group(1).split(",")) == {"dcmwatch", "dcmwatch-storescp"}
    unit = (SYSTEMD / "dcmwatch-storescp.service").read_text()
    assert "User=dcmwatch-storescp" in unit and "Group=dcmwatch-inbox" in unit
    assert "UMask=0027" in unit
