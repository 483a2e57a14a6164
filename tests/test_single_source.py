"""Names of the on-disk layout are spelt once: a second spelling drifts when the first changes
(status would count the wrong work area, or open another database)."""

from __future__ import annotations

from pathlib import Path

import pytest

import dcmwatch
from dcmwatch import intake, journal, status, store
from dcmwatch.engine import inbox
from dcmwatch.metrics import Metrics

PACKAGE = Path(dcmwatch.__file__).parent


@pytest.mark.parametrize(("literal", "home"), [
    (f'"{journal.FILENAME}"', "journal.py"),
    (f'"{store.WORK_DIR_NAME}"', "store.py"),
])
def test_layout_names_are_defined_once(literal: str, home: str) -> None:
    spelt = sorted(str(p.relative_to(PACKAGE)) for p in PACKAGE.rglob("*.py")
                   if literal in p.read_text(encoding="utf-8"))
    assert spelt == [home]


def test_status_and_the_daemon_share_the_work_area_and_the_walk() -> None:
    assert status.WORK_DIR_NAME is inbox.WORK_DIR_NAME is store.WORK_DIR_NAME
    assert status.walk is intake.walk


def test_metrics_keep_no_unread_state() -> None:
    m = Metrics(queue_depth=lambda: 0.0, utilisation=lambda: 0.0)
    assert not hasattr(m, "port")
