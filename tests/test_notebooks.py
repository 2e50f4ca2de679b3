"""Tests of the committed notebooks themselves: what a reader of the docs site sees in their stored outputs."""
import json, re
from pathlib import Path

import pytest

NBS = sorted((Path(__file__).parent.parent/'nbs').glob('*.ipynb'))
TF_LOG = re.compile(r'^[IWEF]\d{4} \d\d:\d\d:\d+\.\d+ |absl::InitializeLog|oneDNN|cuInit|cudart_stub|cuda_platform|'
                    r'To enable the following instructions|WARNING:tensorflow:|PTBTokenizer tokenized|\{.testlen.:', re.M)


def output_texts(nb):
    for i, cell in enumerate(nb['cells']):
        for out in cell.get('outputs', []):
            text = out.get('text') if out.get('output_type') == 'stream' else out.get('data', {}).get('text/plain')
            if text: yield i, ''.join(text)


@pytest.mark.parametrize('path', NBS, ids=[p.name for p in NBS])
def test_no_log_lines_in_stored_outputs(path):
    found = [(i, m.group(0)) for i, text in output_texts(json.loads(path.read_text())) for m in TF_LOG.finditer(text)]
    assert not found, f'{path.name}: log lines (TensorFlow, pycocoevalcap) in the outputs of cells {sorted({i for i, _ in found})}'


CHAPTERS = [p for p in NBS if p.name[0].isdigit()]
COLAB = 'https://colab.research.google.com/github/captioning-course/captioning_course/blob/main/nbs/'
BADGE = 'https://colab.research.google.com/assets/colab-badge.svg'  # absolute: Colab shows a notebook without its folder


def source(cell): return ''.join(cell['source'])


def colab_cell(nb):
    return next(source(c) for c in nb['cells'] if c['cell_type'] == 'code' and "'google.colab' in sys.modules" in source(c))


@pytest.mark.parametrize('path', CHAPTERS, ids=[p.name for p in CHAPTERS])
def test_chapter_opens_and_closes_the_same_way(path):
    cells = json.loads(path.read_text())['cells']
    md = [source(c) for c in cells if c['cell_type'] == 'markdown']
    assert md[0].lstrip().startswith('# '), f'{path.name}: the first markdown cell is not the title'
    assert f'({BADGE})]({COLAB}{path.name})' in md[1], f'{path.name}: no Open-in-Colab badge after the title'
    assert colab_cell({'cells': cells[:4]}), f'{path.name}: no Colab install cell at the top'
    opening = '\n'.join(md[:5])
    for words in ('**What you will build:**', '**What you need:**'):
        assert words in opening, f'{path.name}: the opening does not say {words}'
    last = max(i for i, m in enumerate(md) if m.startswith('## '))
    closing = '\n'.join(md[last:])
    assert md[last].startswith('## Summary'), f'{path.name}: the last section is {md[last].splitlines()[0]!r}, not ## Summary'
    for words in ('**The library now holds:**', '**Next:**'):
        assert words in closing, f'{path.name}: the Summary does not say {words}'


def run_colab_cell(code, monkeypatch, in_colab):
    import subprocess, sys, types
    calls = []
    monkeypatch.setattr(subprocess, 'run', lambda *a, **kw: calls.append(a))
    if in_colab: monkeypatch.setitem(sys.modules, 'google.colab', types.ModuleType('google.colab'))
    else: monkeypatch.delitem(sys.modules, 'google.colab', raising=False)
    exec(code, {})
    return calls


def test_the_colab_cell_installs_only_in_colab(monkeypatch, tmp_path):
    import os
    cells = {colab_cell(json.loads(p.read_text())) for p in CHAPTERS}
    assert len(cells) == 1, 'the chapters\' Colab cells differ'
    code = cells.pop()
    monkeypatch.chdir(tmp_path)
    assert run_colab_cell(code, monkeypatch, in_colab=False) == []
    assert Path.cwd() == tmp_path
    repo = tmp_path/'content'/'captioning_course'
    (repo/'nbs').mkdir(parents=True)  # what the clone makes
    code = code.replace("'/content/captioning_course'", repr(str(repo)))
    assert code.count(repr(str(repo))) == 1, 'the Colab cell names its clone once'
    monkeypatch.setattr(os.path, 'isdir', lambda p: False)  # a fresh Colab machine: no clone yet
    clone, install = run_colab_cell(code, monkeypatch, in_colab=True)
    cwd = Path.cwd()
    monkeypatch.undo()
    assert clone[0][:2] == ['git', 'clone'] and clone[0][-2:] == ['https://github.com/captioning-course/captioning_course', str(repo)]
    assert install[0][1:4] == ['-m', 'pip', 'install'] and install[0][-1] == str(repo)  # README's install: everything a chapter imports
    assert cwd == repo/'nbs', 'in Colab a chapter runs in the clone\'s nbs/, as in a clone of your own'


@pytest.mark.parametrize('path', NBS, ids=[p.name for p in NBS])
def test_every_notebook_names_its_kernel(path):
    spec = json.loads(path.read_text())['metadata'].get('kernelspec', {})
    assert spec.get('name') == 'python3' and spec.get('language') == 'python', f'{path.name}: kernelspec {spec}'
