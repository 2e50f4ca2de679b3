"""Tests of `tests/coco_fixture.py`: the small COCO-2017-layout dataset of real photographs has the oddities of the
real files, the COCO schema and nothing more, and the same seed gives the same bytes."""
import json, re, sys
from pathlib import Path

import pytest
from PIL import Image, ImageOps

sys.path.insert(0, str(Path(__file__).parent))  # also under --import-mode=importlib, which adds no test folder
from coco_fixture import CAPTIONS, make_coco_fixture

SPLITS = ('train', 'val')


@pytest.fixture(scope='module')
def root(tmp_path_factory): return make_coco_fixture(tmp_path_factory.mktemp('coco'))


@pytest.fixture(scope='module')
def coco(root): return {s: json.loads((root/'annotations'/f'captions_{s}2017.json').read_text()) for s in SPLITS}


@pytest.fixture(scope='module')
def files(root, coco):
    "(split, JSON image entry, opened file) for every image."
    out = [(s, im, Image.open(root/f'{s}2017'/im['file_name'])) for s in SPLITS for im in coco[s]['images']]
    yield out
    for *_, f in out: f.close()


def test_layout_and_schema(root, coco):
    assert sorted(p.name for p in (root/'annotations').iterdir()) == ['captions_train2017.json', 'captions_val2017.json']
    assert [len(coco[s]['images']) for s in SPLITS] == [48, 16]
    for s in SPLITS:
        assert list(coco[s]) == ['info', 'licenses', 'images', 'annotations']
        assert coco[s]['info']['year'] == 2017 and {l['id'] for l in coco[s]['licenses']} == set(range(1, 9))
        assert sorted(p.name for p in (root/f'{s}2017').iterdir()) == sorted(im['file_name'] for im in coco[s]['images'])
        for im in coco[s]['images']:
            assert set(im) == {'id', 'file_name', 'width', 'height', 'license', 'coco_url', 'flickr_url', 'date_captured'}
        assert all(set(a) == {'id', 'image_id', 'caption'} for a in coco[s]['annotations'])
    assert not re.search(r'"(objects|background)"', ''.join(json.dumps(c) for c in coco.values()))


def test_sparse_unique_12_digit_ids(coco):
    ids = [im['id'] for s in SPLITS for im in coco[s]['images']]
    assert len(set(ids)) == len(ids) and 1 <= min(ids) and max(ids) <= 581929 and max(ids) > 10*len(ids)
    assert all(im['file_name'] == f"{im['id']:012d}.jpg" for s in SPLITS for im in coco[s]['images'])
    ann_ids = [a['id'] for s in SPLITS for a in coco[s]['annotations']]
    assert len(set(ann_ids)) == len(ann_ids)


def test_sizes_and_orientations(files):
    sizes = [(im['width'], im['height']) for _, im, _ in files]
    assert all(100 <= w <= 1000 and 100 <= h <= 1000 for w, h in sizes)
    assert min(map(min, sizes)) <= 160 and max(map(max, sizes)) >= 1000
    assert any(w > h for w, h in sizes) and any(w < h for w, h in sizes)


def test_odd_files_in_each_split(files):
    for s in SPLITS:
        fs = [(im, f) for split, im, f in files if split == s]
        assert any(f.format == 'JPEG' and f.mode == 'L' for _, f in fs)
        assert any(f.format == 'JPEG' and f.mode == 'CMYK' for _, f in fs)
        assert {f.getexif().get(0x0112) for _, f in fs} >= {6, 8}
        assert sum(f.format == 'PNG' for _, f in fs) == 1
        assert sum(f.format == 'JPEG' and f.mode == 'RGB' and not f.getexif() for _, f in fs) >= len(fs) - 5


def test_png_bytes_behind_a_jpg_name(root, files):
    heads = [(root/f'{s}2017'/im['file_name']).read_bytes()[:8] for s, im, _ in files]
    assert sum(h == b'\x89PNG\r\n\x1a\n' for h in heads) == 2
    assert all(h[:3] == b'\xff\xd8\xff' for h in heads if not h.startswith(b'\x89PNG'))


def test_json_sizes_are_those_after_exif_rotation(files):
    for _, im, f in files:
        assert ImageOps.exif_transpose(f).size == (im['width'], im['height'])
        if f.getexif().get(0x0112) in (6, 8): assert f.size == (im['height'], im['width'])


def test_captions(coco):
    for s in SPLITS:
        per_image = {im['id']: 0 for im in coco[s]['images']}
        for a in coco[s]['annotations']: per_image[a['image_id']] += 1
        counts = sorted(per_image.values())
        assert counts[0] == 0 and 5 <= counts[1] and counts[-1] <= 7
    caps = [a['caption'] for s in SPLITS for a in coco[s]['annotations']]
    assert any(c[0].isupper() for c in caps) and any(c[0].islower() for c in caps)
    assert any(',' in c for c in caps) and any(c.rstrip().endswith(('!', '?')) for c in caps)
    assert any(c.endswith('\n') for c in caps) and any(c.endswith(' ') for c in caps)
    assert {c.strip().rstrip('.!?').lower() for c in caps} <= {t.rstrip('.!?').lower() for v in CAPTIONS.values() for t in v}


def test_same_seed_same_bytes(root, tmp_path_factory):
    def tree(r): return {p.relative_to(r): p.read_bytes() for p in sorted(r.rglob('*')) if p.is_file()}
    again = tree(make_coco_fixture(tmp_path_factory.mktemp('again')))
    assert again == tree(root)
    assert tree(make_coco_fixture(tmp_path_factory.mktemp('other'), seed=1)) != again
