"""Configuration: validated once, errors that name the file and the key."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from dcmwatch import config as config_mod
from dcmwatch.errors import ConfigError


def _load(tmp_path: Path, text: str) -> config_mod.Config:
    f = tmp_path / "site.toml"
    f.write_text(text)
    return config_mod.load(f)


class TestLoad:
    def test_embedded_default_is_valid_and_relative_to_cwd(self, tmp_path: Path) -> None:
        """Without a file, the embedded default applies with folders under the current one."""
        cfg = config_mod.load(None, cwd=tmp_path)
        assert cfg.paths.inbox == tmp_path / "inbox"
        assert cfg.paths.state == tmp_path / "state"
        assert cfg.source == "<embedded default>"

    def test_relative_paths_resolve_against_the_config_folder(self, tmp_path: Path) -> None:
        """Relative folders are relative to the config file, not to wherever systemd starts us."""
        cfg = _load(tmp_path, '[paths]\ninbox = "in"\noutbox = "/abs/out"\n')
        assert cfg.paths.inbox == tmp_path / "in"
        assert cfg.paths.outbox == Path("/abs/out")

    def test_unknown_key_names_file_and_key(self, tmp_path: Path) -> None:
        """A typo is an error naming the file and the dotted key."""
        with pytest.raises(ConfigError) as err:
            _load(tmp_path, "[workers]\ncuont = 3\n")
        assert "site.toml" in str(err.value)
        assert "workers.cuont" in str(err.value)

    def test_bad_value_names_file_and_key(self, tmp_path: Path) -> None:
        """A bad value names its key."""
        with pytest.raises(ConfigError, match=r"site\.toml: workers\.count"):
            _load(tmp_path, "[workers]\ncount = 0\n")

    def test_invalid_toml(self, tmp_path: Path) -> None:
        """Broken TOML is reported with the file name."""
        with pytest.raises(ConfigError, match=r"site\.toml: not valid TOML"):
            _load(tmp_path, "[paths\n")

    def test_missing_file(self, tmp_path: Path) -> None:
        """A missing file is a config error, not a traceback."""
        with pytest.raises(ConfigError, match="cannot read"):
            config_mod.load(tmp_path / "nope.toml")

    def test_config_is_immutable(self, tmp_path: Path) -> None:
        """Nobody changes the configuration after load."""
        cfg = config_mod.load(None, cwd=tmp_path)
        with pytest.raises(Exception):  # noqa: B017 - pydantic's frozen error
            cfg.workers.count = 7  # type: ignore[misc]

    def test_example_config_is_valid(self) -> None:
        """The commented example in config/ documents keys that really exist."""
        example = Path(__file__).parents[1] / "config" / "dcmwatch.toml"
        cfg = config_mod.load(example)
        assert cfg.output.layout.endswith(".dcm")


class TestLayout:
    @pytest.mark.parametrize(
        ("layout", "message"),
        [
            ("{SOPInstanceUID}", "must end in '.dcm'"),
            ("../{SOPInstanceUID}.dcm", "inside the outbox"),
            ("/{SOPInstanceUID}.dcm", "inside the outbox"),
            ("{PatientName}/{SOPInstanceUID}.dcm", "unknown field"),
            ("{StudyInstanceUID}.dcm", "must contain {SOPInstanceUID}"),
        ],
    )
    def test_unsafe_layouts_are_refused(self, tmp_path: Path, layout: str, message: str) -> None:
        """Layouts that could leak PHI, escape the outbox or collide are refused at load."""
        with pytest.raises(ConfigError, match=r"output\.layout") as err:
            _load(tmp_path, f'[output]\nlayout = "{layout}"\n')
        assert message in str(err.value)


class TestFolders:
    @pytest.mark.parametrize(
        ("paths", "key"),
        [
            ('archive = "inbox"', "paths.archive"),  # retention would delete unprocessed inputs
            ('archive = "."', "paths.archive"),  # ... and the outbox, the journal, the work area
            ('archive = "outbox/originals"', "paths.archive"),  # originals to the outbox readers
            ('archive = "inbox/done"', "paths.archive"),  # archived files taken again
            ('archive = "state"', "paths.archive"),  # retention would delete the journal
            ('archive = "quarantine"', "paths.archive"),
            ('quarantine = "outbox/q"', "paths.quarantine"),
            ('quarantine = "inbox"', "paths.quarantine"),
        ],
    )
    def test_folders_holding_originals_stay_apart(self, tmp_path: Path, paths: str,
                                                  key: str) -> None:
        with pytest.raises(ConfigError, match=key.replace(".", r"\.")) as err:
            _load(tmp_path, f"[paths]\n{paths}\n")
        assert str(err.value).startswith(str(tmp_path / "site.toml"))

    def test_archive_inside_the_state_folder_or_elsewhere_is_fine(self, tmp_path: Path) -> None:
        assert _load(tmp_path, "").paths.archive == tmp_path / "state" / "archive"
        cfg = _load(tmp_path, '[paths]\narchive = "/srv/archive"\n')
        assert cfg.paths.archive == Path("/srv/archive")


class TestReloadScope:
    def test_sections_a_sighup_cannot_apply_are_named(self, tmp_path: Path) -> None:
        old = _load(tmp_path, "")
        assert config_mod.diff_requires_restart(old, _load(tmp_path, "")) == []
        changed = _load(tmp_path, '[log]\nlevel = "debug"\n[workers]\ncount = 3\n')
        # workers are replaced live; the log was configured once at start and is not
        assert config_mod.diff_requires_restart(old, changed) == ["log"]


class TestPixelLimit:
    def test_one_limit_in_limits_reaches_the_pixel_step(self, tmp_path: Path) -> None:
        cfg = _load(tmp_path, "[limits]\nmax_pixel_bytes = 4096\n")
        assert cfg.pixels.max_pixel_bytes == 4096

    def test_the_old_pixels_key_says_where_it_went(self, tmp_path: Path) -> None:
        with pytest.raises(ConfigError, match=r"pixels\.max_pixel_bytes: moved to limits"):
            _load(tmp_path, "[pixels]\nmax_pixel_bytes = 4096\n")


class TestLiveness:
    def test_stall_window_must_outlast_the_per_file_time_limit(self, tmp_path: Path) -> None:
        # file_seconds 60: the backstop ends a worker stuck in C code at 90 s
        for stall in (30, 60, 90):
            with pytest.raises(ConfigError, match=r"workers\.stall_seconds: must be longer"):
                _load(tmp_path, f"[workers]\nstall_seconds = {stall}\n"
                                "[limits]\nfile_seconds = 60\n")
        cfg = _load(tmp_path, "[workers]\nstall_seconds = 91\n[limits]\nfile_seconds = 60\n")
        assert cfg.workers.stall_seconds == 91


RULE = """
[[rules]]
name = "ct"
[rules.match]
Modality = "CT"
[[rules.actions]]
type = "hu_threshold"
{action}
"""


class TestStrictValues:
    @pytest.mark.parametrize(("text", "key"), [
        (RULE.format(action='below = "-500"'), "rules[0].actions[0].below"),
        ('[workers]\ncount = "2"\n', "workers.count"),
        ('[output]\nfile_mode = "416"\n', "output.file_mode"),
        ('[limits]\nfile_seconds = "60"\n', "limits.file_seconds"),
    ])
    def test_a_quoted_number_is_refused_naming_the_key(self, tmp_path: Path, text: str,
                                                       key: str) -> None:
        """A string where a number is expected is an error naming file and dotted key, not a
        number pydantic converted."""
        with pytest.raises(ConfigError, match=rf"site\.toml: {re.escape(key)}: expected a number"):
            _load(tmp_path, text)

    def test_a_quoted_boolean_is_refused(self, tmp_path: Path) -> None:
        """'true' in quotes is a string, not true."""
        with pytest.raises(ConfigError, match=r"site\.toml: metrics\.enabled: expected true or"):
            _load(tmp_path, '[metrics]\nenabled = "true"\n')

    def test_numbers_and_strings_where_they_belong_pass(self, tmp_path: Path) -> None:
        """Unquoted numbers, and strings in string fields (a match value), stay accepted."""
        cfg = _load(tmp_path, RULE.format(action="below = -500") + '\n[workers]\ncount = 2\n')
        assert cfg.rules[0].actions[0].below == -500  # type: ignore[union-attr]
        assert cfg.workers.count == 2


class TestDidYouMean:
    @pytest.mark.parametrize(("text", "message"), [
        ("[workers]\ncont = 2\n", "workers.cont: unknown key; did you mean 'count'?"),
        ("[paht]\ninbox = 'x'\n", "paht: unknown key; did you mean 'paths'?"),
        (RULE.format(action="belwo = -500"), "belwo: unknown key; did you mean 'below'?"),
    ])
    def test_a_typo_gets_the_closest_key(self, tmp_path: Path, text: str, message: str) -> None:
        """An unknown key is named with the file, and the closest key of its section offered."""
        with pytest.raises(ConfigError, match=r"site\.toml: ") as info:
            _load(tmp_path, text)
        assert message in str(info.value)

    def test_no_suggestion_for_a_key_like_none(self, tmp_path: Path) -> None:
        """Nothing close: no guess."""
        with pytest.raises(ConfigError) as info:
            _load(tmp_path, "[workers]\nzzzzzz = 2\n")
        assert "workers.zzzzzz: unknown key" in str(info.value)
        assert "did you mean" not in str(info.value)
