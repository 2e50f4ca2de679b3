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
