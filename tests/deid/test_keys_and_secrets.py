"""Where the key comes from, that it is required, and that it never shows in output or errors."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from dcmwatch import config, keys, pipeline
from dcmwatch.deid import DeidSettings, make_deidentifier
from dcmwatch.deid.pseudonyms import Keyed
from dcmwatch.errors import ConfigError, DcmwatchError, KeyTooShortError
from dcmwatch.testing import ct_series_bytes

SECRET_HEX = "c0ffee00" * 8  # 32 bytes
SECRET = bytes.fromhex(SECRET_HEX)
SHORT_TEXT = "tooshortsecret"  # 14 bytes: refused, and must not be quoted


def _file(path: Path, text: str, mode: int = 0o600) -> Path:
    path.write_text(text + "\n")
    path.chmod(mode)
    return path


class TestSources:
    def test_systemd_credential_comes_first(self, tmp_path: Path) -> None:
        creds = tmp_path / "creds"
        creds.mkdir()
        _file(creds / "dcmwatch.key", SECRET_HEX, 0o644)  # systemd owns its mode
        other = _file(tmp_path / "k", "ab" * 32)
        got = keys.resolve(DeidSettings(key_file=str(other)),
                           {"CREDENTIALS_DIRECTORY": str(creds)}, create=False)  # fmt: skip
        assert (got.key, got.origin) == (SECRET, "systemd-credential")

    def test_key_file_then_environment(self, tmp_path: Path) -> None:
        key_file = _file(tmp_path / "k", SECRET_HEX)
        env = {"DCMWATCH_KEY": "ab" * 32}
        assert keys.resolve(DeidSettings(key_file=str(key_file)), env, create=False).key == SECRET
        got = keys.resolve(DeidSettings(key_file=str(tmp_path / "absent")), env, create=False)
        assert (got.key, got.origin) == (bytes.fromhex("ab" * 32), "env")

    def test_refuses_to_start_without_a_key_unless_random_is_asked_for(self) -> None:
        with pytest.raises(ConfigError, match="no de-identification key"):
            keys.resolve(DeidSettings(key_env=None), {}, create=False)
        a = keys.resolve(DeidSettings(key_env=None, random_key=True), {}, create=False)
        b = keys.resolve(DeidSettings(key_env=None, random_key=True), {}, create=False)
        assert a.origin == "random (per run)" and len(a.key) == 32 and a.key != b.key

    def test_generated_key_file_is_private_and_stable(self, tmp_path: Path) -> None:
        settings = DeidSettings(key_file=str(tmp_path / "state" / "k"), generate_key=True)
        first = keys.resolve(settings, {}, create=True)
        assert stat.S_IMODE((tmp_path / "state" / "k").stat().st_mode) == 0o600
        assert keys.resolve(settings, {}, create=True).key == first.key


class TestKeyLength:
    """One check, one exception, wherever a key is read or used: 15 bytes refused, 16 taken."""

    SHORT = b"key-of-15-bytes"  # neither hex nor base64: the environment's text is the key
    LONG_ENOUGH = b"key-of-16-bytes!"

    def _uses(self, key: bytes, tmp_path: Path) -> list[object]:
        settings = DeidSettings()
        cfg = config.load(None, cwd=tmp_path).with_secret(key)
        return [
            lambda: keys.resolve(settings, {"DCMWATCH_KEY": key.decode()}, create=False),
            lambda: Keyed(key),
            lambda: make_deidentifier(settings, key),
            lambda: pipeline.process_bytes(ct_series_bytes(1, rows=8, columns=8)[0], cfg),
        ]

    def test_a_short_key_is_refused_the_same_way_everywhere(self, tmp_path: Path) -> None:
        for use in self._uses(self.SHORT, tmp_path):
            with pytest.raises(KeyTooShortError) as err:
                use()  # type: ignore[operator]
            assert isinstance(err.value, ConfigError)
            assert err.value.reason == "key_too_short"
            assert "shorter than 16 bytes" in str(err.value)
            assert self.SHORT.decode() not in str(err.value)

    def test_the_shortest_allowed_key_is_taken_everywhere(self, tmp_path: Path) -> None:
        for use in self._uses(self.LONG_ENOUGH, tmp_path):
            use()  # type: ignore[operator]


class TestNoSecretInErrors:
    def test_short_key_errors_name_the_source_not_the_value(self, tmp_path: Path) -> None:
        key_file = _file(tmp_path / "k", SHORT_TEXT)
        for settings, env in ((DeidSettings(key_file=str(key_file)), {}),
                              (DeidSettings(), {"DCMWATCH_KEY": SHORT_TEXT})):  # fmt: skip
            with pytest.raises(ConfigError) as err:
                keys.resolve(settings, env, create=False)
            assert SHORT_TEXT not in str(err.value) and SHORT_TEXT not in repr(err.value)

    def test_readable_key_file_error_does_not_quote_it(self, tmp_path: Path) -> None:
        key_file = _file(tmp_path / "k", SECRET_HEX, 0o644)
        with pytest.raises(ConfigError) as err:
            keys.resolve(DeidSettings(key_file=str(key_file)), {}, create=False)
        assert SECRET_HEX not in str(err.value)

    def test_config_and_deidentifier_never_show_the_key(self, tmp_path: Path) -> None:
        cfg = config.load(None, cwd=tmp_path).with_secret(SECRET)
        deid = make_deidentifier(DeidSettings(), SECRET)
        for text in (repr(cfg), str(cfg), repr(deid), str(config.effective(cfg))):
            assert SECRET_HEX not in text and repr(SECRET) not in text and SECRET_HEX[:16] not in text

    def test_processing_errors_never_show_the_key(self, tmp_path: Path) -> None:
        """A file that fails de-identification: the message names the problem, not the key."""
        cfg = config.load(None, cwd=tmp_path).with_secret(SECRET)
        blob = ct_series_bytes(1, rows=16, columns=16)[0]
        broken = blob.replace(b"\x08\x00\x18\x00UI", b"\x08\x00\x18\x00SQ", 1)  # SOP UID as SQ
        with pytest.raises(DcmwatchError) as err:
            pipeline.process_bytes(broken, cfg)
        assert SECRET_HEX not in str(err.value) and repr(SECRET) not in str(err.value)
