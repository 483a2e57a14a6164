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

    def test_kept_header_values_cannot_name_a_folder(self) -> None:
        """Modality and the numbers are the file's own: a name or a date smuggled into them
        falls back to the digest; real values stay."""
        layout = "{Modality}/{SeriesNumber}/{InstanceNumber}_{SOPInstanceUID}.dcm"
        ds = Dataset()
        ds.SOPInstanceUID = "2.25.1"
        for smuggled in ("SMITH", "DOE JOHN", "ct"):
            ds.Modality = smuggled
            ds.SeriesNumber = "19510829"
            ds.InstanceNumber = "2804962"
            rel = output_relpath(ds, layout, fallback="abcdef0123456789ffff")
            assert rel == ("unknown-abcdef0123456789/unknown-abcdef0123456789/"
                           "unknown-abcdef0123456789_2.25.1.dcm"), rel
        ds.Modality, ds.SeriesNumber, ds.InstanceNumber = "CT", "3", "-12"
        assert output_relpath(ds, layout, fallback="f" * 20) == "CT/3/-12_2.25.1.dcm"
