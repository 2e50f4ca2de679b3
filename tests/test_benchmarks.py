"""The chapter profile of `benchmarks/chapters.py`: which notebooks it picks, and that it executes and stores one."""
import importlib.util
from pathlib import Path

import nbformat

spec = importlib.util.spec_from_file_location('chapters', Path(__file__).parent.parent/'benchmarks'/'chapters.py')
chapters = importlib.util.module_from_spec(spec); spec.loader.exec_module(chapters)


def test_picks_chapters_in_order():
    names = [p.stem for p in chapters.chapters([])]
    assert names == sorted(names) and names[0].startswith('01') and 'index' not in names
    assert [p.stem for p in chapters.chapters(['08a', '06'])] == ['06_training', '08a_exercises_training']


def test_runs_a_notebook_and_stores_its_outputs(tmp_path, monkeypatch):
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("import os; print(os.environ['CAPTIONING_DATA_DIR'])")])
    path = tmp_path/'01_tiny.ipynb'; nbformat.write(nb, path)
    monkeypatch.setenv('CAPTIONING_DATA_DIR', str(tmp_path/'data'))
    assert 0 < chapters.run(path, inplace=False) < 120
    assert not nbformat.read(path, as_version=4).cells[0].outputs  # not stored
    chapters.run(path, inplace=True)
    out = nbformat.read(path, as_version=4).cells[0].outputs
    assert out and out[0]['text'].strip() == str(tmp_path/'data')
