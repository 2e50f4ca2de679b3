"""The tutorial's own route, offline: a COCO-layout folder of real photographs, VGG16 from a local weights file,
and the command line on it, with no network access."""
import json, os, re, subprocess, sys, time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from captioning_course.cli import main
from captioning_course.data import load_records, load_scenes, prepare_data

VENV_BIN = Path(sys.executable).parent
OFFLINE = dict(http_proxy='http://127.0.0.1:9', https_proxy='http://127.0.0.1:9', HTTP_PROXY='http://127.0.0.1:9',
               HTTPS_PROXY='http://127.0.0.1:9', no_proxy='', NO_PROXY='')  # any download fails at once


def run_cli(*args, env=None, timeout=120):
    "Run `captioning-course` in a fresh process; return (status, stdout, stderr, seconds)."
    t0 = time.time()
    res = subprocess.run([str(VENV_BIN/'captioning-course'), *map(str, args)], capture_output=True, text=True,
                         timeout=timeout, env={**os.environ, **OFFLINE, **(env or {})})
    return res.returncode, res.stdout, res.stderr, time.time() - t0


def test_a_coco_folder_is_used_as_it_is(coco_fixture):
    assert prepare_data('coco', coco_fixture) == coco_fixture
    assert not (coco_fixture/'downloads').exists()
    assert load_scenes(False, coco_fixture) is None  # real COCO has no scenes
    ids, files, caps = load_records(False, coco_fixture)
    n_images = len(json.loads((coco_fixture/'annotations'/'captions_val2017.json').read_text())['images'])
    assert len(ids) == n_images - 1  # the image without captions is left out
    assert all(c == c.strip() for cs in caps for c in cs)


def test_without_weights_or_internet_the_imagenet_route_names_the_setting(tmp_path):
    code = "from captioning_course.transfer import vgg16\nvgg16('imagenet')"
    env = {**os.environ, **OFFLINE, 'HOME': str(tmp_path), 'KERAS_HOME': str(tmp_path/'.keras')}
    env.pop('CAPTIONING_VGG16_WEIGHTS', None)
    t0 = time.time()
    res = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True, env=env, timeout=120)
    assert res.returncode != 0 and 'CAPTIONING_VGG16_WEIGHTS' in res.stderr.strip().splitlines()[-1]
    assert time.time() - t0 < 60
    env['CAPTIONING_VGG16_WEIGHTS'] = str(tmp_path/'missing.h5')
    res = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True, env=env, timeout=120)
    assert 'CAPTIONING_VGG16_WEIGHTS' in res.stderr.strip().splitlines()[-1] and 'missing.h5' in res.stderr


def test_the_weights_setting_loads_keras_legacy_file(vgg16_weights, monkeypatch):
    import h5py
    from captioning_course.transfer import vgg16
    monkeypatch.setenv('CAPTIONING_VGG16_WEIGHTS', str(vgg16_weights))
    im = vgg16('imagenet')
    with h5py.File(vgg16_weights) as f:
        kernel = f['fc2'][f['fc2'].attrs['weight_names'][0]][()]
    np.testing.assert_array_equal(im.model.get_layer('fc2').kernel.numpy(), kernel)
    assert im.transfer_values_size() == 4096


def test_tutorial_without_java_stops_at_once_with_one_line(tmp_path):
    status, out, err, seconds = run_cli('tutorial', '--out', tmp_path/'out', env={'PATH': str(VENV_BIN)})
    assert status == 1 and seconds < 10, (status, seconds, err)
    assert err.strip().count('\n') == 0 and 'Java' in err
    assert not (tmp_path/'out').exists()


@pytest.fixture(scope='module')
def coco_run(coco_fixture, vgg16_weights, tmp_path_factory):
    "`captioning-course tutorial --dataset coco` on the photographs, VGG16 from the weights file, offline."
    out = tmp_path_factory.mktemp('coco-run')/'out'
    env = {'CAPTIONING_VGG16_WEIGHTS': str(vgg16_weights)}
    status, stdout, err, _ = run_cli('tutorial', '--dataset', 'coco', '--data-dir', coco_fixture, '--out', out,
                                     '--epochs', '2', env=env, timeout=1200)
    assert status == 0, err[-3000:]
    return out, env, stdout + err


def test_coco_tutorial_scores_the_captioned_validation_images_only(coco_run, coco_fixture):
    out, _, log = coco_run
    m = json.loads((out/'metrics.json').read_text())
    assert m['images'] == len(load_records(False, coco_fixture).ids) and m['image_model'] == 'vgg16'
    assert 'object recall' not in m and 0 <= m['BLEU-4'] <= 1
    assert (out/'samples.png').stat().st_size > 10_000 and not (out/'image_model.keras').exists()
    for noise in ('I0000', 'E0000', 'oneDNN', 'cuInit', 'cudart'): assert noise not in log, noise
    assert len(re.findall(r'^Epoch \d+/2$', log.replace('\r', '\n'), re.M)) == 2 and '━' not in log  # one line an epoch (tqdm redraws its bar with \r), no Keras bars


@pytest.fixture(scope='module')
def odd_images(tmp_path_factory):
    "Image files a user may caption: the formats and modes cameras and the web produce, and one truncated JPEG."
    d = tmp_path_factory.mktemp('odd')
    rgb = Image.new('RGB', (300, 200), (200, 60, 30))
    rgb.convert('RGBA').save(d/'rgba.png'); rgb.convert('L').save(d/'grey.png')
    Image.fromarray(np.full((200, 300), 40000, np.uint16)).save(d/'grey16.png')
    rgb.convert('P').save(d/'anim.gif', save_all=True, append_images=[rgb.convert('P')])
    rgb.save(d/'photo.tiff'); rgb.convert('CMYK').save(d/'cmyk.jpg')
    Image.new('RGB', (6000, 4000), (30, 90, 200)).save(d/'big.jpg', quality=80)
    (d/'cut.jpg').write_bytes((d/'big.jpg').read_bytes()[:5000])
    return d


def test_caption_reads_every_format_and_refuses_a_truncated_jpeg(coco_run, odd_images):
    out, env, _ = coco_run
    files = [odd_images/f for f in ('rgba.png', 'grey.png', 'grey16.png', 'anim.gif', 'photo.tiff', 'cmyk.jpg', 'big.jpg')]
    status, stdout, err, _ = run_cli('caption', *files, '--model', out, env=env, timeout=300)
    assert status == 0, err[-2000:]
    lines = stdout.strip().splitlines()
    assert [l.split('\t')[0] for l in lines] == list(map(str, files)) and all(l.split('\t')[1] for l in lines)
    status, stdout, err, _ = run_cli('caption', odd_images/'cut.jpg', '--model', out, env=env)
    assert status == 1 and err.strip().count('\n') == 0 and 'cut.jpg' in err


def test_evaluate_a_saved_coco_model(coco_run, coco_fixture):
    out, env, _ = coco_run
    status, stdout, err, _ = run_cli('evaluate', '--dataset', 'coco', '--data-dir', coco_fixture, '--model', out, env=env, timeout=300)
    assert status == 0, err[-2000:]
    assert json.loads(stdout)['images'] == len(load_records(False, coco_fixture).ids)


def test_any_coco_folder_can_choose_its_image_model(coco_fixture, tmp_path):
    status, stdout, err, _ = run_cli('tutorial', '--dataset', 'coco', '--data-dir', coco_fixture, '--image-model', 'concepts',
                                     '--out', tmp_path/'out', '--epochs', '1', '--concept-epochs', '1', timeout=600)
    assert status == 0, err[-2000:]
    assert json.loads((tmp_path/'out'/'metrics.json').read_text())['image_model'] == 'concepts'
