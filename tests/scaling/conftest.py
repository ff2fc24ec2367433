import pytest


@pytest.fixture(scope="session")
def stdlib_corpus(tmp_path_factory):
    """The built-in corpus, sharded once per test session."""
    from cambrian.scaling.data import load_corpus

    return load_corpus("stdlib", cache_dir=tmp_path_factory.mktemp("cache"))
