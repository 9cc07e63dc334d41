from pyk3s.controllers.written import OwnWrites


def obj(rv: str, data: str = "") -> dict:
    return {"metadata": {"name": "web", "namespace": "default", "resourceVersion": rv}, "data": data}


def test_written_object_stands_in_for_the_stale_cache_copy():
    own = OwnWrites()
    own.wrote(obj("5", "new"), obj("6", "new"))
    assert own.fresher(obj("5", "old")) == obj("6", "new")


def test_cache_that_moved_on_is_trusted_again():
    own = OwnWrites()
    own.wrote(obj("5", "new"), obj("6", "new"))
    assert own.fresher(obj("7", "theirs")) == obj("7", "theirs")
    # the entry is gone: even the old version is taken as it is now
    assert own.fresher(obj("5", "old")) == obj("5", "old")


def test_deletion_forgets_and_replies_without_version_are_ignored():
    own = OwnWrites()
    own.wrote(obj("5"), obj("6", "new"))
    own.on_event("DELETED", obj("6"), None)
    assert own.fresher(obj("5", "old")) == obj("5", "old")
    own.wrote(obj("5"), None)
    own.wrote(obj(""), obj("6"))
    assert own.fresher(obj("5", "old")) == obj("5", "old")
