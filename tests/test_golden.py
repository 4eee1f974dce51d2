"""A fixed-seed embedded run is unchanged by refactors: the accuracy matrices of the embedded default (cut to
2 epochs, seed 0, every default method) equal the ones stored in tests/golden/embedded_acc.json.

A deliberate change of behaviour regenerates the file (`python tests/golden/embedded.py --write`) and says
why in its commit. Accuracies may differ by at most one test image on the platform the file was written on
(torch version and CPU instruction set, stored beside the matrices), by a few images on another.
"""

import json
import math
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent / "golden"))
import embedded  # noqa: E402

# Percentage points: one test image of a digits task (~72 test images per task) is 1.4 points. On another
# torch version or CPU instruction set the float rounding differs and training drifts a little further.
TOLERANCE = 1.5
OTHER_PLATFORM_TOLERANCE = 7.0


@pytest.mark.parametrize("method", embedded.METHODS)
def test_embedded_run_matches_the_stored_matrix(method):
    saved = json.loads(embedded.STORED.read_text())
    stored, current = saved[method], embedded.acc_matrix(method)
    same_platform = saved.get("_platform") == embedded.platform()
    tolerance = TOLERANCE if same_platform else OTHER_PLATFORM_TOLERANCE
    assert len(current) == len(stored)
    for t, (row, old) in enumerate(zip(current, stored)):
        for j, (a, b) in enumerate(zip(row, old)):
            if j > t:
                assert math.isnan(a) and (b is None or math.isnan(b))
            else:
                assert abs(a - b) <= tolerance, f"{method} a[{t}][{j}]: {a} vs stored {b} ({saved.get('_platform')})"
