"""The optional re-identification map: reported by the pure core, stored by the edge, looked up.

Off by default: then the core reports nothing. On: the pairs it reports are exactly the values
it replaced, they never show in a repr, and `dcmwatch lookup` finds them (the integration test
`tests/integration/test_reid.py` checks the state folder's bytes end to end).
"""

from __future__ import annotations

import json
import stat
from io import BytesIO
from pathlib import Path

import pytest
from pydicom import dcmread

from dcmwatch import cli, config, pipeline
from dcmwatch.engine.outcome import Outcome
from dcmwatch.journal import FILENAME, Journal, lookup_reid
from dcmwatch.testing import MARKERS, ct_series_bytes, find_markers, write_series
from tests.conftest import KEY_HEX, write_config


def _config(tmp_path: Path, reid_map: bool) -> config.Config:
    cfg = write_config(tmp_path, f"reid_map = {'true' if reid_map else 'false'}")
    return config.load(cfg).with_secret(bytes.fromhex(KEY_HEX))


def _blob() -> bytes:
    return ct_series_bytes(1, rows=16, columns=16)[0]


def test_off_by_default_reports_nothing(tmp_path: Path) -> None:
    """Without reid_map the core returns no pair: nothing reversible leaves the worker."""
    assert config.load(None, cwd=tmp_path).deid.reid_map is False
    assert pipeline.process_bytes(_blob(), _config(tmp_path, False)).reid == ()


def test_on_reports_exactly_the_replaced_values(tmp_path: Path) -> None:
    """Each pair is (kind, the value written, the original), for patient and study/series."""
    result = pipeline.process_bytes(_blob(), _config(tmp_path, True))
    out = dcmread(BytesIO(result.data))
    pairs = {kind: (new, original) for kind, new, original in result.reid}
    assert pairs["PatientID"] == (out.PatientID, MARKERS.patient_id)
    assert pairs["PatientName"] == (str(out.PatientName), MARKERS.patient_name)
    assert pairs["StudyInstanceUID"][0] == out.StudyInstanceUID
    assert pairs["SeriesInstanceUID"][0] == out.SeriesInstanceUID
    assert find_markers(result.data) == []


def test_pairs_never_in_a_repr(tmp_path: Path) -> None:
    """Processed and Outcome carry the pairs but never show them (logs print reprs)."""
    result = pipeline.process_bytes(_blob(), _config(tmp_path, True))
    outcome = Outcome(claim_id="c", status="processed", reid=result.reid)
    assert result.reid and outcome.reid
    assert find_markers(repr(result)) == [] and find_markers(repr(outcome)) == []


def test_journal_records_idempotently_with_a_private_mode(tmp_path: Path) -> None:
    """A re-recorded pair (crash-restart) adds nothing; the database is not world-readable."""
    path = tmp_path / FILENAME
    journal = Journal(path, mode=0o644)
    pairs = [("PatientID", "ANONX", "ID1"), ("PatientName", "ANONX", "DOE^J")]
    assert journal.record_reid(pairs) == 2
    assert journal.record_reid(pairs) == 0
    journal.close()
    assert stat.S_IMODE(path.stat().st_mode) & 0o007 == 0
    assert lookup_reid(path, "ANONX") == [("PatientID", "ID1"), ("PatientName", "DOE^J")]
    assert lookup_reid(path, "ANONY") == []
    assert lookup_reid(tmp_path / "absent.sqlite3", "ANONX") is None


def test_pairs_are_committed_at_once_and_synced(tmp_path: Path) -> None:
    """The input is removed right after: the map's rows are committed in one transaction with
    synchronous=FULL (the WAL synced), not left to NORMAL, which a power cut may roll back."""
    journal = Journal(tmp_path / FILENAME)
    seen: list[str] = []
    journal._db.set_trace_callback(seen.append)
    journal.record_reid([("PatientID", "ANONX", "ID1"), ("PatientName", "ANONX", "DOE^J")])
    journal._db.set_trace_callback(None)
    inserts = [i for i, sql in enumerate(seen) if sql.startswith("INSERT")]
    full = seen.index("PRAGMA synchronous=FULL")
    assert len(inserts) == 2 and full < seen.index("BEGIN IMMEDIATE") < inserts[0]
    assert inserts[-1] < seen.index("COMMIT") < seen.index("PRAGMA synchronous=NORMAL")
    assert journal._db.execute("PRAGMA synchronous").fetchone()[0] == 1  # NORMAL again
    journal.close()


class TestLookup:
    def _map(self, tmp_path: Path) -> str:
        cfg = write_config(tmp_path, "reid_map = true")
        (tmp_path / "state").mkdir()
        journal = Journal(tmp_path / "state" / FILENAME)
        journal.record_reid([("PatientID", "ANONX", MARKERS.patient_id),
                             ("PatientName", "ANONX", MARKERS.patient_name)])
        journal.close()
        return str(cfg)

    def test_found_prints_json_and_audits_without_phi(
        self, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        cfg = self._map(tmp_path)
        assert cli.main(["lookup", "--config", cfg, "ANONX"], env={}) == 0
        got = capsys.readouterr()
        data = json.loads(got.out)
        assert data == {"pseudonym": "ANONX", "originals": {
            "PatientID": [MARKERS.patient_id], "PatientName": [MARKERS.patient_name]}}
        event = json.loads(got.err.strip().splitlines()[-1])
        assert event["event"] == "reid.lookup" and event["found"] is True
        assert find_markers(got.err) == []

    def test_not_found_exits_1_and_never_logs_the_argument(
        self, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """An operator who types an original ID by mistake must not put it in the log."""
        cfg = self._map(tmp_path)
        assert cli.main(["lookup", "--config", cfg, MARKERS.patient_id], env={}) == \
            cli.EXIT_NOT_FOUND == 1
        got = capsys.readouterr()
        assert got.out == ""
        assert '"reid.lookup"' in got.err and '"found": false' in got.err
        assert find_markers(got.err) == []

    def test_the_audit_event_reaches_the_log_file(
        self, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """stderr is the operator's own terminal: with `[log] file` the site's log records the
        lookup too, and without a writable log file there is no lookup."""
        cfg = Path(self._map(tmp_path))
        cfg.write_text(cfg.read_text().replace("[log]\n", '[log]\nfile = "audit.log"\n'))
        assert cli.main(["lookup", "--config", str(cfg), "ANONX"], env={}) == 0
        events = [json.loads(x) for x in (tmp_path / "audit.log").read_text().splitlines()]
        assert [(e["event"], e["found"]) for e in events] == [("reid.lookup", True)]
        assert find_markers((tmp_path / "audit.log").read_text()) == []
        capsys.readouterr()
        (tmp_path / "audit.log").unlink()
        (tmp_path / "audit.log").mkdir()
        assert cli.main(["lookup", "--config", str(cfg), "ANONX"], env={}) == 2
        got = capsys.readouterr()
        assert got.out == "" and "log.file" in got.err

    def test_disabled_map_is_a_clear_error(
        self, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        cfg = write_config(tmp_path)
        assert cli.main(["lookup", "--config", str(cfg), "ANONX"], env={}) == 2
        err = capsys.readouterr().err
        assert "deid.reid_map" in err and "disabled" in err

    def test_unreadable_database_is_a_clear_error(
        self, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        cfg = write_config(tmp_path, "reid_map = true")
        (tmp_path / "state").mkdir()
        (tmp_path / "state" / FILENAME).write_bytes(b"this is not a database" * 100)
        assert cli.main(["lookup", "--config", str(cfg), "ANONX"], env={}) == cli.EXIT_FAILED == 3
        assert "cannot read the re-identification map" in capsys.readouterr().err


@pytest.mark.parametrize("reid_map", [False, True])
def test_batch_process_records_the_map_only_when_on(tmp_path: Path, reid_map: bool) -> None:
    """`dcmwatch process` stores the pairs like the daemon; off, it creates no database."""
    cfg = write_config(tmp_path, f"reid_map = {'true' if reid_map else 'false'}")
    write_series(tmp_path / "src", 2, rows=16, columns=16)
    assert cli.main(["process", "--config", str(cfg), str(tmp_path / "src")], env={}) == 0
    db = tmp_path / "state" / FILENAME
    if not reid_map:
        assert not db.exists()
        return
    pseudonym = dcmread(next((tmp_path / "outbox").rglob("*.dcm"))).PatientID
    assert lookup_reid(db, pseudonym) == [("PatientID", MARKERS.patient_id),
                                          ("PatientName", MARKERS.patient_name)]
