"""Test-wide settings: caches go to a temporary folder, never the user's ~/.cache."""

import pytest

from tests.helpers import PROTO


@pytest.fixture(autouse=True, scope="session")
def _isolated_cache(tmp_path_factory):
    import os

    old = os.environ.get("SAIRBENCH_CACHE_DIR")
    os.environ["SAIRBENCH_CACHE_DIR"] = str(tmp_path_factory.mktemp("sairbench-cache"))
    yield
    if old is None:
        os.environ.pop("SAIRBENCH_CACHE_DIR", None)
    else:
        os.environ["SAIRBENCH_CACHE_DIR"] = old


@pytest.fixture()
def proto(tmp_path):
    """The tiny protocol of tests/helpers.py written to a file (tests may override this fixture)."""
    p = tmp_path / "mini.toml"
    p.write_text(PROTO)
    return p
