"""Package metadata for `captioning_course`, read from `settings.ini` (nbdev 2 layout)."""
from configparser import ConfigParser
from pathlib import Path
import setuptools

config = ConfigParser(delimiters=['='])
config.read(Path(__file__).parent / 'settings.ini', encoding='utf-8')
cfg = config['DEFAULT']

licenses = {'mit': 'MIT'}  # SPDX expressions
statuses = ['1 - Planning', '2 - Pre-Alpha', '3 - Alpha', '4 - Beta', '5 - Production/Stable', '6 - Mature', '7 - Inactive']
py_versions = '3.10 3.11 3.12 3.13 3.14'.split()

lic = licenses[cfg['license'].lower()]
min_python, max_python = cfg['min_python'], cfg['max_python']
major, minor = map(int, max_python.split('.'))
requirements = cfg.get('requirements', '').split()
dev_requirements = cfg.get('dev_requirements', '').split()
gpu_requirements = cfg.get('gpu_requirements', '').split()
console_scripts = cfg.get('console_scripts', '').split()

setuptools.setup(
    name=cfg['lib_name'],
    version=cfg['version'],
    description=cfg['description'],
    long_description=(Path(__file__).parent / 'README.md').read_text(encoding='utf-8'),
    long_description_content_type='text/markdown',
    license=lic,
    classifiers=[
        'Development Status :: ' + statuses[int(cfg['status']) - 1],  # status 3 is '3 - Alpha'
        'Intended Audience :: ' + cfg['audience'].title(),
        'Natural Language :: ' + cfg['language'].title(),
    ] + ['Programming Language :: Python :: ' + v for v in py_versions[py_versions.index(min_python):py_versions.index(max_python) + 1]],
    author=cfg['author'],
    author_email=cfg['author_email'],
    url=cfg['git_url'],
    keywords=cfg['keywords'],
    packages=setuptools.find_packages(include=[cfg['lib_name'], cfg['lib_name'] + '.*']) + [cfg['lib_name'] + '.pretrained'],  # its shipped concept CNN (data)
    include_package_data=True,
    python_requires=f'>={min_python},<{major}.{minor + 1}',  # only Pythons that TensorFlow ships wheels for
    install_requires=requirements,
    extras_require={'dev': dev_requirements, 'gpu': gpu_requirements},
    entry_points={'console_scripts': console_scripts, 'nbdev': [f"{cfg['lib_path']}={cfg['lib_path']}._modidx:d"]},
    zip_safe=False,
)
