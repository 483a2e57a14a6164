"""The command line: exit codes, check-config, process."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from dcmwatch import __version__, cli, preflight
from dcmwatch import config as config_mod
from dcmwatch.testing import write_series
from tests.conftest import write_config


class TestCli:
    def test_version(self, capsys: pytest.CaptureFixture[str]) -> None:
        """--version prints the version and exits 0."""
        assert cli.main(["--version"], env={}) == 0
        assert __version__ in capsys.readouterr().out

    def test_check_config_prints_effective_config(
        self, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """check-config validates and prints the effective configuration, never the key."""
        cfg = write_config(tmp_path)
        assert cli.main(["check-config", "--config", str(cfg)], env={}) == 0
        out = capsys.readouterr().out
        data = json.loads(out)
        assert data["paths"]["inbox"] == str(tmp_path / "inbox")
        assert "00112233" not in out

    def test_config_error_exits_2(self, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
        """A bad config exits 2 with a message naming the file and key."""
        bad = tmp_path / "bad.toml"
        bad.write_text("[workers]\ncount = -1\n")
        assert cli.main(["run", "--config", str(bad)], env={}) == 2
        assert "bad.toml: workers.count" in capsys.readouterr().err

    def test_env_var_selects_config(self, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
        """DCMWATCH_CONFIG is used when --config is absent."""
        cfg = write_config(tmp_path)
        assert cli.main(["check-config"], env={"DCMWATCH_CONFIG": str(cfg)}) == 0
        assert str(cfg) in capsys.readouterr().out

    def test_missing_key_is_a_config_error(self, tmp_path: Path,
                                           capsys: pytest.CaptureFixture[str]) -> None:
        """Without any key source the daemon refuses to start."""
        cfg = tmp_path / "c.toml"
        cfg.write_text("[deid]\nkey_env = 'NOPE_NOT_SET'\n")
        assert cli.main(["process", "--config", str(cfg), str(tmp_path)], env={}) == 2
        assert "no de-identification key" in capsys.readouterr().err

    def test_group_readable_key_refused(self, tmp_path: Path,
                                        capsys: pytest.CaptureFixture[str]) -> None:
        """A key file others can read is refused."""
        cfg = write_config(tmp_path)
        (tmp_path / "secret.key").chmod(0o644)
        assert cli.main(["process", "--config", str(cfg), str(tmp_path / "x")], env={}) == 2
        assert "chmod 600" in capsys.readouterr().err

    def test_process_exit_codes(self, tmp_path: Path) -> None:
        """process exits 0 when every file came out, 1 when any was quarantined."""
        cfg = write_config(tmp_path)
        src = tmp_path / "src"
        write_series(src, 2, rows=16, columns=16)
        assert cli.main(["process", "--config", str(cfg), str(src)], env={}) == 0
        (src / "junk.dcm").write_bytes(b"junk" * 100)
        assert cli.main(["process", "--config", str(cfg), str(src)], env={}) == 1
        assert cli.main(["process", "--config", str(cfg), str(tmp_path / "missing")], env={}) == 2


class TestRunFailure:
    def test_unwritable_folder_exits_3_with_an_event(
        self, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """A folder that cannot be created is a `daemon.failed` event and exit 3, no traceback."""
        blocker = tmp_path / "file"
        blocker.write_text("not a folder")
        cfg = write_config(tmp_path)
        cfg.write_text(cfg.read_text().replace('inbox = "inbox"', 'inbox = "file/inbox"'))
        assert cli.main(["run", "--config", str(cfg)], env={}) == 3
        out = capsys.readouterr().out
        assert '"event": "daemon.failed"' in out and "Traceback" not in out


class TestCheckConfigAgreesWithRun:
    """`check-config` checks what `run` checks before it starts: a configuration it passes
    starts, one it refuses is refused by `run` with the same exit code."""

    @staticmethod
    def _log_folder_missing(root: Path, cfg: Path) -> str:
        cfg.write_text(cfg.read_text().replace("[log]\n", '[log]\nfile = "logs/dcmwatch.log"\n'))
        return "log.file: cannot be created: its folder does not exist"

    @staticmethod
    def _log_file_is_a_folder(root: Path, cfg: Path) -> str:
        (root / "logs").mkdir()
        cfg.write_text(cfg.read_text().replace("[log]\n", '[log]\nfile = "logs"\n'))
        return "log.file: exists and is not a regular file"

    @staticmethod
    def _inbox_under_a_file(root: Path, cfg: Path) -> str:
        (root / "file").write_text("not a folder")
        cfg.write_text(cfg.read_text().replace('inbox = "inbox"', 'inbox = "file/inbox"'))
        return "paths.inbox: cannot be created: its parent is not a folder"

    @staticmethod
    def _archive_is_a_file(root: Path, cfg: Path) -> str:
        (root / "state").mkdir()
        (root / "state" / "archive").write_text("not a folder")
        cfg.write_text(cfg.read_text() + '\n[output]\non_success = "archive"\n')
        return "paths.archive: exists and is not a folder"

    @pytest.mark.parametrize("breakage", ["_log_folder_missing", "_log_file_is_a_folder",
                                          "_inbox_under_a_file", "_archive_is_a_file"])
    def test_check_config_refuses_what_run_refuses(
        self, tmp_path: Path, capsys: pytest.CaptureFixture[str], breakage: str
    ) -> None:
        """Each breakage: check-config exits non-zero naming the key, and `run` exits the same."""
        cfg = write_config(tmp_path)
        expected = getattr(self, breakage)(tmp_path, cfg)
        checked = cli.main(["check-config", "--config", str(cfg)], env={})
        err = capsys.readouterr().err
        assert checked != 0, err
        assert expected in err
        assert "configuration is valid" not in err
        ran = cli.main(["run", "--config", str(cfg)], env={})
        assert ran == checked
        assert not (tmp_path / "inbox").exists() or breakage == "_archive_is_a_file"

    def test_a_valid_configuration_creates_nothing_when_checked(self, tmp_path: Path) -> None:
        """check-config only looks: the folders `run` would create are not there after it."""
        cfg = write_config(tmp_path)
        assert cli.main(["check-config", "--config", str(cfg)], env={}) == 0
        assert sorted(p.name for p in tmp_path.iterdir()) == ["dcmwatch.toml", "secret.key"]


def test_check_config_prints_modes_in_octal(tmp_path: Path,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    """file_mode reads as written (0o640), not as the decimal 416."""
    cfg = write_config(tmp_path)
    cfg.write_text(cfg.read_text() + "\n[output]\nfile_mode = 0o640\n")
    assert cli.main(["check-config", "--config", str(cfg)], env={}) == 0
    assert json.loads(capsys.readouterr().out)["output"]["file_mode"] == "0o640"


def test_the_embedded_default_passes_check_config_and_run_starts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The quick start: no config, an empty folder. check-config passes, creating nothing; the
    key (generated at first run, in a folder made for it) is no reason to refuse."""
    monkeypatch.chdir(tmp_path)
    assert cli.main(["check-config"], env={}) == 0, capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []
    assert preflight.check(config_mod.load(None, cwd=tmp_path), {}).ok
