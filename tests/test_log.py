"""Logs: JSON lines with stable event names; exceptions without messages or locals."""

from __future__ import annotations

import io
import json

import structlog

from dcmwatch import log


class TestLog:
    def test_json_lines_and_no_exception_message(self) -> None:
        """An exception is logged by class and frames; its message (maybe PHI) never appears."""
        out = io.StringIO()
        log.configure("json", "info", stream=out)
        patient = "ZZPHINAME^MARKER"  # a local that must not be rendered either
        try:
            raise ValueError(f"bad value {patient}")
        except ValueError as exc:
            structlog.get_logger().error("file.failed", exc_info=exc, claim_id="c1")
        line = out.getvalue().strip()
        event = json.loads(line)
        assert event["event"] == "file.failed" and event["exc_type"] == "ValueError"
        assert "ZZPHI" not in line
        assert event["exc_frames"][0].endswith(":test_json_lines_and_no_exception_message")

    def test_debug_filtered_at_info(self) -> None:
        """The configured level filters events."""
        out = io.StringIO()
        log.configure("json", "info", stream=out)
        structlog.get_logger().debug("noise")
        assert out.getvalue() == ""


class _Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


class TestHumanLines:
    def test_warnings_go_to_the_person_and_json_stays_off_the_terminal(self) -> None:
        """With a human sink and stdout a terminal: warnings become readable lines (no OCR
        boxes), info stays out of them, and no JSON is written to the terminal."""
        out, seen = _Tty(), []
        log.configure("auto", "info", stream=out, stamp={"run": "abc", "component": "process"},
                      human=seen.append)
        structlog.get_logger().info("backfill.started", workers=2)
        structlog.get_logger().warning("ocr.finding", claim_id="c1", count=2,
                                       findings=[{"x": 1}])
        assert out.getvalue() == ""
        assert len(seen) == 1
        assert seen[0].split()[1:4] == ["warning", "ocr.finding", "claim_id=c1"]
        assert "findings" not in seen[0] and "run=" not in seen[0]

    def test_json_unchanged_when_stdout_is_not_a_terminal(self) -> None:
        """Piped, stdout gets every JSON line, stamped with run and component."""
        out, seen = io.StringIO(), []
        log.configure("auto", "info", stream=out, stamp={"run": "abc", "component": "process"},
                      human=seen.append)
        structlog.get_logger().warning("file.quarantined", claim_id="c1", reason="not_dicom")
        event = json.loads(out.getvalue())
        assert event["event"] == "file.quarantined" and event["reason"] == "not_dicom"
        assert (event["run"], event["component"]) == ("abc", "process")
        assert len(seen) == 1
