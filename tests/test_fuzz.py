"""A seeded mutation fuzzer over the pure core: ≥ 1,000 mutants of real files.

Each mutant goes through `pipeline.process_bytes` (what every worker runs). The only acceptable
outcomes are an `InputError` (the file is quarantined with a reason) or an output that decodes
again. Any other exception is a bug that a worker would report as `internal`. The seed is fixed so
that a failure reproduces; `DCMWATCH_FUZZ_SEED` / `DCMWATCH_FUZZ_MUTANTS` explore further.
"""

from __future__ import annotations

import os
import random
import struct
import warnings
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pydicom.config
import pytest
from pydicom.data import get_testdata_file

from dcmwatch import config as config_mod
from dcmwatch import dicomfile, pipeline
from dcmwatch.config import Config
from dcmwatch.errors import InputError
from dcmwatch.testing import ct_series_bytes
from tests.conftest import KEY_HEX, write_config

SEED = int(os.environ.get("DCMWATCH_FUZZ_SEED", "7"))
MUTANTS = int(os.environ.get("DCMWATCH_FUZZ_MUTANTS", "1200"))

BUNDLED = ("CT_small.dcm", "MR_small.dcm", "MR_small_implicit.dcm", "MR_small_bigendian.dcm",
           "JPEG2000.dcm", "MR_small_RLE.dcm", "SC_rgb_jpeg_dcmtk.dcm", "rtplan.dcm",
           "image_dfl.dcm", "ExplVR_LitEndNoMeta.dcm", "nested_priv_SQ.dcm")


def seeds() -> list[bytes]:
    out = [Path(get_testdata_file(name)).read_bytes() for name in BUNDLED]
    out += ct_series_bytes(2, rows=16, columns=16)
    return out


def mutate(data: bytes, rng: random.Random) -> bytes:
    """One to four random edits, biased towards the structure (lengths, tags, VRs)."""
    buf = bytearray(data)
    for _ in range(rng.randint(1, 4)):
        if not buf:
            break
        op = rng.randrange(9)
        pos = rng.randrange(len(buf))
        if op == 0:  # bit flip
            buf[pos] ^= 1 << rng.randrange(8)
        elif op == 1:  # random byte run
            n = rng.randint(1, 16)
            buf[pos : pos + n] = rng.randbytes(n)
        elif op == 2:  # an absurd 32-bit length at a 2-aligned position
            pos &= ~1
            buf[pos : pos + 4] = struct.pack("<L", rng.choice(
                [0xFFFFFFFF, 0xFFFFFFF0, 0x7FFFFFFF, 0x80000000, rng.getrandbits(32)]))
        elif op == 3:  # an absurd 16-bit length
            pos &= ~1
            buf[pos : pos + 2] = struct.pack("<H", rng.choice([0xFFFF, 0xFFFE, 0, 1]))
        elif op == 4:  # truncate
            del buf[pos:]
        elif op == 5:  # delete a chunk
            del buf[pos : pos + rng.randint(1, 64)]
        elif op == 6:  # duplicate a chunk
            n = rng.randint(1, 256)
            buf[pos:pos] = buf[pos : pos + n]
        elif op == 7:  # a VR replaced by an invalid or a different one
            i = _find_vr(buf, rng)
            if i is not None:
                buf[i : i + 2] = rng.choice([b"\x00\x00", b"ZZ", b"SQ", b"UN", b"OB", b"US"])
        else:  # sequence delimiters and items in odd places
            buf[pos & ~1 : (pos & ~1) + 4] = rng.choice(
                [b"\xfe\xff\x00\xe0", b"\xfe\xff\x0d\xe0", b"\xfe\xff\xdd\xe0"])
    return bytes(buf)


def _find_vr(buf: bytearray, rng: random.Random) -> int | None:
    for _ in range(20):
        i = rng.randrange(max(1, len(buf) - 2))
        if buf[i : i + 2].isalpha() and buf[i : i + 2].isupper():
            return i
    return None


@pytest.fixture(scope="module")
def config(tmp_path_factory: pytest.TempPathFactory) -> Config:
    root = tmp_path_factory.mktemp("fuzz")
    return config_mod.load(write_config(root)).with_secret(bytes.fromhex(KEY_HEX))


@pytest.fixture(autouse=True)
def _as_in_a_worker() -> Iterator[None]:
    """The worker's reading settings (see work.init_worker): no validation, no warnings."""
    old = pydicom.config.settings.reading_validation_mode
    pydicom.config.settings.reading_validation_mode = pydicom.config.IGNORE
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield
    pydicom.config.settings.reading_validation_mode = old


def test_mutants_are_quarantined_or_processed_never_crash(config: Config) -> None:
    rng = random.Random(SEED)
    originals = seeds()
    outcomes: Counter[str] = Counter()
    bugs: list[str] = []
    for i in range(MUTANTS):
        base = rng.randrange(len(originals))
        mutant = mutate(originals[base], rng)
        try:
            result = pipeline.process_bytes(mutant, config)
        except InputError as exc:
            outcomes[exc.reason] += 1
            continue
        except BaseException as exc:  # the property: nothing else escapes (pyo3 panics too)
            bugs.append(f"mutant {i} of {BUNDLED[base] if base < len(BUNDLED) else 'synth'}: "
                        f"{type(exc).__name__}")
            continue
        outcomes["processed"] += 1
        # A success must be a file that dcmwatch (and pydicom) read back whole.
        try:
            dicomfile.decode(result.data, max_inflated=1 << 30)
        except InputError as exc:
            bugs.append(f"mutant {i}: output does not decode ({exc.reason})")
    assert not bugs, bugs[:20]
    assert sum(outcomes.values()) == MUTANTS
    # The fuzzer must exercise both sides, else it tests nothing.
    assert outcomes["processed"] > MUTANTS // 20, outcomes
    assert sum(v for k, v in outcomes.items() if k != "processed") > MUTANTS // 5, outcomes
