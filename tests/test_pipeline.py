"""Output paths: built from de-identified values only, never escaping the outbox."""

from __future__ import annotations

from pydicom.dataset import Dataset

from dcmwatch.pipeline import output_relpath

LAYOUT = "{PatientID}/{SeriesInstanceUID}/{SOPInstanceUID}.dcm"


class TestOutputRelpath:
    def test_values_become_single_safe_components(self) -> None:
        """`..`, `/`, NUL and long values cannot steer the path."""
        ds = Dataset()
        ds.PatientID = "../../etc"
        ds.SeriesInstanceUID = "1.2/3\x00"
        ds.SOPInstanceUID = "9" * 200
        rel = output_relpath(ds, LAYOUT, fallback="f" * 64)
        parts = rel.split("/")
        assert len(parts) == 3
        assert all(p and not p.startswith(".") and "\x00" not in p for p in parts)
        assert len(parts[2]) <= 64 + len(".dcm")

    def test_missing_values_fall_back_to_a_content_digest(self) -> None:
        """A missing field gives a stable name derived from the content, not a collision."""
        ds = Dataset()
        ds.SOPInstanceUID = "1.2.3"
        rel = output_relpath(ds, LAYOUT, fallback="abcdef0123456789ffff")
        assert rel.startswith("unknown-abcdef0123456789/")
