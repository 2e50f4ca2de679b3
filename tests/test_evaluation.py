"""Tests of `captioning_course.evaluation`: the same numbers as `pycocoevalcap` called by hand, no Java process left
behind, many systems scored at once as each alone with two Java starts, object recall on hand-written captions and
scenes, and `evaluate` and `evaluate_many` on both data routes."""
import os, subprocess
from collections import Counter
from pathlib import Path

import pytest
from pycocoevalcap.bleu.bleu import Bleu
from pycocoevalcap.cider.cider import Cider
from pycocoevalcap.meteor.meteor import Meteor
from pycocoevalcap.rouge.rouge import Rouge
from pycocoevalcap.tokenizer.ptbtokenizer import PTBTokenizer

from captioning_course.data import load_records, load_scenes
from captioning_course.embedded import embedded_dataset
from captioning_course.files import atomic_write_json
from captioning_course.data import log
from captioning_course.evaluation import (METRICS, coco_scores, coco_scores_many, evaluate, evaluate_many, exact_match,
                                          load_references, meteor_scorer, named_objects, object_recall, object_scores,
                                          ptb_tokenize, scores_table)

REFS = {7: ['a small red circle', 'there is a little red circle', 'a red disc on a grey background'],
        8: ['a big blue star and a green cross', 'a green cross to the right of a blue star'],
        9: ['two yellow squares and a white triangle', 'a white triangle and two yellow boxes'],
        11: ['a purple diamond', 'a drawing of a purple rhombus']}
PREDS = {7: 'A small red circle.', 8: 'a large blue star and a green plus sign',
         9: 'a white triangle and two yellow squares', 11: 'an orange circle'}


def by_hand(preds, refs):
    "The numbers of `pycocoevalcap`, called as its `COCOEvalCap.evaluate` does, less SPICE."
    tok = PTBTokenizer()
    gts = tok.tokenize({i: [{'caption': c} for c in caps] for i, caps in refs.items()})
    res = tok.tokenize({i: [{'caption': c}] for i, c in preds.items()})
    out, per_image = {}, {}
    meteor = Meteor()
    for scorer, names in [(Bleu(4), METRICS[:4]), (meteor, ['METEOR']), (Rouge(), ['ROUGE-L']), (Cider(), ['CIDEr'])]:
        score, scores = scorer.compute_score(gts, res)
        if len(names) == 1: score, scores = [score], [scores]
        out.update(zip(names, score))
        for name, column in zip(names, scores): per_image[name] = list(column)
    meteor.__del__()
    return out, per_image


def children():
    "Process ids of this process' children (Linux)."
    return {int(p) for t in Path(f'/proc/{os.getpid()}/task').iterdir() for p in (t/'children').read_text().split()}


@pytest.fixture(scope='module')
def scores(): return coco_scores(PREDS, REFS)


def test_reproduces_pycocoevalcap(scores):
    expected, expected_per_image = by_hand(PREDS, REFS)
    corpus, per_image = scores
    assert list(corpus) == list(METRICS) and list(per_image) == list(PREDS)
    for k in METRICS:
        assert corpus[k] == pytest.approx(expected[k], abs=1e-9), k
        assert [per_image[i][k] for i in PREDS] == pytest.approx(expected_per_image[k], abs=1e-9), k
    assert per_image[7]['BLEU-4'] == pytest.approx(1) and per_image[7]['METEOR'] == pytest.approx(1)
    assert per_image[11] == pytest.approx(dict.fromkeys(METRICS, 0), abs=1e-6)
    assert 0 < corpus['BLEU-4'] < corpus['BLEU-1'] < 1 and corpus['CIDEr'] > 1


def test_repeated_calls_agree_and_leave_no_java_process(scores):
    before = children() if Path('/proc/self/task').exists() else None
    assert coco_scores(PREDS, REFS) == scores
    with meteor_scorer() as m: pass
    assert m.meteor_p.returncode is not None
    if before is not None: assert children() - before == set()


def test_tokenizer_and_misuse():
    assert ptb_tokenize({1: ['A red circle.', 'Two  blue, stars!'], 2: [''], 3: ['a red\rdisc\nnow']}) == \
        {1: ['a red circle', 'two blue stars'], 2: [''], 3: ['a red disc now']}
    with pytest.raises(ValueError, match='no predictions'): coco_scores({}, REFS)
    with pytest.raises(KeyError, match=r'no reference captions for image ids \[5\]'): coco_scores({5: 'a'}, REFS)
    with pytest.raises(TypeError, match='one caption string'): coco_scores({7: ['a red circle']}, REFS)
    corpus, per_image = coco_scores({7: '', 8: 'a big blue star and a green cross'}, REFS)
    assert per_image[7]['METEOR'] == 0 and per_image[8]['BLEU-1'] == pytest.approx(1)


SYSTEMS = {'preds': PREDS, 'circles': {i: 'a red circle' for i in REFS},
           'two images': {11: 'a purple diamond', 8: 'a blue star and a green cross'}}


def java_starts(monkeypatch):
    "A list that gets the command of every process started through `subprocess.Popen` from now on."
    started = []
    class Counting(subprocess.Popen):
        def __init__(self, args, *a, **kw): started.append(args); super().__init__(args, *a, **kw)
    monkeypatch.setattr(subprocess, 'Popen', Counting)
    return started


def n_java(started): return sum(isinstance(a, list) and a[0] == 'java' for a in started)


def test_many_systems_score_as_each_alone_with_two_java_starts(monkeypatch, scores):
    started = java_starts(monkeypatch)
    many = coco_scores_many(SYSTEMS, REFS)
    assert n_java(started) == 2  # one tokenizer run, one METEOR process, for three systems
    started.clear()
    alone = {name: coco_scores(p, REFS) for name, p in SYSTEMS.items() if name != 'preds'}
    assert n_java(started) == 2 * 2  # two per system, one at a time
    assert many == {'preds': scores, **alone}  # bit for bit
    assert list(many) == list(SYSTEMS) and list(many['two images'][1]) == [11, 8]


def test_many_systems_errors_name_the_system(monkeypatch):
    started = java_starts(monkeypatch)
    with pytest.raises(ValueError, match='no systems to score'): coco_scores_many({}, REFS)
    with pytest.raises(TypeError, match='system 7: predictions are a dict'): coco_scores_many(PREDS, REFS)
    with pytest.raises(ValueError, match="system 'empty': no predictions"): coco_scores_many({'ok': PREDS, 'empty': {}}, REFS)
    with pytest.raises(KeyError, match=r"system 'beam': no reference captions for image ids \[5\]"):
        coco_scores_many({'ok': PREDS, 'beam': {7: 'a', 5: 'b'}}, REFS)
    with pytest.raises(TypeError, match="system 'lists': a prediction is one caption string"):
        coco_scores_many({'ok': PREDS, 'lists': {7: ['a red circle']}}, REFS)
    assert n_java(started) == 0  # every system is checked before Java starts
    with pytest.raises(KeyError) as e: coco_scores({5: 'a'}, REFS)
    assert 'system' not in str(e.value)  # the one system of `coco_scores` has no name


def test_missing_java_is_named(monkeypatch, tmp_path):
    monkeypatch.setenv('PATH', str(tmp_path))
    with pytest.raises(OSError, match='Java not found.*install a Java runtime'): coco_scores(PREDS, REFS)


def obj(colour, shape, size='small'): return dict(shape=shape, colour=colour, size=size, row=0, col=0)


SCENE = dict(objects=[obj('red', 'circle'), obj('red', 'circle', 'large'), obj('blue', 'star')])


def test_named_objects_reads_synonyms_plurals_and_counts():
    assert named_objects('A big red disc, two little blue boxes and three green plus signs!') == \
        Counter({('red', 'circle'): 1, ('blue', 'square'): 2, ('green', 'cross'): 3})
    assert named_objects('a purple rhombus above two black crosses') == \
        Counter({('purple', 'diamond'): 1, ('black', 'cross'): 2})
    assert named_objects('a red thing, a circle, and a grey background') == Counter()


@pytest.mark.parametrize('caption, recall, exact', [
    ('two red circles and a blue star', 1, True),
    ('a blue star and two little red discs', 1, True),              # synonym, plural, another order
    ('a red circle, a red circle and a blue star', 1, True),        # counted phrase by phrase
    ('a red circle and a blue star', 2/3, False),                   # one red circle of two
    ('three red circles and a blue star', 1, False),                # one too many: each object matched once
    ('two red circles and a green star', 2/3, False),               # wrong colour
    ('two red circles, a blue star and a white cross', 1, False),   # an extra object
    ('a red star and a blue circle', 0, False),                     # colours and shapes wrongly paired
    ('', 0, False)])
def test_object_recall_and_exact_match(caption, recall, exact):
    assert object_recall(caption, SCENE) == pytest.approx(recall)
    assert exact_match(caption, SCENE) is exact


def test_object_scores_pool_objects():
    scenes = {1: SCENE, 2: dict(objects=[obj('white', 'cross')]), 3: dict(objects=[obj('red', 'star')])}
    got = object_scores({1: 'a red circle and a blue star', 2: 'a white plus sign', 3: 'a blue star'}, scenes)
    assert got == {'object recall': 3/5, 'recall 1 object': 1/2, 'recall 3 objects': 2/3, 'exact match': 1/3}


def test_coco_route_has_no_object_recall(tmp_path, scores):
    atomic_write_json(tmp_path/'annotations'/'captions_val2017.json', dict(
        images=[dict(id=i, file_name=f'{i:012d}.jpg', width=8, height=8) for i in REFS],
        annotations=[dict(id=10*i + k, image_id=i, caption=c) for i, caps in REFS.items() for k, c in enumerate(caps)]))
    references, scenes = load_references([9, 7], tmp_path)
    assert references == {9: REFS[9], 7: REFS[7]} and scenes is None
    figures = evaluate(PREDS, tmp_path)
    assert list(figures) == ['images', *METRICS] and figures['images'] == 4
    assert {k: figures[k] for k in METRICS} == scores[0]
    with pytest.raises(KeyError, match=r'image ids \[3\] are not in the validation split'): evaluate({3: 'a'}, tmp_path)


def test_evaluate_many_is_evaluate_of_each_warning_once(tmp_path, monkeypatch):
    atomic_write_json(tmp_path/'annotations'/'captions_val2017.json', dict(
        images=[dict(id=i, file_name=f'{i:012d}.jpg', width=8, height=8) for i in REFS],
        annotations=[dict(id=10*i + k, image_id=i, caption=c) for i, caps in REFS.items() for k, c in enumerate(caps)]))
    warnings = []
    monkeypatch.setattr(log, 'warning', lambda *a, **kw: warnings.append(a))
    many = evaluate_many(SYSTEMS, tmp_path)
    assert len(warnings) == 1 and 'no scenes' in warnings[0][0]  # once, not once per system
    assert list(many) == list(SYSTEMS) and many['two images'] == evaluate(SYSTEMS['two images'], tmp_path)
    assert {k: many['preds'][k] for k in METRICS} == coco_scores(PREDS, REFS)[0] and many['preds']['images'] == 4
    assert many['two images']['images'] == 2 and list(many['two images']) == ['images', *METRICS]
    with pytest.raises(KeyError, match=r"system 'beam': image ids \[3\] are not in the validation split"):
        evaluate_many({'ok': PREDS, 'beam': {7: 'a', 3: 'b'}}, tmp_path)
    with pytest.raises(TypeError, match="system 'x': predictions are a dict"): evaluate_many({'x': ['a']}, tmp_path)


def test_embedded_route_has_object_recall(tmp_path):
    root = embedded_dataset(tmp_path/'e', n_train=6, n_val=8, seed=5)
    ids, _, captions = load_records(False, root)
    for caps, scene in zip(captions, load_scenes(False, root)):
        assert all(exact_match(c, scene) for c in caps)  # every true caption names exactly its scene
    figures = evaluate({i: caps[0] for i, caps in zip(ids, captions)}, root)
    assert figures['object recall'] == figures['exact match'] == 1
    assert set(figures) >= {'images', *METRICS, 'object recall', 'exact match'}
    train_ids = load_records(True, root).ids
    assert evaluate({train_ids[0]: 'a red circle'}, root, train=True)['images'] == 1
    systems = {'truth': {i: caps[0] for i, caps in zip(ids, captions)}, 'fixed': {i: 'a red circle' for i in ids[2:]}}
    many = evaluate_many(systems, root)
    assert many == {'truth': figures, 'fixed': evaluate(systems['fixed'], root)}
    assert many['fixed']['images'] == len(ids) - 2 and many['fixed']['object recall'] < 1


def test_scores_table():
    assert scores_table({'a': {'x': 0.5, 'n': 3}, 'b': {'x': 1.0}}, digits=2) == \
        '| | x | n |\n|---|---|---|\n| a | 0.50 | 3 |\n| b | 1.00 |  |'
