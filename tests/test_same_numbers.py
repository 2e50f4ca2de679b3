"""`.ci/same-numbers`, which CI's newcomer stage runs after README's main job: it reads the figures the committed
chapters show for the main job's training and flags a run that lands outside their tolerance."""
import importlib.machinery, importlib.util
from pathlib import Path

SCRIPT = Path(__file__).resolve().parent.parent/'.ci'/'same-numbers'
_loader = importlib.machinery.SourceFileLoader('same_numbers', str(SCRIPT))
sn = importlib.util.module_from_spec(importlib.util.spec_from_loader('same_numbers', _loader)); _loader.exec_module(sn)


def test_the_committed_chapters_show_every_figure_it_compares():
    shown = sn.stored()
    assert set(sn.TOLERANCE) <= set(shown)
    assert 0 < shown['final_loss'] < 3 and 0 < shown['object recall'] <= 1 and shown['CIDEr'] > 1


def test_a_run_outside_the_tolerance_is_flagged():
    shown = dict(final_loss=0.7, **{'object recall': 0.6, 'BLEU-4': 0.6, 'CIDEr': 3.3})
    assert all(r[-1] for r in sn.compare(dict(shown, CIDEr=3.4), shown))
    bad = {r[0]: r[-1] for r in sn.compare(dict(shown, **{'object recall': 0.5}), shown)}
    assert bad == {'final_loss': True, 'object recall': False, 'BLEU-4': True, 'CIDEr': True}


def test_a_table_row_is_read_by_its_column_names():
    table = '| | images | CIDEr | object recall |\n|---|---|---|---|\n| other | 5 | 1.0 | 0.2 |\n| tutorial decoder, greedy | 1000 | 3.281 | 0.599 |'
    cells = [dict(cell_type='code', outputs=[dict(data={'text/markdown': table})])]
    assert sn.stored_scores(cells) == {'images': 1000.0, 'CIDEr': 3.281, 'object recall': 0.599}
