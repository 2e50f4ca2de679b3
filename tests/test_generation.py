"""Tests of the one decoding loop (`captioning_course.generation`) on tiny captioners built here, in seconds: greedy
decoding is the tutorial's algorithm, beam search with one beam is greedy and its scores are the decoder's own
log-probabilities, sampling near temperature 0 is greedy, attention weights are Keras' own, and a captioner of
every design is saved and loaded bit for bit (as is a folder saved before designs had names)."""
import json, sys
from functools import partial

import keras
import numpy as np
import pytest
import tensorflow as tf

from captioning_course.attention import ATTENTION
from captioning_course.decoder import TUTORIAL, DecoderConfig, Design, build_decoder, build_one_step, decoder_config
from captioning_course.designs import library_design
from captioning_course.generation import (Beam, Captioner, Follow, beam_search, decode, decode_steps, greedy_tokens,
                                          load_captioner, sample_tokens, trace, tutorial_caption)
from captioning_course.tokenizer import Tokenizer, flatten, mark_captions
from captioning_course.training import TrainConfig, decoder_dir, train_decoder
from captioning_course.transfer import concept_cnn, concept_image_model

COLOURS, SHAPES = ('red', 'blue', 'green', 'yellow'), ('circle', 'square', 'star', 'cross')
MAPPED = Design('tutorial, 2 mapping layers (tests)', partial(build_decoder, mapping_layers=2), build_one_step, decoder_config)


def image_model():
    "A random-weights concept CNN on 16x16 images: `transfer` has 8 values, `feature_map` is 8x8x8."
    keras.utils.set_random_seed(0)
    return concept_image_model(concept_cnn(4, img_size=16, widths=(4, 8)))


def problem(n=160):
    "Transfer values of 8 numbers whose largest of the first four names the caption's colour and shape."
    tv = np.random.default_rng(0).normal(size=(n, 8)).astype('float32')
    cls = tv[:, :4].argmax(1)
    captions = [[f'a {COLOURS[c]} {SHAPES[c]}', f'one {COLOURS[c]} {SHAPES[c]}'] for c in cls]
    tok = Tokenizer().fit(flatten(mark_captions(captions)))
    return tv, tok.captions_to_tokens(mark_captions(captions)), tok, cls


@pytest.fixture(scope='module')
def trained(tmp_path_factory):
    "A tutorial decoder trained for a few seconds on `problem`, as a captioner."
    tv, tokens, tok, cls = problem()
    model, _ = train_decoder(tmp_path_factory.mktemp('dec'), tv, tokens, tok, DecoderConfig(8, tok.vocab_size, 32, 16, 2),
                             TrainConfig(epochs=25, batch_size=16, learning_rate=1e-2), verbose=0)
    return Captioner(image_model(), model, tok, TUTORIAL), tv, cls


def test_greedy_is_the_tutorials_algorithm(trained):
    cap, tv, cls = trained
    greedy = greedy_tokens(cap, tv[:12])
    assert greedy == [tutorial_caption(cap.decoder, cap.tokenizer, tv[i]) for i in range(12)]
    words = [cap.tokenizer.tokens_to_string(t).split() for t in greedy]
    assert np.mean([w[-2:] == [COLOURS[c], SHAPES[c]] for w, c in zip(words, cls)]) > 0.9  # it learnt the problem


def test_beam_with_one_beam_is_greedy_and_its_scores_are_log_probabilities(trained):
    cap, tv, _ = trained
    assert [nb[0][0] for nb in beam_search(cap, tv[:20], k=1)] == greedy_tokens(cap, tv[:20])
    nbest = beam_search(cap, tv[:5], k=3)
    for image, beams in enumerate(nbest):
        assert [b[2] for b in beams] == sorted((b[2] for b in beams), reverse=True)
        for toks, logp, _ in beams:  # the decoder's log-probability of the beam's words and its `eeee`, step by step
            steps = list(decode_steps(cap, tv[image:image + 1], Follow([toks])))
            chosen = [tf.nn.log_softmax(s.logits)[0, s.tokens[0]].numpy() for s in steps]
            assert len(steps) == len(toks) + 1 and steps[-1].tokens[0] == cap.tokenizer.token_end
            np.testing.assert_allclose(sum(chosen), logp, rtol=1e-4, atol=1e-4)
    assert decode(cap, tv[:5], Beam(3)) == [b[0][0] for b in nbest]


def test_sampling_near_temperature_zero_is_greedy_and_a_seed_repeats(trained):
    cap, tv, _ = trained
    assert sample_tokens(cap, tv[:20], temperature=1e-4) == greedy_tokens(cap, tv[:20])
    hot = lambda seed: sample_tokens(cap, np.repeat(tv[:1], 16, 0), temperature=3.0, seed=seed)
    assert hot(1) == hot(1) and hot(1) != hot(2) and len({tuple(t) for t in hot(1)}) > 1


def test_trace_follows_and_keeps_every_step(trained):
    cap, tv, _ = trained
    tokens, steps = trace(cap, tv[0])
    assert tokens == greedy_tokens(cap, tv[:1])[0] and steps['logits'].shape == (len(tokens), cap.tokenizer.vocab_size)
    full = cap.decoder({'transfer_values_input': tv[:1], 'decoder_input': np.array([[cap.tokenizer.token_start, *tokens[:-1]]])})
    np.testing.assert_allclose(steps['logits'], np.asarray(full)[0], atol=1e-4)
    with pytest.raises(ValueError, match='one row per image'): trace(cap, tv[0], Beam(3))
    with pytest.raises(ValueError, match='too long'): list(decode_steps(cap, tv[:1], Follow([[4]*40])))


def attention_captioner():
    "An attention decoder with random weights over the tiny CNN's 8x8x8 feature map."
    im, (_, _, tok, _) = image_model().at('feature_map'), problem(8)
    keras.utils.set_random_seed(1)
    cfg = ATTENTION.config((8, 8, 8), tok.vocab_size, state_size=16, embedding_size=8, num_layers=2)
    return Captioner(im, ATTENTION.build(cfg), tok, ATTENTION), np.random.default_rng(3).normal(size=(4, 512)).astype('float32')


def test_attention_weights_sum_to_one_and_are_keras_own():
    cap, tv = attention_captioner()
    toks = [[4, 5, 6], [5, 5], [6], [4]]
    weights = [np.asarray(s.extras['attention']) for s in decode_steps(cap, tv, Follow(toks))][:3]  # (rows, regions) per step
    np.testing.assert_allclose(np.stack(weights).sum(-1), 1, atol=1e-5)
    d = cap.decoder  # Keras' Attention layer on the last GRU's outputs and the keys, over the same tokens
    inner = keras.Model(d.inputs, [d.get_layer('decoder_gru2').output[0], d.get_layer('attention_keys').output])
    tokens_in = np.array([[cap.tokenizer.token_start, *t[:2], *[0]*(2 - len(t[:2]))] for t in toks])
    query, keys = inner({'transfer_values_input': tv, 'decoder_input': tokens_in})
    _, scores = d.get_layer('attention')([query, keys], return_attention_scores=True)
    for t in range(3):
        rows = [i for i, tk in enumerate(toks) if t <= len(tk)]  # rows still following their tokens at step t
        np.testing.assert_allclose(weights[t][rows], np.asarray(scores)[rows, t], atol=1e-5)
    assert cap.feature_shape == (8, 8)


def test_attention_fed_context_steps_give_the_whole_models_scores(tmp_path):
    "`feed_context`: the first GRU's context is input to the GRUs above, in the training model and in its one-step cut alike."
    im, (_, _, tok, _) = image_model().at('feature_map'), problem(8)
    keras.utils.set_random_seed(1)
    cfg = ATTENTION.config((8, 8, 8), tok.vocab_size, state_size=16, embedding_size=8, num_layers=3, feed_context=True)
    cap = Captioner(im, ATTENTION.build(cfg), tok, ATTENTION)
    assert cap.decoder.get_layer('attention_feed_concat').output.shape[-1] == 32  # the first GRU's output and its context
    tv = np.random.default_rng(3).normal(size=(4, 512)).astype('float32')
    tokens, steps = trace(cap, tv[0])
    full = cap.decoder({'transfer_values_input': tv[:1], 'decoder_input': np.array([[tok.token_start, *tokens[:-1]]])})
    np.testing.assert_allclose(steps['logits'], np.asarray(full)[0], atol=1e-4)
    cap.save(tmp_path/'fed')
    assert greedy_tokens(load_captioner(tmp_path/'fed'), tv) == greedy_tokens(cap, tv)


@pytest.mark.parametrize('design', [TUTORIAL, ATTENTION, MAPPED], ids=lambda d: d.name)
def test_save_and_load_round_trip_every_design_bit_for_bit(design, tmp_path):
    tv, _, tok, _ = problem(6)
    im = image_model()
    im = im.at(design.transfer_layer(im))
    shape = tuple(im.model.get_layer(im.layer).output.shape[1:])
    keras.utils.set_random_seed(2)
    cap = Captioner(im, design.build(design.config(shape, tok.vocab_size, state_size=16, embedding_size=8)), tok, design)
    pixels = np.random.default_rng(4).uniform(0, 255, size=(3, 16, 16, 3)).astype('float32')
    cap.save(tmp_path/'m')
    loaded = load_captioner(tmp_path/'m', design=None if design in (TUTORIAL, ATTENTION) else design)  # a design of the tests' own is passed
    assert loaded.design is design and loaded.image_model.layer == im.layer
    if design is MAPPED:  # not the library's: refused unless passed
        with pytest.raises(ValueError, match="is not one of this library's"): load_captioner(tmp_path/'m')
    assert json.loads((tmp_path/'m'/'model.json').read_text())['design'] == design.name
    for a, b in [(loaded.decoder, cap.decoder), (loaded.image_model.model, im.model)]:
        assert all(np.array_equal(x.numpy(), y.numpy()) for x, y in zip(a.weights, b.weights))
    values = im.values_of(pixels)
    assert np.array_equal(loaded.image_model.values_of(pixels), values)
    assert greedy_tokens(loaded, values) == greedy_tokens(cap, values)
    assert beam_search(loaded, values, k=2) == beam_search(cap, values, k=2)


def test_a_model_folder_saved_before_designs_had_names_loads(trained, tmp_path):
    cap, tv, _ = trained  # the folder `captioning-course tutorial` wrote before: no design in model.json
    (tmp_path/'old').mkdir()
    cap.image_model.model.save(tmp_path/'old'/'image_model.keras'); cap.decoder.save(tmp_path/'old'/'decoder.keras')
    cap.tokenizer.save(tmp_path/'old'/'vocabulary.json')
    (tmp_path/'old'/'model.json').write_text(json.dumps(dict(image_model='concepts', layer='transfer', vocabulary=cap.tokenizer.fingerprint)))
    old = load_captioner(tmp_path/'old')
    assert old.design is TUTORIAL and greedy_tokens(old, tv[:10]) == greedy_tokens(cap, tv[:10])
    (tmp_path/'old'/'model.json').write_text(json.dumps(dict(image_model='concepts', layer='transfer', vocabulary=cap.tokenizer.fingerprint,
                                                              design='nowhere')))
    with pytest.raises(ValueError, match="design 'nowhere' is not one of this library's"): load_captioner(tmp_path/'old')


def test_designs_never_share_a_checkpoint_folder(tmp_path):
    tv, _, tok, _ = problem(4)
    lambdas = [Design(f'lambda {i} (tests)', lambda cfg: build_decoder(cfg), build_one_step, decoder_config) for i in range(2)]
    dirs = {decoder_dir(tmp_path, tv, tok, DecoderConfig(8, tok.vocab_size), TrainConfig(), d) for d in [TUTORIAL, MAPPED, *lambdas]}
    assert len(dirs) == 4
    assert library_design('attention') is ATTENTION


@pytest.mark.parametrize('where', ['folder', 'cwd', 'installed'])
def test_a_model_folder_that_names_a_module_is_refused_without_importing_it(trained, tmp_path, monkeypatch, where):
    cap, _, _ = trained
    folder = cap.save(tmp_path/'m')
    module = 'this' if where == 'installed' else 'pwnmod_captioning_test'
    if where != 'installed':  # a module that would leave a mark if anything ran it
        (folder if where == 'folder' else tmp_path).joinpath(f'{module}.py').write_text(f"open({str(tmp_path/'ran')!r}, 'w').close()")
        monkeypatch.chdir(folder if where == 'folder' else tmp_path); monkeypatch.syspath_prepend(str(folder if where == 'folder' else tmp_path))
    meta = json.loads((folder/'model.json').read_text())
    (folder/'model.json').write_text(json.dumps(meta | dict(design='pwned', design_module=module)))
    was_loaded = module in sys.modules
    with pytest.raises(ValueError, match="design 'pwned' of module .* is not one of this library's"): load_captioner(folder)
    (folder/'model.json').write_text(json.dumps(meta | dict(design_module=module)))  # a library design's name, another module
    with pytest.raises(ValueError, match="is not one of this library's"): load_captioner(folder)
    assert (module in sys.modules) == was_loaded and not (tmp_path/'ran').exists()
    assert load_captioner(folder, design=TUTORIAL).design is TUTORIAL  # the caller vouches for the design


def test_follow_takes_a_caption_as_long_as_the_captioner_writes(trained):
    cap, tv, _ = trained  # beam search can end on its last step without `eeee`: the explorer follows such a caption too
    longest = [cap.tokenizer.word_index['a']]*cap.max_tokens
    steps = list(decode_steps(cap, tv[:1], Follow([longest])))
    assert [int(s.tokens[0]) for s in steps] == longest and not steps[-1].done[0]
