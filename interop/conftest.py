import pytest

# The transaction scenarios' asserts are in a helper module: rewritten (which must happen before
# any test module imports it), they show what differed.
pytest.register_assert_rewrite("interop.txn_clients")

from interop.broker_process import BrokerProcess  # noqa: E402


@pytest.fixture
def broker(tmp_path):
    """A fresh broker process with its own data directory, killed after the test."""
    with BrokerProcess(tmp_path / "data") as process:
        yield process


@pytest.fixture(scope="module")
def shared_broker(tmp_path_factory):
    """One broker for a module whose tests each use their own topic or offsets."""
    with BrokerProcess(tmp_path_factory.mktemp("shared") / "data") as process:
        yield process
