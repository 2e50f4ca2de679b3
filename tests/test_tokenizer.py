"""Tests of `captioning_course.tokenizer`: the tutorial's rules, the two rules for unknown words, hard captions,
the round trip, and the JSON vocabulary with its fingerprint."""
import json

import numpy as np
import pytest

from captioning_course.data import atomic_write_json
from captioning_course.tokenizer import (MARK_END, MARK_START, Tokenizer, check_fingerprint, flatten, mark_captions,
                                         text_to_words)

CAPTIONS = [['A red circle.', 'Two red stars'], ['a blue star', 'A small, blue square!']]


@pytest.fixture
def marked(): return mark_captions(CAPTIONS)


@pytest.fixture
def tok(marked): return Tokenizer().fit(flatten(marked))


def test_mark_and_flatten(marked):
    assert (MARK_START, MARK_END) == ('ssss ', ' eeee')
    assert marked[0][0] == 'ssss A red circle. eeee'
    assert flatten(marked) == [c for caps in marked for c in caps] and len(flatten(marked)) == 4


def test_text_to_words_keeps_keras_rules_and_non_ascii():
    assert text_to_words('ssss A man, riding; a horse. eeee') == ['ssss', 'a', 'man', 'riding', 'a', 'horse', 'eeee']
    assert text_to_words("Un CAFÉ\u00a0crème (très) don't") == ['un', 'café', 'crème', 'très', "don't"]
    assert text_to_words('cafe\u0301') == ['café']  # decomposed accent: the same word
    assert text_to_words('?!... \t\n') == []


def test_ranks_by_frequency_ties_by_first_occurrence(tok):
    # ssss, eeee: 4 each; a: 3; red, blue: 2 each; then the words seen once, all in first-seen order
    assert tok.words == ['', 'ssss', 'eeee', 'a', 'red', 'blue', 'circle', 'two', 'stars', 'star', 'small', 'square']
    assert tok.word_index['red'] == 4 and tok.word_counts['a'] == 3
    assert (tok.token_start, tok.token_end, tok.vocab_size) == (1, 2, 12)


def test_num_words_counts_padding(marked):
    t = Tokenizer(num_words=4).fit(flatten(marked))
    assert t.words == ['', 'ssss', 'eeee', 'a'] and t.vocab_size == 4
    assert t.texts_to_sequences(['ssss a red zebra eeee']) == [[1, 3, 2]]
    with pytest.raises(ValueError, match='no room'): Tokenizer(num_words=1)


def test_oov_dropped_by_default(tok):
    assert tok.oov_token is None
    assert tok.texts_to_sequences(['ssss A red zebra! eeee']) == [[1, 3, 4, 2]]


def test_oov_token_is_index_1_and_markers_keep_high_ranks(marked, tok):
    t = Tokenizer(oov_token='<unk>').fit(flatten(marked))
    assert t.words[:4] == ['', '<unk>', 'ssss', 'eeee']
    assert (t.token_start, t.token_end) == (tok.token_start + 1, tok.token_end + 1)
    seq = t.texts_to_sequences(['ssss A red zebra! eeee'])[0]
    assert seq == [2, 4, 5, 1, 3]
    assert t.tokens_to_string(seq) == 'ssss a red <unk> eeee'
    small = Tokenizer(num_words=5, oov_token='<unk>').fit(flatten(marked))
    assert small.texts_to_sequences(['ssss a red eeee']) == [[2, 4, 1, 3]]  # beyond num_words -> <unk>


def test_round_trip(marked, tok):
    for caption in flatten(marked):
        tokens = tok.texts_to_sequences([caption])[0]
        assert tok.tokens_to_string(tokens) == ' '.join(text_to_words(caption))
    tokens = tok.captions_to_tokens(marked)
    assert [len(t) for t in tokens] == [2, 2] and tokens[0][0] == [1, 3, 4, 6, 2]
    assert tok.tokens_to_string(np.array([1, 3, 4, 6, 2, 0, 0])) == 'ssss a red circle eeee'
    assert tok.tokens_to_string([1, 3, 4, 6, 2, 0], drop_markers=True) == 'a red circle'
    assert tok.token_to_word(0) == '' and tok.token_to_word(np.int64(4)) == 'red'
    with pytest.raises(IndexError, match='outside the vocabulary'): tok.token_to_word(12)


def test_hard_captions():
    caps = ['', '?!...', 'un café crème', ' '.join(['word']*499) + ' end']
    t = Tokenizer().fit(mark_captions([caps])[0])
    seqs = t.texts_to_sequences(mark_captions([caps])[0])
    assert seqs[0] == seqs[1] == [t.token_start, t.token_end]
    assert t.tokens_to_string(seqs[2], drop_markers=True) == 'un café crème'
    assert len(seqs[3]) == 502 and seqs[3][-2] == t.word_index['end']


def test_misuse_is_refused(marked):
    with pytest.raises(TypeError, match='flat list'): Tokenizer().fit('ssss a caption eeee')
    with pytest.raises(TypeError, match='flatten'): Tokenizer().fit(marked)
    with pytest.raises(TypeError, match='list of texts'): Tokenizer().fit(flatten(marked)).texts_to_sequences('a b')
    with pytest.raises(KeyError, match="'ssss' is not in the vocabulary"): Tokenizer().fit(['a b']).token_start


def test_save_load_and_fingerprint(tmp_path, marked, tok):
    tok.save(tmp_path/'tok.json')
    assert [p.name for p in tmp_path.iterdir()] == ['tok.json']
    loaded = Tokenizer.load(tmp_path/'tok.json')
    assert loaded.words == tok.words and loaded.fingerprint == tok.fingerprint and len(tok.fingerprint) == 64
    assert loaded.captions_to_tokens(marked) == tok.captions_to_tokens(marked)
    assert loaded.word_counts['a'] == 3
    unk = Tokenizer(oov_token='<unk>').fit(flatten(marked))
    unk.save(tmp_path/'unk.json')
    assert Tokenizer.load(tmp_path/'unk.json').texts_to_sequences(['ssss zebra eeee']) == [[2, 1, 3]]
    assert unk.fingerprint != tok.fingerprint
    assert Tokenizer().fit(flatten(marked)).fingerprint == tok.fingerprint  # same captions, same vocabulary


def test_load_refuses_malformed_files(tmp_path, tok):
    tok.save(tmp_path/'tok.json')
    good = json.loads((tmp_path/'tok.json').read_text())
    (tmp_path/'cut.json').write_text((tmp_path/'tok.json').read_text()[:50])
    with pytest.raises(ValueError, match='cut.json is not a tokenizer vocabulary: invalid JSON'):
        Tokenizer.load(tmp_path/'cut.json')
    for name, bad in [('list', []), ('other', {'images': []}), ('nopad', {**good, 'words': ['a', 'b']}),
                      ('twice', {**good, 'words': ['', 'a', 'a'], 'counts': [0, 1, 1]}),
                      ('counts', {**good, 'counts': [1]}), ('oov', {**good, 'oov_token': '<unk>'})]:
        atomic_write_json(tmp_path/f'{name}.json', bad)
        with pytest.raises(ValueError, match=f'{name}.json is not a tokenizer vocabulary'):
            Tokenizer.load(tmp_path/f'{name}.json')
    edited = {**good, 'words': good['words'][:1] + good['words'][2:3] + good['words'][1:2] + good['words'][3:]}
    atomic_write_json(tmp_path/'edited.json', edited)
    with pytest.raises(ValueError, match='edited.json: the vocabulary does not match its fingerprint'):
        Tokenizer.load(tmp_path/'edited.json')


def test_check_fingerprint(tok):
    check_fingerprint(tok.fingerprint, tok.fingerprint, 'model.keras')
    other = Tokenizer(oov_token='<unk>').fit(['ssss a eeee'])
    with pytest.raises(ValueError, match='model.keras was trained with a different vocabulary'):
        check_fingerprint(tok.fingerprint, other.fingerprint, 'model.keras')
