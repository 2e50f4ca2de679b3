"""Tests of the Transformer decoder (`captioning_course.transformer`) on tiny models built here, in seconds: decoding
with the key/value cache gives the captions and scores of re-running the whole model for every word, the causal mask
keeps every word from seeing the words after it, captions longer than the learned positions still train, and a
Transformer captioner is saved and loaded bit for bit."""
import json

import keras
import numpy as np
import pytest

from captioning_course.generation import Beam, Captioner, Follow, beam_search, decode, decode_steps, greedy_tokens, load_captioner, tutorial_caption
from captioning_course.tokenizer import Tokenizer, flatten, mark_captions
from captioning_course.training import TrainConfig, train_decoder
from captioning_course.transfer import concept_cnn, concept_image_model
from captioning_course.transformer import TRANSFORMER, TransformerConfig, build_transformer_decoder

WORDS = 'a red blue green circle square star and two'.split()


def tokenizer():
    return Tokenizer().fit(flatten(mark_captions([[' '.join(WORDS)]])))


def captioner(max_length=12, seed=1):
    "A Transformer with random weights over a tiny CNN's 8x8x8 feature map; padding made unlikely, `eeee` likely enough to end captions."
    keras.utils.set_random_seed(0)
    im, tok = concept_image_model(concept_cnn(4, img_size=16, widths=(4, 8)), 'feature_map'), tokenizer()
    keras.utils.set_random_seed(seed)
    cfg = TRANSFORMER.config((8, 8, 8), tok.vocab_size, model_size=16, num_heads=2, num_layers=2, ffn_size=32, max_length=max_length)
    model = TRANSFORMER.build(cfg)
    out = model.get_layer('decoder_output')
    bias = np.zeros(tok.vocab_size, 'float32'); bias[0] = -30.0; bias[tok.token_end] = -0.7
    out.bias.assign(bias)
    return Captioner(im, model, tok, TRANSFORMER, max_tokens=10), np.random.default_rng(3).normal(size=(6, 512)).astype('float32')


def test_cached_decoding_gives_the_captions_and_scores_of_rereading_the_whole_caption():
    cap, tv = captioner()
    cached = greedy_tokens(cap, tv)
    assert cached == [tutorial_caption(cap.decoder, cap.tokenizer, t, cap.max_tokens) for t in tv]  # the whole model re-run per word
    assert len({len(t) for t in cached}) > 1 and any(len(t) < cap.max_tokens for t in cached)  # captions of several lengths, some ended
    for t, toks in zip(tv, cached):  # every step's scores, to the one that chose `eeee`, are the full model's at that position
        steps = [np.asarray(s.logits)[0] for s in decode_steps(cap, t[None], Follow([toks]))][:len(toks) + 1]
        full = cap.decoder({'transfer_values_input': t[None], 'decoder_input': np.array([[cap.tokenizer.token_start, *toks]])})
        np.testing.assert_allclose(np.stack(steps), np.asarray(full)[0, :len(steps)], atol=1e-4)
    assert [nb[0][0] for nb in beam_search(cap, tv, k=1)] == cached
    assert len(decode(cap, tv, Beam(3))) == len(tv)


def test_the_causal_mask_keeps_a_word_from_seeing_later_words():
    cap, tv = captioner()
    tokens = np.random.default_rng(5).integers(1, cap.tokenizer.vocab_size, size=(6, 8)).astype('int32')
    full = lambda tk: np.asarray(cap.decoder({'transfer_values_input': tv, 'decoder_input': tk}))
    for t in (0, 3, 6):
        changed = tokens.copy(); changed[:, t + 1] = changed[:, t + 1] % (cap.tokenizer.vocab_size - 1) + 1
        before, after = full(tokens), full(changed)
        np.testing.assert_allclose(after[:, :t + 1], before[:, :t + 1], atol=1e-6)  # word t+1 changed: scores up to t unchanged
        assert np.abs(after[:, t + 1:] - before[:, t + 1:]).max() > 1e-3  # from t+1 on they change
    steps = lambda tk: np.stack([np.asarray(s.logits) for s in decode_steps(cap, tv, Follow([list(r) for r in tk]))][:8], 1)
    changed = tokens.copy(); changed[:, 4] = changed[:, 4] % (cap.tokenizer.vocab_size - 1) + 1
    np.testing.assert_allclose(steps(changed)[:, :5], steps(tokens)[:, :5], atol=1e-6)  # the cache sees no later word either


def test_attention_weights_are_a_map_over_the_regions():
    cap, tv = captioner()
    steps = list(decode_steps(cap, tv, Follow([[4, 5, 6]]*len(tv))))
    w = np.stack([np.asarray(s.extras['attention']) for s in steps])
    assert w.shape == (4, len(tv), 64) and cap.feature_shape == (8, 8)
    np.testing.assert_allclose(w.sum(-1), 1, atol=1e-5)


def test_captions_longer_than_the_learned_positions_still_train(tmp_path):
    tok = tokenizer()
    long = [' '.join(WORDS*2)]  # 18 words + 2 markers, past 12 positions
    tokens = tok.captions_to_tokens(mark_captions([long, [' '.join(WORDS[:3])]]))
    tv = np.random.default_rng(0).normal(size=(2, 4*4*8)).astype('float32')
    cfg = TransformerConfig((4, 4, 8), tok.vocab_size, model_size=16, num_heads=2, num_layers=1, ffn_size=16, max_length=12)
    model, history = train_decoder(tmp_path/'dec', tv, tokens, tok, cfg, TrainConfig(epochs=3, batch_size=2, learning_rate=1e-2),
                                   verbose=0, design=TRANSFORMER)
    assert np.isfinite(history['loss']).all() and history['loss'][-1] < history['loss'][0]
    assert len(history['seconds']) == 3  # the checkpoint keeps each epoch's time
    assert json.loads((tmp_path/'dec'/'decoder.json').read_text())['design'] == 'transformer'


def test_a_transformer_captioner_saves_and_loads_bit_for_bit(tmp_path):
    cap, _ = captioner()
    loaded = load_captioner(cap.save(tmp_path/'m'))
    assert loaded.design is TRANSFORMER and loaded.image_model.layer == 'feature_map'
    for a, b in [(loaded.decoder, cap.decoder), (loaded.image_model.model, cap.image_model.model)]:
        assert all(np.array_equal(x.numpy(), y.numpy()) for x, y in zip(a.weights, b.weights))
    pixels = np.random.default_rng(4).uniform(0, 255, size=(3, 16, 16, 3)).astype('float32')
    values = cap.image_model.values_of(pixels)
    assert np.array_equal(loaded.image_model.values_of(pixels), values)
    assert greedy_tokens(loaded, values) == greedy_tokens(cap, values)
    assert beam_search(loaded, values, k=2) == beam_search(cap, values, k=2)


def test_a_captioner_asking_more_words_than_the_learned_positions_is_refused():
    with pytest.raises(ValueError, match='at most 6 words'): captioner(max_length=6)  # 10 tokens asked of a 6-position cache
