"""Tests of `captioning_course.generator`: pairs, unreadable images, padding and the shift by one, both modes,
seeds, memory-mapped float16 transfer values, and a Keras model fed by name."""
import logging

import numpy as np
import pytest

from captioning_course.generator import (batch_dataset, caption_pairs, pair_stream, readable_images,
                                         steps_per_epoch)

START, END = 2, 3


def synthetic(n=12, nan_rows=()):
    "Image i has 1-3 captions [START, 10+i, 20+j, (30,)*j, END]; row i of the transfer values holds i."
    tokens = [[[START, 10 + i, 20 + j] + [30]*j + [END] for j in range(1 + i % 3)] for i in range(n)]
    tv = np.arange(n, dtype=np.float16)[:, None].repeat(4, axis=1)
    tv[list(nan_rows)] = np.nan
    return tv, tokens


def rows(ds):
    "(image, caption) of every row served in one pass over `ds`."
    return [(int(x['transfer_values_input'][k, 0]), int(x['decoder_input'][k, 2]) - 20)
            for x, _ in ds for k in range(len(x['decoder_input']))]


def test_caption_pairs():
    _, tokens = synthetic(4)
    images, seqs = caption_pairs(tokens)
    assert images == [0, 1, 1, 2, 2, 2, 3]
    assert seqs[1] == [START, 11, 20, END] and seqs[2] == [START, 11, 21, 30, END]
    assert caption_pairs(tokens, keep=[False, True, False, False])[0] == [1, 1]
    with pytest.raises(ValueError, match='caption 0 of image 1 has 1 tokens'): caption_pairs([[[2, 3]], [[2]]])


def test_readable_images():
    tv, _ = synthetic(10, nan_rows=(2, 7))
    assert np.flatnonzero(~readable_images(tv, chunk_size=3)).tolist() == [2, 7]
    tv[4, 1] = np.nan
    with pytest.raises(ValueError, match='row 4 of the transfer values is partly NaN'): readable_images(tv)


def test_shapes_dtypes_and_names():
    tv, tokens = synthetic()
    x, y = next(iter(batch_dataset(tv, tokens, batch_size=8)))
    assert set(x) == {'transfer_values_input', 'decoder_input'}
    assert x['transfer_values_input'].shape == (8, 4) and x['transfer_values_input'].dtype.name == 'float32'
    assert x['decoder_input'].dtype.name == 'int32' and y.dtype.name == 'int32'
    longest = max(len(s) for s in caption_pairs(tokens)[1])
    assert x['decoder_input'].shape == y.shape and 3 <= y.shape[1] <= longest - 1


def test_shift_by_one_and_padding_after_end():
    tv, tokens = synthetic()
    for x, y in batch_dataset(tv, tokens, batch_size=8, seed=3).take(10):
        inp, out = x['decoder_input'].numpy(), y.numpy()
        assert (inp[:, 1:] == out[:, :-1]).all() and (inp[:, 0] == START).all()
        for i, row in enumerate(out):
            image = int(x['transfer_values_input'][i, 0])
            end = int(np.flatnonzero(row == END)[0])
            assert (row[end + 1:] == 0).all() and (row[:end] != 0).all()
            assert row[0] == 10 + image  # the caption belongs to the image in the same row
        assert (out[:, -1] != 0).any()  # padded to the longest caption of this batch, no further


def test_unreadable_images_are_left_out_and_logged(caplog):
    tv, tokens = synthetic(nan_rows=(3, 8))
    with caplog.at_level(logging.WARNING, logger='captioning_course'):
        ds = batch_dataset(tv, tokens, batch_size=6, mode='all')
    assert 'left out 2 of 12 images' in caplog.text
    assert {image for image, _ in rows(ds)} == set(range(12)) - {3, 8}
    random_images = {int(i) for x, _ in batch_dataset(tv, tokens, batch_size=16).take(20)
                     for i in x['transfer_values_input'][:, 0].numpy()}
    assert random_images == set(range(12)) - {3, 8}
    with pytest.raises(ValueError, match='no image-caption pairs'):
        batch_dataset(np.full((2, 4), np.nan), [[[2, 3]], [[2, 3]]])


def test_all_mode_visits_every_pair_once_per_epoch():
    tv, tokens = synthetic()
    want = sorted((i, j) for i in range(12) for j in range(1 + i % 3))
    ds = batch_dataset(tv, tokens, batch_size=5, mode='all', seed=0)
    first, second = rows(ds), rows(ds)
    assert sorted(first) == want and sorted(second) == want
    assert first != second  # a new order each epoch
    assert [len(x['decoder_input']) for x, _ in ds] == [5, 5, 5, 5, 4]  # the last batch is smaller


def test_random_mode_draws_images_then_captions():
    draws = next(pair_stream([0, 0, 0, 5, 9, 9], 'random', seed=1).batch(9000).as_numpy_iterator())
    freq = np.bincount(draws, minlength=6)/len(draws)
    np.testing.assert_allclose(freq, [1/9, 1/9, 1/9, 1/3, 1/6, 1/6], atol=0.03)
    with pytest.raises(ValueError, match='unknown mode'): pair_stream([0], 'sequential')


def test_determinism_with_seed():
    tv, tokens = synthetic()
    first = lambda ds: [t.numpy().tolist() for t in next(iter(ds))[0].values()]
    assert first(batch_dataset(tv, tokens, 8, seed=7)) == first(batch_dataset(tv, tokens, 8, seed=7))
    assert first(batch_dataset(tv, tokens, 8, seed=7)) != first(batch_dataset(tv, tokens, 8, seed=8))
    assert rows(batch_dataset(tv, tokens, 5, 'all', seed=7)) == rows(batch_dataset(tv, tokens, 5, 'all', seed=7))


def test_memmapped_float16(tmp_path):
    tv, tokens = synthetic(nan_rows=(0,))
    mm = np.lib.format.open_memmap(tmp_path/'tv.npy', mode='w+', dtype=np.float16, shape=tv.shape)
    mm[:] = tv; mm.flush(); del mm
    ds = batch_dataset(np.load(tmp_path/'tv.npy', mmap_mode='r'), tokens, batch_size=4, mode='all')
    assert sorted({image for image, _ in rows(ds)}) == list(range(1, 12))


def test_mismatched_lengths_are_refused():
    tv, tokens = synthetic()
    with pytest.raises(ValueError, match='5 rows of transfer values, but tokens for 12 images'):
        batch_dataset(tv[:5], tokens)


def test_steps_per_epoch():
    _, tokens = synthetic()  # 24 captions
    assert steps_per_epoch(tokens, 5) == 4
    assert steps_per_epoch(tokens, 384) == 1


def test_keras_model_takes_the_batches_by_input_name():
    import keras
    tv, tokens = synthetic()
    tv_in = keras.Input((4,), name='transfer_values_input')
    dec_in = keras.Input((None,), name='decoder_input', dtype='int32')
    h = keras.layers.GRU(4, return_sequences=True)(keras.layers.Embedding(40, 4)(dec_in),
                                                   initial_state=keras.layers.Dense(4)(tv_in))
    model = keras.Model([tv_in, dec_in], keras.layers.Dense(40)(h))
    model.compile('rmsprop', keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    hist = model.fit(batch_dataset(tv, tokens, 8), steps_per_epoch=steps_per_epoch(tokens, 8), epochs=2,
                     shuffle=False, verbose=0)
    assert len(hist.history['loss']) == 2 and np.isfinite(hist.history['loss']).all()
