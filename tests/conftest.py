"""Settings shared by the whole suite."""
import pytest
import torch


@pytest.fixture(scope="session", autouse=True)
def one_torch_thread():
    """One intra-op thread: the suite's tensors are small, and on a shared 2-core machine two oversubscribed
    threads per process are many times slower than one."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
