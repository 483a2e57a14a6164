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
