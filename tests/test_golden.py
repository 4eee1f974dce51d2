"""A fixed-seed embedded run is unchanged by refactors: the accuracy matrices of the embedded default (cut to
2 epochs, seed 0, every default method) equal the ones stored in tests/golden/embedded_acc.json.

A deliberate change of behaviour regenerates the file (`python tests/golden/embedded.py --write`) and says
why in its commit. Accuracies may differ by at most one test image (a float reduction order on another CPU).
"""

import json
import math
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent / "golden"))
import embedded  # noqa: E402

# Percentage points: one test image of a digits task (~72 test images per task) is 1.4 points.
TOLERANCE = 1.5


@pytest.mark.parametrize("method", embedded.METHODS)
def test_embedded_run_matches_the_stored_matrix(method):
    stored = json.loads(embedded.STORED.read_text())[method]
    current = embedded.acc_matrix(method)
    assert len(current) == len(stored)
    for t, (row, old) in enumerate(zip(current, stored)):
        for j, (a, b) in enumerate(zip(row, old)):
            if j > t:
                assert math.isnan(a) and (b is None or math.isnan(b))
            else:
                assert abs(a - b) <= TOLERANCE, f"{method} a[{t}][{j}]: {a} vs stored {b}"
