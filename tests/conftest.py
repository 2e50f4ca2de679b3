"""Shared pytest settings: a run that collects no test fails instead of exiting with status 5."""
import pytest


def pytest_sessionfinish(session, exitstatus):
    if session.testscollected == 0 and exitstatus in (0, pytest.ExitCode.NO_TESTS_COLLECTED):
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
        print('\nno tests were collected: the test suite is missing, which is an error')


@pytest.fixture(scope='session')
def coco_fixture(tmp_path_factory):
    "A small COCO-layout dataset of real photographs (tests/coco_fixture.py)."
    from coco_fixture import make_coco_fixture
    return make_coco_fixture(tmp_path_factory.mktemp('coco')/'data')


@pytest.fixture(scope='session')
def vgg16_weights():
    "A random-weights VGG16 in the legacy HDF5 layout of Keras' download: `CAPTIONING_VGG16_WEIGHTS` if set, else made once."
    import os
    from pathlib import Path
    from coco_fixture import make_vgg16_weights
    if (p := os.environ.get('CAPTIONING_VGG16_WEIGHTS')) and Path(p).is_file(): return Path(p)
    return make_vgg16_weights(Path(__file__).parent.parent/'test-artifacts'/'vgg16_random.h5')
