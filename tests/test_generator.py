"""Tests of `captioning_course.generator` beyond the generator chapter's own: the batches of an epoch depend on the
seed and the epoch alone, which is what lets a resumed training run get the batches it would have had."""
import keras
import numpy as np
import tensorflow as tf

from captioning_course.generator import batch_dataset, steps_per_epoch

START, END = 2, 3


def synthetic(n=12):
    "Image i has 1-3 captions [START, 10+i, 20+j, END]; row i of the transfer values holds i."
    tokens = [[[START, 10 + i, 20 + j, END] for j in range(1 + i % 3)] for i in range(n)]
    return np.arange(n, dtype=np.float16)[:, None].repeat(4, axis=1), tokens


def batches(ds, n=None):
    "The decoder inputs of the first `n` batches of `ds` (all of them for `None`), as lists."
    return [x['decoder_input'].numpy().tolist() for x, _ in (ds if n is None else ds.take(n))]


def test_an_epoch_is_the_same_whatever_came_before_it():
    tv, tokens = synthetic()
    steps = steps_per_epoch(tokens, 4)  # 24 captions: 6 batches an epoch
    endless = batches(batch_dataset(tv, tokens, 4, seed=3), 3*steps)
    keras.utils.set_random_seed(99); tf.random.uniform((5,))  # a global seed, and random numbers drawn elsewhere
    again = batches(batch_dataset(tv, tokens, 4, seed=3), 3*steps)
    resumed = batches(batch_dataset(tv, tokens, 4, seed=3, epoch=2), steps)  # a run resumed at epoch 2
    assert again == endless and resumed == endless[2*steps:]
    assert endless[:steps] != endless[steps:2*steps]  # each epoch draws its own batches
    assert batches(batch_dataset(tv, tokens, 4, seed=4), steps) != endless[:steps]


def test_mode_all_serves_the_epochs_asked_for_each_in_its_own_order():
    tv, tokens = synthetic()
    two = batches(batch_dataset(tv, tokens, 5, 'all', seed=1, epochs=2))
    first, second = (batches(batch_dataset(tv, tokens, 5, 'all', seed=1, epoch=e)) for e in (0, 1))
    assert two == first + second and first != second
    assert sorted(r[1] for b in first for r in b) == sorted(10 + i for i in range(12) for _ in range(1 + i % 3))


def pairs_of(ds):
    "(image, caption) of every row served, batch by batch: row i of the transfer values holds i, token 2 names the caption."
    return [[(int(x['transfer_values_input'][k, 0]), int(x['decoder_input'][k, 2])) for k in range(len(x['decoder_input']))]
            for x, _ in ds]


def varied(n=60, seed=0):
    "Image i has 5 captions of 3 to 12 words: [START, 10+i, 20+j, words..., END]."
    rng = np.random.default_rng(seed)
    tokens = [[[START, 10 + i, 20 + j, *rng.integers(4, 9, rng.integers(1, 10)), END] for j in range(5)] for i in range(n)]
    return np.arange(n, dtype=np.float16)[:, None].repeat(4, axis=1), tokens


def test_a_length_window_regroups_the_pairs_of_an_epoch_and_cuts_the_padding():
    tv, tokens = varied()
    for mode in ('random', 'all'):
        plain, sorted_ = (batch_dataset(tv, tokens, 8, mode, seed=2, epochs=1, length_window=w) for w in (1, 4))
        a, b = pairs_of(plain), pairs_of(sorted_)
        assert len(a) == len(b) == int(plain.cardinality()) == int(sorted_.cardinality())
        assert sorted(p for batch in a for p in batch) == sorted(p for batch in b for p in batch)  # the same pairs, regrouped
        assert a != b
        pad = lambda ds: np.mean([(y.numpy() == 0).mean() for _, y in ds])
        assert pad(sorted_) < pad(plain) / 2, (pad(sorted_), pad(plain))
    again = batch_dataset(tv, tokens, 8, seed=2, epochs=1, length_window=4)
    assert pairs_of(again) == pairs_of(batch_dataset(tv, tokens, 8, seed=2, epochs=1, length_window=4))


def test_length_window_one_serves_the_stream_in_order():
    "Window 1 is the tutorial's batching: consecutive draws of `pair_stream`, each padded to its longest."
    from captioning_course.generator import caption_pairs, pair_stream
    tv, tokens = varied()
    images, seqs = caption_pairs(tokens)
    draws = steps_per_epoch(tokens, 8)*8
    stream = [int(p) for p in pair_stream(images, 'random', 5, 0, draws)]
    got = [x['decoder_input'].numpy() for x, _ in batch_dataset(tv, tokens, 8, seed=5, epochs=1, length_window=1)]
    for b, x in enumerate(got):
        want = [seqs[p] for p in stream[8*b:8*b + 8]]
        assert x.shape[1] == max(map(len, want)) - 1
        assert [r[:len(w) - 1].tolist() for r, w in zip(x, want)] == [w[:-1] for w in want]
