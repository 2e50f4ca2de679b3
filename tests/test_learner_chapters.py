"""`.ci/learner-chapters`, which CI's newcomer stage runs after README's install: it runs a chapter up to its first
training cell, and it fails when a chapter imports what the learner's install lacks."""
import importlib.machinery, importlib.util, json, shutil, sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parent.parent/'.ci'/'learner-chapters'
_loader = importlib.machinery.SourceFileLoader('learner_chapters', str(SCRIPT))
lc = importlib.util.module_from_spec(importlib.util.spec_from_loader('learner_chapters', _loader)); _loader.exec_module(lc)


def cell(src, kind='code'):
    c = dict(cell_type=kind, metadata={}, source=src)
    return dict(c, execution_count=None, outputs=[]) if kind == 'code' else c


def notebook(path, *sources):
    path.write_text(json.dumps(dict(cells=[cell(s) for s in sources], nbformat=4, nbformat_minor=5,
                                    metadata=dict(kernelspec=dict(name='python3', display_name='Python 3', language='python')))))


def test_the_first_training_cell_is_found():
    cells = [cell('# Title', 'markdown'), cell('#| export\ndef f(): return train_decoder(x)'), cell('tok.fit(captions)'),
             cell('tokenizer.fit(captions)'), cell('h = model.fit(ds, epochs=2)'), cell('trained_decoder(root)')]
    assert lc.first_training_cell(cells) == 4  # not the definition, not a tokenizer's fit
    assert lc.first_training_cell(cells[:4]) is None


@pytest.fixture
def chapters(tmp_path, monkeypatch):
    if not shutil.which('jupyter'): pytest.skip('jupyter is not installed')
    (tmp_path/'nbs').mkdir()
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(lc, 'WHOLE', ('01_whole',))
    return tmp_path


def test_a_chapter_runs_up_to_its_training_cell(chapters):
    notebook(chapters/'nbs'/'01_whole.ipynb', 'import json\nprint(json.dumps([1]))')
    notebook(chapters/'nbs'/'02_trains.ipynb', 'x = 1', 'decoder = trained_decoder(root)  # would fail: never run', 'raise SystemExit(1)')
    lc.main(chapters/'out')
    ran = json.loads((chapters/'out'/'02_trains.ipynb').read_text())
    assert len(ran['cells']) == 1 and ran['cells'][0]['execution_count'] == 1
    assert json.loads((chapters/'out'/'01_whole.ipynb').read_text())['cells'][0]['outputs'][0]['text'] in ('[1]\n', ['[1]\n'])


def test_a_chapter_that_imports_what_the_install_lacks_fails(chapters, capsys):
    notebook(chapters/'nbs'/'01_whole.ipynb', '#| hide\nimport a_package_no_install_gives')
    with pytest.raises(SystemExit) as e: lc.main(chapters/'out')
    assert '01_whole.ipynb failed' in str(e.value)
    assert 'ModuleNotFoundError' in capsys.readouterr().out
