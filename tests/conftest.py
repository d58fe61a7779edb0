"""Test-wide settings.

Under CI (the CI environment variable set, as .ci/run is run) hypothesis is
derandomized: the same examples every run, so a landing never depends on
the luck of the draw.  Developers' runs stay random and find new cases.
"""

import os

from hypothesis import settings

settings.register_profile("ci", derandomize=True, print_blob=True)
if os.environ.get("CI"):
    settings.load_profile("ci")
