"""Tests of `captioning_course.tokenizer` beyond the tokenizer chapter's own: ties in the ranking, an unknown-word
token with a small vocabulary, and every way a vocabulary file can be malformed."""
import json

import pytest

from captioning_course.files import atomic_write_json
from captioning_course.tokenizer import Tokenizer, flatten, mark_captions

CAPTIONS = [['A red circle.', 'Two red stars'], ['a blue star', 'A small, blue square!']]


@pytest.fixture
def marked(): return mark_captions(CAPTIONS)


@pytest.fixture
def tok(marked): return Tokenizer().fit(flatten(marked))


def test_ranks_by_frequency_ties_by_first_occurrence(tok):
    # ssss, eeee: 4 each; a: 3; red, blue: 2 each; then the words seen once, all in first-seen order
    assert tok.words == ['', 'ssss', 'eeee', 'a', 'red', 'blue', 'circle', 'two', 'stars', 'star', 'small', 'square']
    assert tok.word_index['red'] == 4 and tok.word_counts['a'] == 3
    assert (tok.token_start, tok.token_end, tok.vocab_size) == (1, 2, 12)


def test_oov_token_is_index_1_and_markers_keep_high_ranks(marked, tok):
    t = Tokenizer(oov_token='<unk>').fit(flatten(marked))
    assert t.words[:4] == ['', '<unk>', 'ssss', 'eeee']
    assert (t.token_start, t.token_end) == (tok.token_start + 1, tok.token_end + 1)
    seq = t.texts_to_sequences(['ssss A red zebra! eeee'])[0]
    assert seq == [2, 4, 5, 1, 3]
    assert t.tokens_to_string(seq) == 'ssss a red <unk> eeee'
    small = Tokenizer(num_words=5, oov_token='<unk>').fit(flatten(marked))
    assert small.texts_to_sequences(['ssss a red eeee']) == [[2, 4, 1, 3]]  # beyond num_words -> <unk>


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
