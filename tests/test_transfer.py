"""Tests of `captioning_course.transfer`: VGG16's transfer layer, the concept CNN, and `process_images`'
cache (fingerprints, resuming after SIGKILL, concurrent extraction, unreadable images)."""
import json, shutil, signal, subprocess, sys, textwrap, time
from pathlib import Path

import keras
import numpy as np
import pytest

from captioning_course.data import ImageError, load_records
from captioning_course.embedded import embedded_dataset
from captioning_course.transfer import (ConceptConfig, concept_cnn, concept_head, concept_image_model, concept_scores,
                                        image_dataset, process_images, train_concept_cnn, vgg16)


@pytest.fixture(scope='module')
def tiny(tmp_path_factory):
    "A small embedded dataset: 600 training and 200 validation images."
    return embedded_dataset(tmp_path_factory.mktemp('data')/'tiny', n_train=600, n_val=200, seed=1)


@pytest.fixture(scope='module')
def model_file(tmp_path_factory):
    "An untrained concept CNN saved to a file, so other processes load the very same weights."
    keras.utils.set_random_seed(0)
    path = tmp_path_factory.mktemp('model')/'cnn.keras'
    concept_cnn(10).save(path)
    return path


def paths_of(root, n=None, split='train2017'):
    files = load_records(split == 'train2017', root).filenames
    return [root/split/f for f in files[:n]]


def test_vgg16_without_weights_gives_4096_values_at_fc2(tiny):
    model = vgg16(weights=None)
    assert model.transfer_values_size() == 4096
    v = process_images(model, paths_of(tiny, 2), tiny/'cache-vgg', batch_size=2)
    assert v.shape == (2, 4096) and v.dtype == np.float16
    assert np.isfinite(np.asarray(v, np.float32)).all()


def test_convs_sets_the_convolutions_of_every_block_after_the_first():
    def convs(model): return [l.name for l in model.layers if isinstance(l, keras.layers.Conv2D)]
    assert convs(concept_cnn(10, convs=1)) == ['conv1', 'conv2', 'conv3', 'conv4']
    two = concept_cnn(10, convs=2)
    assert convs(two) == ['conv1', 'conv2', 'conv2_2', 'conv3', 'conv3_2', 'conv4', 'conv4_2']
    assert two.get_layer('feature_map').output.shape[1:] == (8, 8, 128)  # the same map for attention, whatever the depth


def test_stale_fingerprint_recomputes(tiny, model_file, tmp_path):
    im = concept_image_model(keras.models.load_model(model_file))
    files = [shutil.copy(p, tmp_path/p.name) for p in paths_of(tiny, 20)]
    files = [Path(f) for f in files]
    first = np.asarray(process_images(im, files, tmp_path/'cache'))
    shutil.copy(paths_of(tiny, 30)[25], files[3])  # a file's content changes
    second = np.asarray(process_images(im, files, tmp_path/'cache'))
    assert len(list((tmp_path/'cache').glob('*.npy'))) == 2
    assert not np.array_equal(first[3], second[3])
    np.testing.assert_array_equal(np.delete(first, 3, 0), np.delete(second, 3, 0))
    im.model.get_layer('conv1').kernel.assign(im.model.get_layer('conv1').kernel*2)  # new weights
    process_images(im, files, tmp_path/'cache')
    assert len(list((tmp_path/'cache').glob('*.npy'))) == 3


def test_same_weights_in_another_graph_is_another_fingerprint(tiny, tmp_path):
    def net(pool):
        inp = keras.Input((64, 64, 3))
        x = keras.layers.Conv2D(4, 3, name='conv')(inp)
        return keras.Model(inp, pool(name='transfer')(x))
    a, b = net(keras.layers.GlobalMaxPooling2D), net(keras.layers.GlobalAveragePooling2D)
    b.set_weights(a.get_weights())
    files = paths_of(tiny, 10)
    va = np.asarray(process_images(concept_image_model(a), files, tmp_path), np.float32)
    vb = np.asarray(process_images(concept_image_model(b), files, tmp_path), np.float32)
    assert len(list(tmp_path.glob('*.npy'))) == 2 and not np.allclose(va, vb)


EXTRACT = textwrap.dedent("""
    import sys, keras, numpy as np
    from pathlib import Path
    from captioning_course.transfer import concept_image_model, process_images
    model, cache, out, *paths = sys.argv[1:]
    v = process_images(concept_image_model(keras.models.load_model(model)), paths, cache, chunk_size=40, batch_size=8)
    np.save(out, np.asarray(v))
""")


def run_extract(model_file, cache, out, paths):
    return subprocess.Popen([sys.executable, '-c', EXTRACT, str(model_file), str(cache), str(out), *map(str, paths)])


def test_extraction_killed_with_sigkill_resumes(tiny, model_file, tmp_path):
    paths = paths_of(tiny)
    proc = run_extract(model_file, tmp_path/'cache', tmp_path/'killed.npy', paths)
    deadline = time.time() + 120
    while time.time() < deadline and len(list((tmp_path/'cache').glob('*.parts/*.npy'))) < 3: time.sleep(0.01)
    proc.send_signal(signal.SIGKILL); proc.wait()
    done = len(list((tmp_path/'cache').glob('*.parts/*.npy')))
    assert 3 <= done < len(paths)//40, f'expected to kill part-way, {done} chunks were done'
    assert not list((tmp_path/'cache').glob('*.npy'))  # no final array from a killed run
    im = concept_image_model(keras.models.load_model(model_file))
    resumed = np.asarray(process_images(im, paths, tmp_path/'cache', chunk_size=40, batch_size=8))
    fresh = np.asarray(process_images(im, paths, tmp_path/'fresh', chunk_size=40, batch_size=8))
    np.testing.assert_array_equal(resumed, fresh)
    assert not list((tmp_path/'cache').glob('*.parts'))


def test_two_concurrent_extractions_leave_one_valid_cache(tiny, model_file, tmp_path):
    paths = paths_of(tiny, 300)
    procs = [run_extract(model_file, tmp_path/'cache', tmp_path/f'out{i}.npy', paths) for i in range(2)]
    assert [p.wait(timeout=300) for p in procs] == [0, 0]
    a, b = np.load(tmp_path/'out0.npy'), np.load(tmp_path/'out1.npy')
    np.testing.assert_array_equal(a, b)
    assert a.shape == (300, 128) and np.isfinite(a).all()
    assert len(list((tmp_path/'cache').glob('*.npy'))) == 1 and not list((tmp_path/'cache').glob('*.parts'))
    im = concept_image_model(keras.models.load_model(model_file))
    np.testing.assert_array_equal(np.asarray(process_images(im, paths, tmp_path/'cache')), a)


def test_concept_cnn_beats_chance_on_held_out_images(tiny):
    cfg = ConceptConfig(epochs=20, min_images=10, batch_size=32)
    model, vocab, history = train_concept_cnn(tiny, cfg, verbose=0)
    assert history['loss'][-1] < history['loss'][0]
    scores = concept_scores(model, vocab, tiny)  # the validation split, never seen in training
    colours = [scores[c][0] for c in ('red', 'green', 'blue', 'yellow', 'purple', 'orange', 'white', 'black') if c in scores]
    assert len(colours) == 8
    assert np.mean(colours) > 0.7, scores  # chance is 0.5
    # extraction feeds the network exactly what training fed it: the concept layer read through `process_images`
    # agrees with the head used in training and scoring, and the transfer values differ from image to image
    im = concept_image_model(model)
    paths = paths_of(tiny, 50, 'val2017')
    via_pipeline = np.asarray(process_images(im, paths, tiny/'cache-probe', layer='concepts'), np.float32)
    via_head = concept_head(model).predict(image_dataset(paths, im.img_size), verbose=0)
    np.testing.assert_allclose(via_pipeline, via_head, atol=0.01)
    tv = np.asarray(process_images(im, paths, tiny/'cache-probe'), np.float32)
    assert np.median(tv.std(axis=0)) > 0.05


def test_truncated_jpeg_is_named_and_skipping_keeps_rows_aligned(tiny, model_file, tmp_path):
    im = concept_image_model(keras.models.load_model(model_file))
    files = [Path(shutil.copy(p, tmp_path/f'{i}.jpg')) for i, p in enumerate(paths_of(tiny, 6))]
    good = np.asarray(process_images(im, files, tmp_path/'good'), np.float32)
    files[4].write_bytes(files[4].read_bytes()[:200])
    with pytest.raises(ImageError, match='4.jpg'): process_images(im, files, tmp_path/'cache')
    v = np.asarray(process_images(im, files, tmp_path/'cache', skip_bad=True), np.float32)
    assert np.isnan(v).all(axis=1).tolist() == [False, False, False, False, True, False]
    rest, ref = np.delete(v, 4, 0), np.delete(good, 4, 0)  # PIL decoded the chunk with the bad file: close, not equal
    assert np.linalg.norm(rest - ref) < 0.05*np.linalg.norm(ref)
    meta = json.loads(next((tmp_path/'cache').glob('*.json')).read_text())
    assert meta['skipped'] == [str(files[4])]


def test_vgg16_fingerprint_is_the_same_whatever_was_built_before(tmp_path):
    from captioning_course.transfer import transfer_fingerprint
    paths = [tmp_path/'a.jpg']
    first = vgg16(None, precision='float32')
    keras.Input((3,)); keras.Input((4,))  # models built in between take the automatic names
    second = vgg16(None, precision='float32')
    second.model.set_weights(first.model.get_weights())
    assert transfer_fingerprint(first, 'fc2', paths) == transfer_fingerprint(second, 'fc2', paths)


def test_compute_device_names_a_gpu_and_warns_when_tensorflow_misses_one(monkeypatch):
    import tensorflow as tf
    from captioning_course import transfer
    monkeypatch.delenv('CAPTIONING_PRECISION', raising=False)
    gpu = tf.config.PhysicalDevice('/physical_device:GPU:0', 'GPU')
    monkeypatch.setattr(tf.config, 'list_physical_devices', lambda kind=None: [gpu, gpu] if kind == 'GPU' else [])
    monkeypatch.setattr(tf.config.experimental, 'get_device_details', lambda d: {'device_name': 'NVIDIA T4'})
    assert transfer.compute_device() == dict(device='GPU: NVIDIA T4 (and 1 more)', precision='float32')  # no bfloat16 on a GPU
    monkeypatch.setattr(tf.config, 'list_physical_devices', lambda kind=None: [])
    monkeypatch.setattr(transfer.shutil, 'which', lambda name: '/usr/bin/nvidia-smi' if name == 'nvidia-smi' else None)
    info = transfer.compute_device()
    assert info['device'] == 'CPU' and '".[gpu]"' in info['hint'] and 'CAPTIONING_TF_LOGS=1' in info['hint']
    monkeypatch.setattr(transfer.shutil, 'which', lambda name: None)
    if not Path('/proc/driver/nvidia/version').exists(): assert 'hint' not in transfer.compute_device()  # no NVIDIA driver: nothing to say


def shipped_manifest():
    from captioning_course.transfer import PRETRAINED
    return json.loads((PRETRAINED/'concept_cnn.json').read_text())


def test_the_shipped_concept_cnn_matches_its_manifest_and_reaches_its_auc():
    from captioning_course.data import prepare_data
    from captioning_course.embedded import EMBEDDED_VERSION
    from captioning_course.files import file_digest
    from captioning_course.transfer import CONCEPT_VERSION, PRETRAINED, concept_model_path
    m = shipped_manifest()
    assert file_digest(PRETRAINED/'concept_cnn.keras') == m['sha256']
    assert (PRETRAINED/'concept_cnn.keras').stat().st_size < 5_000_000
    root = prepare_data('embedded')
    assert m['dataset'] == dict(embedded_version=EMBEDDED_VERSION, annotations_sha256=file_digest(root/'annotations'/'captions_train2017.json'))
    assert m['concept_version'] == CONCEPT_VERSION and m['model_file'] == concept_model_path(root).name  # made for today's defaults
    assert m['config'] == {k: list(v) if isinstance(v, tuple) else v for k, v in ConceptConfig().__dict__.items() if k != 'xla'}
    model = keras.models.load_model(PRETRAINED/'concept_cnn.keras')
    scores = concept_scores(model, m['vocab'], root)
    assert abs(np.mean([s[0] for s in scores.values()]) - m['val_auc']) < 0.002 and m['val_auc'] > 0.9


def test_the_shipped_cnn_is_used_only_where_it_belongs(tmp_path, caplog):
    from captioning_course.files import file_digest
    from captioning_course.transfer import PRETRAINED, use_shipped_concept_model
    m = shipped_manifest()
    models = tmp_path/'models'
    assert use_shipped_concept_model(models/m['model_file'])  # the fingerprint it was made for: copied, with vocabulary and history
    assert file_digest(models/m['model_file']) == m['sha256']
    assert json.loads((models/m['model_file']).with_suffix('.json').read_text())['vocab'] == m['vocab']
    with caplog.at_level('WARNING', 'captioning_course'):
        assert not use_shipped_concept_model(models/'concept_cnn-0123456789abcdef.keras')  # another dataset or other settings
        damaged = tmp_path/'damaged'; shutil.copytree(PRETRAINED, damaged)
        with open(damaged/'concept_cnn.keras', 'r+b') as f: f.seek(1000); f.write(b'\0' * 8)
        assert not use_shipped_concept_model(tmp_path/'other'/m['model_file'], damaged)
        assert not use_shipped_concept_model(tmp_path/'other'/m['model_file'], tmp_path/'nowhere')
    said = [r.getMessage() for r in caplog.records]
    assert len(said) == 3 and 'not for this dataset or these settings' in said[0] and 'does not match its manifest' in said[1]
    assert all('training one' in s and '\n' not in s for s in said)
    assert not (tmp_path/'other').exists()  # nothing half-made where nothing was used


def test_load_concept_model_takes_the_shipped_one_without_training(tmp_path, monkeypatch):
    from captioning_course import transfer
    from captioning_course.data import prepare_data
    root = prepare_data('embedded')
    data = tmp_path/'embedded'; data.mkdir()
    (data/'annotations').symlink_to(root/'annotations')  # the same annotations: the fingerprint the shipped network was made for
    def no_training(*a, **k): raise AssertionError('trained, although the shipped network fits')
    monkeypatch.setattr(transfer, 'train_concept_cnn', no_training)
    t = time.time()
    model, vocab, history = transfer.load_concept_model(data)
    assert time.time() - t < 20 and vocab == shipped_manifest()['vocab'] and len(history['loss']) == ConceptConfig().epochs
