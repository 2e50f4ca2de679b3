"""Tests of `captioning_course.training`: a run killed with SIGKILL resumes to the very model an uninterrupted run
ends with, a foreign vocabulary is refused, MirroredStrategy over two logical CPUs trains, and a decoder trained in
bfloat16 comes back in float32 and refuses to resume in another precision. The resume tests fix float32, so that
they compare weights to the same tolerance on every CPU."""
import json, signal, subprocess, sys, textwrap, time
from dataclasses import replace
from pathlib import Path

import keras
import numpy as np
import pytest

from captioning_course.decoder import DecoderConfig
from captioning_course.generator import batch_dataset
from captioning_course.tokenizer import Tokenizer, flatten, mark_captions
from captioning_course.training import TrainConfig, train_decoder

CAPTIONS = [[f'a {c} {s}' for c in ('red', 'blue', 'big red') for s in ('circle', 'star')] for _ in range(40)]


def small_problem():
    "Random transfer values and real tokens for 40 images with 6 captions each."
    tok = Tokenizer().fit(flatten(mark_captions(CAPTIONS)))
    tv = np.random.default_rng(0).normal(size=(40, 12)).astype('float32')
    return tv, tok.captions_to_tokens(mark_captions(CAPTIONS)), tok


TRAIN = textwrap.dedent("""
    import sys, time, keras
    sys.path.insert(0, {tests!r})
    from test_training import small_problem
    from captioning_course.decoder import DecoderConfig
    from captioning_course.training import TrainConfig, ResumableCheckpoint, train_decoder
    class Slow(keras.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None): time.sleep(0.05)
    ResumableCheckpoint.on_train_batch_end = Slow.on_train_batch_end  # slow enough to be killed part-way
    tv, tokens, tok = small_problem()
    train_decoder(sys.argv[1], tv, tokens, tok, DecoderConfig(12, tok.vocab_size, 16, 8, 2),
                  TrainConfig(epochs=int(sys.argv[2]), batch_size=8, precision='float32'), verbose=0)
""").format(tests=str(Path(__file__).parent))


def test_training_killed_with_sigkill_resumes_from_its_last_checkpoint(tmp_path):
    proc = subprocess.Popen([sys.executable, '-c', TRAIN, str(tmp_path/'m'), '30'])
    state = tmp_path/'m'/'state.json'
    deadline = time.time() + 240
    while time.time() < deadline and not (state.exists() and json.loads(state.read_text())['epoch'] >= 2): time.sleep(0.05)
    proc.send_signal(signal.SIGKILL); proc.wait()
    done = json.loads(state.read_text())['epoch']
    assert 2 <= done < 30, done
    saved = keras.models.load_model(tmp_path/'m'/'checkpoint.keras')  # the checkpoint is whole
    tv, tokens, tok = small_problem()
    model, history = train_decoder(tmp_path/'m', tv, tokens, tok, DecoderConfig(12, tok.vocab_size, 16, 8, 2),
                                   TrainConfig(epochs=done + 2, batch_size=8, precision='float32'), verbose=0)
    assert len(history['loss']) == done + 2  # the epochs before the kill, then two more
    assert json.loads(state.read_text())['epoch'] == done + 2
    assert model.optimizer.iterations.numpy() > saved.optimizer.iterations.numpy() > 0  # the optimizer resumed too
    keras.utils.set_random_seed(123)  # whatever the global seed, the same first weights and the same batches
    whole, whole_history = train_decoder(tmp_path/'whole', tv, tokens, tok, DecoderConfig(12, tok.vocab_size, 16, 8, 2),
                                         TrainConfig(epochs=done + 2, batch_size=8, precision='float32'), verbose=0)
    np.testing.assert_allclose(history['loss'], whole_history['loss'], rtol=1e-5)  # it resumes to where an uninterrupted run ends
    for a, b in zip(model.weights, whole.weights): np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-4, atol=1e-6)


def test_a_different_vocabulary_is_refused(tmp_path):
    tv, tokens, tok = small_problem()
    cfg, tcfg = DecoderConfig(12, tok.vocab_size, 8, 4, 1), TrainConfig(epochs=1, batch_size=8)
    train_decoder(tmp_path, tv, tokens, tok, cfg, tcfg, verbose=0)
    other = Tokenizer(num_words=4).fit(flatten(mark_captions(CAPTIONS)))
    with pytest.raises(ValueError, match='different vocabulary'):
        train_decoder(tmp_path, tv, tokens, other, cfg, tcfg, verbose=0)


MIRRORED = textwrap.dedent("""
    import sys, json, tensorflow as tf
    cpu = tf.config.list_physical_devices('CPU')[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()]*2)
    sys.path.insert(0, {tests!r})
    from test_training import small_problem
    from captioning_course.decoder import DecoderConfig
    from captioning_course.training import TrainConfig, train_decoder
    strategy = tf.distribute.MirroredStrategy(['/cpu:0', '/cpu:1'])
    tv, tokens, tok = small_problem()
    model, history = train_decoder(sys.argv[1], tv, tokens, tok, DecoderConfig(12, tok.vocab_size, 16, 8, 2),
                                   TrainConfig(epochs=1, batch_size=16, precision='float32'), strategy=strategy, verbose=0)
    print(json.dumps(dict(replicas=strategy.num_replicas_in_sync, loss=history['loss'],
                          steps=int(model.optimizer.iterations.numpy()))))
""").format(tests=str(Path(__file__).parent))


def test_mirrored_strategy_over_two_logical_cpus_trains(tmp_path):
    out = subprocess.run([sys.executable, '-c', MIRRORED, str(tmp_path/'m')], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    res = json.loads(out.stdout.strip().splitlines()[-1])
    assert res['replicas'] == 2 and res['steps'] >= 1 and np.isfinite(res['loss'][0])


def test_a_cosine_run_that_crashed_resumes_to_the_uninterrupted_model(tmp_path, monkeypatch):
    from captioning_course.training import ResumableCheckpoint
    tv, tokens, tok = small_problem()
    cfg, tcfg = DecoderConfig(12, tok.vocab_size, 16, 8, 2), TrainConfig(epochs=4, batch_size=8, schedule='cosine', learning_rate=3e-3, precision='float32')
    save = ResumableCheckpoint.on_epoch_end
    def crash_after_two(self, epoch, logs=None):
        save(self, epoch, logs)
        if epoch == 1: raise RuntimeError('the machine went down')
    monkeypatch.setattr(ResumableCheckpoint, 'on_epoch_end', crash_after_two)
    with pytest.raises(RuntimeError, match='went down'): train_decoder(tmp_path/'m', tv, tokens, tok, cfg, tcfg, verbose=0)
    monkeypatch.setattr(ResumableCheckpoint, 'on_epoch_end', save)
    model, history = train_decoder(tmp_path/'m', tv, tokens, tok, cfg, tcfg, verbose=0)
    whole, whole_history = train_decoder(tmp_path/'whole', tv, tokens, tok, cfg, tcfg, verbose=0)
    np.testing.assert_allclose(history['loss'], whole_history['loss'], rtol=1e-5)
    for a, b in zip(model.weights, whole.weights): np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-4, atol=1e-6)
    lr = model.optimizer.learning_rate  # the schedule came back with the optimizer, and has come down to zero
    assert float(lr) < 1e-3*tcfg.learning_rate and int(model.optimizer.iterations) == int(whole.optimizer.iterations)
    with pytest.raises(ValueError, match="'cosine' schedule ends after 4 epochs"):
        train_decoder(tmp_path/'m', tv, tokens, tok, cfg, replace(tcfg, epochs=6), verbose=0)


def test_the_cosine_schedule_warms_up_then_comes_down_to_zero():
    from captioning_course.training import learning_rate
    lr = learning_rate(TrainConfig(schedule='cosine', learning_rate=2e-3), 100)
    at = [float(lr(s)) for s in (0, 5, 10, 55, 100)]
    assert at[0] == 0 and abs(at[1] - 1e-3) < 1e-9 and abs(at[2] - 2e-3) < 1e-9 and abs(at[3] - 1e-3) < 1e-6 and at[4] < 1e-9
    assert learning_rate(TrainConfig(), 100) == 1e-3
    with pytest.raises(ValueError, match="unknown schedule 'linear'"): TrainConfig(schedule='linear')


def test_a_bfloat16_run_returns_a_float32_model_and_resumes_only_in_bfloat16(tmp_path):
    from captioning_course.transfer import with_policy
    tv, tokens, tok = small_problem()
    cfg, tcfg = DecoderConfig(12, tok.vocab_size, 16, 8, 2), TrainConfig(epochs=2, batch_size=8, precision='bfloat16')
    model, history = train_decoder(tmp_path/'m', tv, tokens, tok, cfg, tcfg, verbose=0)
    assert {l.dtype_policy.name for l in model.layers if l.name.startswith('decoder_')} == {'float32'}  # generates in float32 anywhere
    saved = keras.models.load_model(tmp_path/'m'/'checkpoint.keras')
    assert saved.get_layer('decoder_gru1').dtype_policy.name == 'mixed_bfloat16' and saved.get_layer('decoder_output').dtype_policy.name == 'float32'
    assert json.loads((tmp_path/'m'/'decoder.json').read_text())['training']['precision'] == 'bfloat16'
    for a, b in zip(model.weights, saved.weights): np.testing.assert_array_equal(a.numpy(), b.numpy())  # the trained weights, copied
    with pytest.raises(ValueError, match='trains in bfloat16, not float32'):
        train_decoder(tmp_path/'m', tv, tokens, tok, cfg, replace(tcfg, precision='float32'), verbose=0)
    _, longer = train_decoder(tmp_path/'m', tv, tokens, tok, cfg, replace(tcfg, epochs=3), verbose=0)
    assert longer['loss'][:2] == history['loss'] and len(longer['loss']) == 3 and np.isfinite(longer['loss'][-1])
    back = with_policy(with_policy(model, 'mixed_bfloat16', keep=('decoder_output',)), 'float32')
    assert back.get_layer('decoder_output').dtype_policy.name == 'float32' and len(back.weights) == len(model.weights)
    assert np.isfinite(model.train_on_batch(*next(iter(batch_dataset(tv, tokens, 8)))))  # compiled, as a fresh model is


def test_the_precision_is_part_of_the_decoder_key(tmp_path, monkeypatch):
    from captioning_course.training import decoder_dir
    tv, _, tok = small_problem()
    cfg = DecoderConfig(12, tok.vocab_size)
    f32, bf16 = (decoder_dir(tmp_path, tv, tok, cfg, TrainConfig(precision=p)) for p in ('float32', 'bfloat16'))
    assert f32 != bf16
    monkeypatch.setenv('CAPTIONING_PRECISION', 'float32')
    assert decoder_dir(tmp_path, tv, tok, cfg, TrainConfig()) == f32  # unset: the precision this machine trains in
    monkeypatch.setenv('CAPTIONING_PRECISION', 'bfloat16')
    assert decoder_dir(tmp_path, tv, tok, cfg, TrainConfig()) == bf16
