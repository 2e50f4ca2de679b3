"""Tests of `captioning_course.data`: COCO parsing, the resumable download, safe extraction,
the embedded dataset and `load_image`."""
import http.server, io, json, re, shutil, threading, zipfile
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from captioning_course.data import ImageError, load_image, load_records, load_scenes, maybe_download_and_extract
from captioning_course.embedded import embedded_dataset
from captioning_course.files import atomic_write_json, download, safe_extract


class RangeServer(http.server.ThreadingHTTPServer):
    "Serves `files` (path -> bytes) on 127.0.0.1 with HTTP Range support; can cut the next response short."
    def __init__(self, files):
        self.files, self.requests, self.cut_after = files, [], None
        super().__init__(('127.0.0.1', 0), RangeHandler)
    @property
    def url(self): return f'http://127.0.0.1:{self.server_address[1]}/'


class RangeHandler(http.server.BaseHTTPRequestHandler):
    def log_message(self, *args): pass
    def do_GET(self):
        srv, path = self.server, self.path.lstrip('/')
        srv.requests.append((path, self.headers.get('Range')))
        if path not in srv.files: return self.send_error(404)
        data, start = srv.files[path], 0
        if rng := self.headers.get('Range'):
            start = int(rng.removeprefix('bytes=').split('-')[0])
            if start >= len(data):
                self.send_response(416); self.end_headers(); return
            self.send_response(206)
            self.send_header('Content-Range', f'bytes {start}-{len(data)-1}/{len(data)}')
        else: self.send_response(200)
        self.send_header('Content-Length', str(len(data) - start))
        self.end_headers()
        body = data[start:]
        if srv.cut_after is not None: body, srv.cut_after = body[:srv.cut_after], None
        self.wfile.write(body)
        self.wfile.flush()


@pytest.fixture
def server():
    srv = RangeServer({})
    t = threading.Thread(target=srv.serve_forever, daemon=True); t.start()
    yield srv
    srv.shutdown(); srv.server_close()


def zip_bytes(entries):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, 'w') as z:
        for name, data in entries.items(): z.writestr(name, data)
    return buf.getvalue()


# --- COCO captions ---------------------------------------------------------------------------------------

def write_captions(root, split, images, captions):
    ann = dict(images=[dict(id=i, file_name=f'{i:012d}.jpg', width=4, height=4) for i in images],
               annotations=[dict(id=k, image_id=i, caption=c) for k, (i, c) in enumerate(captions)])
    atomic_write_json(root/'annotations'/f'captions_{split}2017.json', ann)


def test_load_records_groups_captions_and_leaves_out_uncaptioned(tmp_path, caplog):
    caps = [(7, f'seven {k}') for k in range(7)] + [(2, 'two'), (5, 'five')]
    write_captions(tmp_path, 'val', [5, 9, 7, 2], caps)
    ids, files, captions = load_records(train=False, data_dir=tmp_path)
    assert ids == [2, 5, 7]
    assert files == ['000000000002.jpg', '000000000005.jpg', '000000000007.jpg']
    assert captions[2] == [f'seven {k}' for k in range(7)]
    assert 'left out 1 images without captions' in caplog.text
    assert json.loads((tmp_path/'cache'/'records_val.json').read_text())['skipped'] == 1


def test_records_cache_is_rebuilt_when_annotations_change(tmp_path):
    write_captions(tmp_path, 'train', [1, 2], [(1, 'one')])
    assert load_records(True, tmp_path).ids == [1]
    write_captions(tmp_path, 'train', [1, 2], [(1, 'one'), (2, 'two')])
    assert load_records(True, tmp_path).ids == [1, 2]


def test_bad_annotation_file_names_itself(tmp_path):
    (tmp_path/'annotations').mkdir()
    (tmp_path/'annotations'/'captions_train2017.json').write_text('{"images": [')
    with pytest.raises(ValueError, match='captions_train2017.json'): load_records(True, tmp_path)


# --- download and extraction ------------------------------------------------------------------------------

def test_download_resumes_an_interrupted_transfer(server, tmp_path):
    payload = bytes(range(256))*4000
    server.files['big.zip'] = payload
    server.cut_after = 300_000  # the connection drops after 300 kB
    with pytest.raises(OSError, match='resume'): download(server.url + 'big.zip', tmp_path/'big.zip')
    assert not (tmp_path/'big.zip').exists()
    assert (tmp_path/'big.zip.part').stat().st_size == 300_000
    download(server.url + 'big.zip', tmp_path/'big.zip')
    assert (tmp_path/'big.zip').read_bytes() == payload
    assert server.requests[-1] == ('big.zip', 'bytes=300000-')
    assert not (tmp_path/'big.zip.part').exists()


def test_download_is_idempotent(server, tmp_path):
    server.files['a.bin'] = b'x'*1000
    download(server.url + 'a.bin', tmp_path/'a.bin')
    download(server.url + 'a.bin', tmp_path/'a.bin')
    assert len(server.requests) == 1


def test_download_of_missing_file_fails_clearly(server, tmp_path):
    with pytest.raises(OSError, match='HTTP 404'): download(server.url + 'nope.zip', tmp_path/'nope.zip')


def test_zip_entry_outside_target_is_refused(tmp_path):
    archive = tmp_path/'evil.zip'
    archive.write_bytes(zip_bytes({'ok.txt': 'fine', '../evil': 'gotcha'}))
    target = tmp_path/'out'
    with pytest.raises(ValueError, match=r"evil.zip: entry '\.\./evil'"): safe_extract(archive, target)
    assert not (tmp_path/'evil').exists()
    assert not (target/'ok.txt').exists()  # nothing of a refused archive is extracted


def test_coco_download_and_extract_end_to_end(server, tmp_path):
    ann = dict(images=[dict(id=1, file_name='000000000001.jpg', width=4, height=4)],
               annotations=[dict(id=1, image_id=1, caption='a tiny image')])
    jpg = io.BytesIO(); Image.new('RGB', (4, 4), 'red').save(jpg, 'JPEG')
    server.files = {'zips/train2017.zip': zip_bytes({'train2017/000000000001.jpg': jpg.getvalue()}),
                    'zips/val2017.zip': zip_bytes({'val2017/000000000001.jpg': jpg.getvalue()}),
                    'annotations/annotations_trainval2017.zip': zip_bytes(
                        {f'annotations/captions_{s}2017.json': json.dumps(ann) for s in ('train', 'val')})}
    root = maybe_download_and_extract(tmp_path/'coco', base_url=server.url)
    ids, files, caps = load_records(True, root)
    assert caps == [['a tiny image']]
    assert load_image(root/'train2017'/files[0]).shape == (4, 4, 3)
    n = len(server.requests)
    assert n == 3
    maybe_download_and_extract(tmp_path/'coco', base_url=server.url)
    assert len(server.requests) == n  # already there: nothing downloaded again
    for f in (root/'downloads').iterdir(): f.unlink()  # the 19 GB of archives deleted after unpacking
    maybe_download_and_extract(root, base_url=server.url)
    assert len(server.requests) == n
    shared = tmp_path/'shared'  # a COCO unpacked by someone else: no archives, no marks of ours
    for d in ('train2017', 'val2017', 'annotations'): shutil.copytree(root/d, shared/d)
    from captioning_course.data import prepare_data
    assert maybe_download_and_extract(shared, base_url=server.url) == prepare_data('coco', shared) == shared
    assert len(server.requests) == n and not (shared/'downloads').exists()
    assert load_records(False, shared).captions == [['a tiny image']]


# --- the embedded dataset ---------------------------------------------------------------------------------

def test_embedded_dataset_is_deterministic_and_in_coco_schema(tmp_path):
    a = embedded_dataset(tmp_path/'a', n_train=30, n_val=10, seed=5)
    b = embedded_dataset(tmp_path/'b', n_train=30, n_val=10, seed=5)
    files = sorted(p.relative_to(a) for p in a.rglob('*') if p.is_file())
    assert len([f for f in files if f.suffix == '.jpg']) == 40
    assert all((a/f).read_bytes() == (b/f).read_bytes() for f in files)
    c = embedded_dataset(tmp_path/'c', n_train=30, n_val=10, seed=6)
    assert (a/'annotations'/'captions_train2017.json').read_bytes() != (c/'annotations'/'captions_train2017.json').read_bytes()
    coco = json.loads((a/'annotations'/'captions_train2017.json').read_text())
    assert {'info', 'licenses', 'images', 'annotations'} <= coco.keys()
    for im in coco['images']:
        assert {'id', 'file_name', 'width', 'height', 'license', 'objects'} <= im.keys()
        assert Image.open(a/'train2017'/im['file_name']).size == (im['width'], im['height'])
        assert 1 <= len(im['objects']) <= 3
    assert {'id', 'image_id', 'caption'} == set(coco['annotations'][0])
    ids, _, caps = load_records(True, a)
    assert len(ids) == 30 and all(len(c) == 5 and len(set(c)) == 5 for c in caps)


def test_embedded_captions_name_every_object(tmp_path):
    root = embedded_dataset(tmp_path/'e', n_train=200, n_val=1)
    _, _, caps = load_records(True, root)
    for scene, cs in zip(load_scenes(True, root), caps):
        for c in cs:
            for o in scene['objects']:
                assert o['colour'] in c.split(), (c, scene)


def test_embedded_dataset_variety(tmp_path):
    root = embedded_dataset(tmp_path/'e', n_train=400, n_val=1)
    scenes = load_scenes(True, root)
    objs = [o for s in scenes for o in s['objects']]
    assert len({o['shape'] for o in objs}) >= 6 and len({o['colour'] for o in objs}) == 8
    assert {o['size'] for o in objs} == {'small', 'large'}
    assert {len(s['objects']) for s in scenes} == {1, 2, 3}
    assert len({(s['background']['tone'], s['background']['texture']) for s in scenes}) > 10
    text = ' '.join(c for cs in load_records(True, root).captions for c in cs)
    for words in ('to the left of', 'to the right of', 'above', 'below', 'two '):
        assert words in text


def test_embedded_dataset_refuses_a_folder_with_other_files(tmp_path):
    (tmp_path/'mine.txt').write_text('keep me')
    with pytest.raises(FileExistsError, match='holds other files'): embedded_dataset(tmp_path, n_train=2, n_val=1)
    assert (tmp_path/'mine.txt').read_text() == 'keep me'


def _make(root): return str(embedded_dataset(Path(root), n_train=300, n_val=20))


def test_concurrent_makers_share_one_dataset(tmp_path):
    with ProcessPoolExecutor(2) as pool: roots = list(pool.map(_make, [tmp_path/'e']*2))
    assert roots[0] == roots[1]
    assert len(load_records(True, tmp_path/'e').ids) == 300
    assert sorted(p.name for p in tmp_path.iterdir()) == ['e', 'e.lock']  # no half-built folder left


# --- load_image ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize('mode,fmt', [('L', 'PNG'), ('P', 'PNG'), ('RGBA', 'PNG'), ('CMYK', 'JPEG'),
                                      ('I;16', 'PNG'), ('RGB', 'JPEG'), ('1', 'PNG'), ('LA', 'PNG')])
def test_load_image_gives_rgb_floats(tmp_path, mode, fmt):
    rgb = Image.new('RGB', (12, 8), (200, 100, 50))
    if mode == 'I;16': img = Image.fromarray(np.full((8, 12), 30000, np.uint16))
    elif mode == 'RGBA': img = Image.new('RGBA', (12, 8), (200, 100, 50, 255))
    elif mode == 'P': img = rgb.convert('P', palette=Image.Palette.ADAPTIVE)
    else: img = rgb.convert(mode)
    path = tmp_path/f'img.{fmt.lower()}'
    img.save(path, fmt)
    a = load_image(path)
    assert a.shape == (8, 12, 3) and a.dtype == np.float32
    assert 0 <= a.min() and a.max() <= 1
    if mode in ('RGB', 'RGBA', 'CMYK', 'P'): np.testing.assert_allclose(a[4, 6], [200/255, 100/255, 50/255], atol=0.04)
    if mode == 'I;16': np.testing.assert_allclose(a, 30000/65535, atol=0.01)
    assert load_image(path, size=(6, 4)).shape == (4, 6, 3)


def test_truncated_and_bogus_files_name_themselves(tmp_path):
    good = tmp_path/'good.jpg'
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (64, 64, 3), np.uint8)).save(good)
    (tmp_path/'truncated.jpg').write_bytes(good.read_bytes()[:len(good.read_bytes())//2])
    (tmp_path/'bogus.png').write_bytes(b'\x89PNG not really')
    for name in ('truncated.jpg', 'bogus.png', 'missing.jpg'):
        with pytest.raises(ImageError, match=name): load_image(tmp_path/name)


def test_embedded_captions_use_only_known_words(tmp_path):
    from captioning_course.embedded import BACKGROUNDS, COLOURS, NUMBERS, PLURALS, PREFIXES, SHAPES, SIZES, SURFACES, SYNONYMS
    root = embedded_dataset(tmp_path/'e', n_train=300, n_val=1)
    nouns = {w for s in SHAPES for w in SYNONYMS.get(s, (s,))}
    known = (nouns | {PLURALS.get(n, n + 's') for n in nouns} | set(COLOURS) | set(BACKGROUNDS) | set(NUMBERS.values())
             | {w for s in SIZES for w in SYNONYMS[s]} | set(SURFACES) | set(' '.join(PREFIXES).split())
             | set('a an and on to the left right of above below are'.split()))
    known = {w for k in known for w in k.split()}
    words = {w.strip(',') for cs in load_records(True, root).captions for c in cs for w in c.split()}
    assert words <= known, words - known
    assert 'rhombuses' in words


def test_prepare_data_uses_a_given_coco_layout_folder_as_it_is(tmp_path):
    from captioning_course.data import prepare_data
    root = embedded_dataset(tmp_path/'small', n_train=12, n_val=3)
    assert prepare_data('embedded', root) == root
    assert len(load_records(True, root).ids) == 12  # not replaced by the default-size dataset
    write_captions(tmp_path/'mine', 'train', [1], [(1, 'one')]); write_captions(tmp_path/'mine', 'val', [2], [(2, 'two')])
    for s in ('train', 'val'): (tmp_path/'mine'/f'{s}2017').mkdir()
    assert prepare_data('coco', tmp_path/'mine') == tmp_path/'mine'  # nothing downloaded
    assert prepare_data('embedded', tmp_path/'mine') == tmp_path/'mine'  # a COCO-layout folder is read as COCO, whatever the route


def test_data_dir_setting_names_the_chosen_datasets_folder(monkeypatch, tmp_path):
    from captioning_course.data import default_data_dir
    monkeypatch.setenv('CAPTIONING_DATASET', 'coco'); monkeypatch.setenv('CAPTIONING_DATA_DIR', str(tmp_path/'coco'))
    assert default_data_dir() == default_data_dir('coco') == tmp_path/'coco'
    assert default_data_dir('embedded') != tmp_path/'coco'  # the embedded dataset never lands in the COCO folder


def test_scene_fields_are_read_only_behind_the_embedded_datasets_marker(tmp_path):
    ann = dict(info={'description': 'an export with extra fields'}, licenses=[],
               images=[dict(id=7, file_name='000000000007.jpg', width=4, height=4, objects=['a tag'], background='sky')],
               annotations=[dict(id=1, image_id=7, caption='a dog', objects='extra annotation field')])
    atomic_write_json(tmp_path/'annotations'/'captions_train2017.json', ann)
    assert load_records(True, tmp_path).captions == [['a dog']]  # extra fields on images and annotations are ignored
    assert load_scenes(True, tmp_path) is None
    root = embedded_dataset(tmp_path/'e', n_train=4, n_val=2)
    assert [set(s) for s in load_scenes(False, root)] == [{'objects', 'background'}]*2


def test_the_cache_follows_xdg_cache_home(monkeypatch, tmp_path):
    from captioning_course.data import default_data_dir
    for k in ('CAPTIONING_DATASET', 'CAPTIONING_DATA_DIR'): monkeypatch.delenv(k, raising=False)
    monkeypatch.setenv('XDG_CACHE_HOME', str(tmp_path/'cache'))
    assert default_data_dir('coco') == tmp_path/'cache'/'captioning_course'/'coco'
    monkeypatch.delenv('XDG_CACHE_HOME')
    assert default_data_dir('embedded') == Path.home()/'.cache'/'captioning_course'/'embedded'


@pytest.mark.parametrize('setting', ['', '1'])
def test_tensorflows_logs_are_quieted_unless_asked_for(setting):
    "Importing the package quiets TensorFlow; CAPTIONING_TF_LOGS=1 leaves TensorFlow as it is, logs and all."
    import os, subprocess, sys
    env = {k: v for k, v in os.environ.items() if k not in ('TF_CPP_MIN_LOG_LEVEL', 'CAPTIONING_TF_LOGS')}
    if setting: env['CAPTIONING_TF_LOGS'] = setting
    code = ("import os, sys, logging, captioning_course\n"
            "hooked = any(type(f).__name__ == '_QuietTensorFlow' for f in sys.meta_path)\n"
            "print(os.environ.get('TF_CPP_MIN_LOG_LEVEL'), hooked, bool(logging.getLogger('tensorflow').filters))\n"
            "import tensorflow as tf; tf.constant(1.0) + 1")
    res = subprocess.run([sys.executable, '-c', code], env=env, capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr[-2000:]
    if setting: assert res.stdout.split() == ['None', 'False', 'False']
    else:
        assert res.stdout.split() == ['3', 'True', 'True']
        assert not re.search(r'oneDNN|^[IWE]0000|cuInit|cudart', res.stderr, re.M), res.stderr
