"""tfkata.stubprobe: a graded test whose every covered function is still the stub is TODO before it runs."""
import importlib.util
import os
import sys
import traceback

import pytest

from tfkata.stubprobe import raise_if_all_stubs, raise_if_stub

MODULE = '''
def stub(x, y=2):
    """Doc."""
    raise NotImplementedError("k01: stub")


def written(x):
    return x


class Stubbed:
    def __init__(self, a):
        raise NotImplementedError("k01: Stubbed")

    def go(self):
        raise NotImplementedError("k01: Stubbed.go")


class Half:
    def __init__(self, a):
        raise NotImplementedError("k01: Half")

    def helper(self):
        return 1
'''


@pytest.fixture
def learner(tmp_path):
    path = tmp_path / "mod_for_probe.py"
    path.write_text(MODULE)
    spec = importlib.util.spec_from_file_location("mod_for_probe", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    sys.modules["mod_for_probe"] = module
    yield module, path
    del sys.modules["mod_for_probe"]


def test_all_stubs_raise_the_stubs_own_error_from_its_file(learner):
    module, path = learner
    for names in (["stub"], ["stub", "Stubbed"], ["Stubbed"]):
        with pytest.raises(NotImplementedError) as info:
            raise_if_all_stubs(module, path, names)
        frame = traceback.extract_tb(info.value.__traceback__)[-1]
        assert frame.filename == str(path), (names, frame)


@pytest.mark.parametrize("names", [[], ["written"], ["stub", "written"], ["Half"], ["missing"], ["stub", "missing"]])
def test_anything_written_or_unknown_lets_the_test_run(learner, names):
    module, path = learner
    raise_if_all_stubs(module, path, names)  # returns: the test runs and says what it finds


def test_written_code_after_an_edit_is_seen(learner):
    module, path = learner
    with pytest.raises(NotImplementedError):
        raise_if_stub(module, "stub")
    path.write_text(MODULE.replace('    raise NotImplementedError("k01: stub")', "    return x + y"))
    os.utime(path, ns=(1, 1))  # another mtime: the scan is cached by it
    raise_if_all_stubs(module, path, ["stub"])
