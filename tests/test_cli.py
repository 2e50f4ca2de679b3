"""Tests of the `captioning-course` command line: `tutorial` end to end on a tiny dataset, then `caption` and
`evaluate` with the model it saved, and the errors a user can meet."""
import json, shutil, subprocess

import pytest

from captioning_course.cli import main
from captioning_course.data import embedded_dataset, load_records
from captioning_course.tokenizer import Tokenizer


@pytest.fixture(scope='module')
def run(tmp_path_factory):
    "A tiny dataset and the output folder of `captioning-course tutorial` on it."
    tmp = tmp_path_factory.mktemp('cli')
    data = embedded_dataset(tmp/'data', n_train=300, n_val=40, seed=2)
    out = tmp/'out'
    assert main(['tutorial', '--data-dir', str(data), '--out', str(out), '--epochs', '2', '--concept-epochs', '2']) == 0
    return data, out


def test_tutorial_writes_model_metrics_and_samples(run):
    data, out = run
    names = {p.name for p in out.iterdir()}
    assert {'metrics.json', 'samples.png', 'decoder.keras', 'vocabulary.json', 'model.json', 'image_model.keras'} <= names
    m = json.loads((out/'metrics.json').read_text())
    assert m['images'] == 40
    for k in ('BLEU-1', 'BLEU-4', 'METEOR', 'ROUGE-L', 'CIDEr', 'object recall', 'recall 1 object'): assert 0 <= m[k] <= 10
    assert (out/'samples.png').stat().st_size > 10_000


def test_caption_and_evaluate_with_the_saved_model(run, capsys):
    data, out = run
    files = [data/'val2017'/f for f in load_records(False, data).filenames[:2]]
    assert main(['caption', *map(str, files), '--model', str(out)]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 2 and all(l.split('\t')[0] == str(f) and l.split('\t')[1] for l, f in zip(lines, files))
    assert main(['evaluate', '--data-dir', str(data), '--model', str(out)]) == 0
    assert json.loads(capsys.readouterr().out)['images'] == 40


def test_missing_and_non_image_files_are_refused(run, tmp_path, capsys):
    _, out = run
    (tmp_path/'notes.jpg').write_text('not an image')
    for bad, says in (('missing.jpg', 'missing.jpg: no such image file'), ('notes.jpg', 'notes.jpg')):
        assert main(['caption', str(tmp_path/bad), '--model', str(out)]) == 1
        assert says in capsys.readouterr().err


def test_a_vocabulary_that_does_not_belong_to_the_model_is_refused(run, tmp_path, capsys):
    data, out = run
    model = tmp_path/'model'
    shutil.copytree(out, model)
    Tokenizer(num_words=5).fit(['ssss a b c eeee']).save(model/'vocabulary.json')
    img = data/'val2017'/load_records(False, data).filenames[0]
    assert main(['caption', str(img), '--model', str(model)]) == 1
    assert 'different vocabulary' in capsys.readouterr().err


def test_console_script_is_installed():
    exe = shutil.which('captioning-course') or pytest.fail('captioning-course is not on PATH: pip install -e .')
    res = subprocess.run([exe, '--help'], capture_output=True, text=True, timeout=60)
    assert res.returncode == 0 and 'tutorial' in res.stdout
    res = subprocess.run([exe, 'caption', '/nonexistent.jpg', '--model', '/nonexistent'], capture_output=True, text=True, timeout=120)
    assert res.returncode == 1 and 'no such image file' in res.stderr


def test_a_failure_while_scoring_keeps_the_saved_model(run, tmp_path, monkeypatch, capsys):
    import captioning_course.evaluation as evaluation
    data, _ = run
    def broken(*args, **kwargs): raise OSError('METEOR crashed')
    monkeypatch.setattr(evaluation, 'evaluate', broken)
    out = tmp_path/'out'
    assert main(['tutorial', '--data-dir', str(data), '--out', str(out), '--epochs', '2', '--concept-epochs', '2']) == 1
    assert 'METEOR crashed' in capsys.readouterr().err
    assert {'decoder.keras', 'vocabulary.json', 'model.json', 'samples.png'} <= {p.name for p in out.iterdir()}
    assert main(['caption', str(data/'val2017'/load_records(False, data).filenames[0]), '--model', str(out)]) == 0


@pytest.mark.parametrize('decoder', ['attention', 'transformer'])
def test_tutorial_with_another_decoder_saves_a_folder_caption_and_evaluate_load(decoder, run, tmp_path, capsys):
    data, _ = run
    out = tmp_path/decoder
    assert main(['tutorial', '--decoder', decoder, '--data-dir', str(data), '--out', str(out), '--epochs', '1', '--concept-epochs', '2']) == 0
    m = json.loads((out/'metrics.json').read_text())
    assert m['decoder'] == decoder and m['epochs'] == 1 and m['images'] == 40
    saved = json.loads((out/'model.json').read_text())
    assert (saved['design'], saved['layer']) == (decoder, 'feature_map')
    capsys.readouterr()
    img = data/'val2017'/load_records(False, data).filenames[0]
    assert main(['caption', str(img), '--model', str(out)]) == 0
    assert capsys.readouterr().out.split('\t')[1].strip()
    assert main(['evaluate', '--data-dir', str(data), '--model', str(out), '--decoding', 'beam']) == 0
    assert json.loads(capsys.readouterr().out)['images'] == 40


def test_the_command_lines_choices_are_the_librarys():
    from captioning_course import attention, cli, decoder, transfer, transformer
    assert cli.DECODERS == tuple(n for n, d in decoder.DESIGNS.items() if d.module.startswith('captioning_course.'))
    assert cli.IMAGE_MODELS == transfer.IMAGE_MODELS
