"""Every figure in the chapters' prose comes from an output a reader can see.

A measured figure in a markdown cell (a decimal such as 0.61, a ratio such as 2.6x, a percentage, a time such as
40 s) must be printed by an output of the same notebook, written in its code (a setting), or printed by an output
of a chapter that the same paragraph names ("chapter 08b", "(08f)", a link to `08f_transformer.ipynb`). A figure
matches when an output's number rounds to it at the precision the prose gives (0.61 matches 0.614; 12% matches 0.12).
Integers without a unit (sizes, counts) are settings, not measurements, and are not checked; neither is text in
code spans, LaTeX or links."""
import json, re
from pathlib import Path

import pytest

NBS = Path(__file__).parent.parent/'nbs'
FIGURE = re.compile(r'(?<![\w.,\-/])(\d+(?:\.\d+)?)(\s?(?:x\b|×|%|s\b|ms\b))?(?![\w.,]*\d)')
CHAPTER = re.compile(r'(?<![\w.])(0[1-9][a-f]?|90)(?:_\w+(?:\.ipynb|\.html))?(?![\w.])')
NUMBER = re.compile(r'-?\d+(?:\.\d+)?(?:e-?\d+)?')
NOT_PROSE = re.compile(r'```.*?```|`[^`]*`|\$\$.*?\$\$|\$[^$]*\$|\\\[.*?\\\]|\]\([^)]*\)|<[^>]*>|https?://\S+', re.S)
CONSTANTS = re.compile(r'(?:Python|METEOR|version|Quarto|nbdev|Keras|TensorFlow)\s+$')  # versions, not measurements


def prefix(path): return path.stem.split('_')[0]
NOTEBOOKS = {prefix(p): json.loads(p.read_text()) for p in sorted(NBS.glob('*.ipynb'))}


def numbers(nb, kind):
    "Every number in a notebook's outputs (`kind='out'`) or its code cells' sources (`kind='code'`)."
    texts = []
    for c in nb['cells']:
        if kind == 'code' and c['cell_type'] == 'code': texts.append(''.join(c['source']))
        for o in c.get('outputs', []) if kind == 'out' else []:
            data = o.get('data', {})
            for t in (o.get('text'), data.get('text/plain'), data.get('text/markdown'), data.get('text/html')):
                if t: texts.append(''.join(t))
    return [float(m) for m in NUMBER.findall(' '.join(texts).replace(',', ''))]


OUTPUTS = {k: numbers(nb, 'out') for k, nb in NOTEBOOKS.items()}
CODE = {k: numbers(nb, 'code') for k, nb in NOTEBOOKS.items()}


def shown(value, decimals, pool):
    "Does a number in `pool`, read as itself, as a percentage or as a fraction, round to `value`?"
    return any(round(w*s, decimals) == value for w in pool for s in (1, 100, 0.01))


def unsupported(key):
    "(cell, figure, context) for every figure in `key`'s prose that no output it may cite shows."
    out = []
    for i, cell in enumerate(NOTEBOOKS[key]['cells']):
        if cell['cell_type'] != 'markdown': continue
        for para in NOT_PROSE.sub(' ', ''.join(cell['source'])).split('\n\n'):
            cited = {m for m in CHAPTER.findall(para) if m in NOTEBOOKS}
            pool = OUTPUTS[key] + CODE[key] + [w for c in cited for w in OUTPUTS[c]]
            for m in FIGURE.finditer(para):
                s, unit = m.group(1), (m.group(2) or '').strip()
                if ('.' not in s and not unit) or CONSTANTS.search(para[:m.start()]): continue
                if not shown(float(s), len(s.split('.')[1]) if '.' in s else 0, pool):
                    out.append((i, s + unit, ' '.join(para[max(0, m.start() - 60):m.end() + 30].split())))
    return out


def test_the_checker_catches_a_figure_no_output_shows():
    nb = {'cells': [{'cell_type': 'markdown', 'source': ['Recall 0.61 above, 2.5x faster, as 08z shows 0.99.']},
                    {'cell_type': 'code', 'source': ['x = 1'], 'outputs': [{'output_type': 'stream', 'text': ['0.614\n']}]}]}
    NOTEBOOKS['zz'], OUTPUTS['zz'], CODE['zz'] = nb, numbers(nb, 'out'), numbers(nb, 'code')
    try: assert [f for _, f, _ in unsupported('zz')] == ['2.5x', '0.99']
    finally: del NOTEBOOKS['zz'], OUTPUTS['zz'], CODE['zz']


@pytest.mark.parametrize('key', sorted(NOTEBOOKS))
def test_every_figure_in_prose_is_in_an_output(key):
    bad = unsupported(key)
    assert not bad, f'{key}: figures in prose that no output of this chapter (or of a chapter the paragraph names) shows:\n' + \
        '\n'.join(f'  cell {i}: {f!r} in "...{ctx}..."' for i, f, ctx in bad)
