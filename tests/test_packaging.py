"""What `pip install -e .` gives a learner: the requirements that the chapters import, honest metadata, and no
Python that TensorFlow has no wheels for. Read from the installed distribution, as pip wrote it."""
import configparser, re
from importlib import metadata
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
cfg = configparser.ConfigParser(delimiters=['=']); cfg.read(ROOT/'settings.ini')
cfg = cfg['DEFAULT']
meta = metadata.metadata('captioning_course')
requires = metadata.requires('captioning_course') or []


def base(req): return [r for r in requires if 'extra ==' not in r and re.match(rf'{req}\b', r)]


@pytest.mark.parametrize('package', ['nbdev', 'tensorflow', 'numpy', 'pillow', 'matplotlib', 'ipywidgets', 'jupyterlab'])
def test_readmes_install_gives_the_courses_packages(package):
    "A learner's `pip install -e .` (no extras) brings every package the chapters use, nbdev included."
    assert base(package), f'{package} is not a requirement of `pip install -e .`'


def test_ipywidgets_is_version_8_which_the_explorer_needs():
    from packaging.requirements import Requirement
    spec = Requirement(base('ipywidgets')[0]).specifier
    assert '7.8' not in spec and '8.0' in spec


def test_python_requires_stops_where_tensorflows_wheels_do():
    from packaging.specifiers import SpecifierSet
    spec = SpecifierSet(meta['Requires-Python'])
    assert cfg['min_python'] in spec and cfg['max_python'] in spec
    major, minor = map(int, cfg['max_python'].split('.'))
    assert f'{major}.{minor + 1}' not in spec, 'pip would install on a Python that TensorFlow ships only release candidates for'
    versions = [c.rsplit(' ', 1)[-1] for c in meta.get_all('Classifier') if c.startswith('Programming Language :: Python :: 3.')]
    assert versions[0] == cfg['min_python'] and versions[-1] == cfg['max_python']


def test_the_status_classifier_is_the_settings():
    status = next(c for c in meta.get_all('Classifier') if c.startswith('Development Status'))
    assert status.split(' :: ')[1].startswith(cfg['status'] + ' - '), status


def test_the_gpu_extra_installs_tensorflow_with_cuda():
    gpu = [r for r in requires if 'extra == "gpu"' in r]
    assert any(r.startswith('tensorflow[and-cuda]') for r in gpu), gpu
