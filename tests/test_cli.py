"""Tests of the `captioning-course` command line: `tutorial` end to end on a tiny dataset, then `caption` and
`evaluate` with the model it saved, and the errors a user can meet."""
import json, shutil, subprocess
from dataclasses import asdict

import pytest

from captioning_course.cli import main
from captioning_course.data import load_records
from captioning_course.embedded import embedded_dataset
from captioning_course.tokenizer import Tokenizer
from captioning_course.decoder import TUTORIAL
from captioning_course.training import TrainConfig


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
    import captioning_course.pipeline as pipeline
    data, _ = run
    def broken(*args, **kwargs): raise OSError('METEOR crashed')
    monkeypatch.setattr(pipeline, 'evaluate', broken)  # the pipeline's scoring stage
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
    from captioning_course import cli, designs, transfer
    assert cli.parser().parse_args(['tutorial', '--decoder', 'transformer']).decoder == 'transformer'
    assert [a for a in cli.parser()._subparsers._group_actions[0].choices['tutorial']._actions if a.dest == 'decoder'][0].choices == tuple(designs.LIBRARY)
    assert cli.IMAGE_MODELS == transfer.IMAGE_MODELS


def test_caption_refuses_a_model_folder_that_names_a_module(run, tmp_path, capsys):
    data, out = run
    folder = tmp_path/'m'; shutil.copytree(out, folder)
    (folder/'evil_captioning_test.py').write_text(f"open({str(tmp_path/'ran')!r}, 'w').close()")
    meta = json.loads((folder/'model.json').read_text())
    (folder/'model.json').write_text(json.dumps(meta | dict(design='evil', design_module='evil_captioning_test')))
    img = data/'val2017'/load_records(False, data).filenames[0]
    capsys.readouterr()
    assert main(['caption', str(img), '--model', str(folder)]) == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "is not one of this library's" in err and not (tmp_path/'ran').exists()


def test_version_and_every_options_default_are_in_the_help():
    from captioning_course import __version__
    exe = shutil.which('captioning-course') or pytest.fail('captioning-course is not on PATH: pip install -e .')
    res = subprocess.run([exe, '--version'], capture_output=True, text=True, timeout=60)
    assert res.returncode == 0 and res.stdout.strip() == f'captioning-course {__version__}'
    from captioning_course.cli import parser
    subs = parser()._subparsers._group_actions[0].choices
    assert set(subs) == {'data', 'tutorial', 'caption', 'evaluate', 'pretrain'}
    for name, sub in subs.items():
        text = ' '.join(sub.format_help().split())
        for action in sub._actions:
            if action.dest == 'help': continue
            assert action.help, f'{name} {action.dest}: no help'
            if action.option_strings: assert 'default' in sub.formatter_class('x')._get_help_string(action), f'{name} {action.dest}: no default in its help'
        assert '(default: greedy)' in text or name in ('data', 'caption', 'pretrain')


def test_stdout_holds_only_the_result_and_metrics_name_the_device(run, tmp_path, capsys):
    "A second run on the same data finds every stage's result; its epoch lines and progress go to stderr, the JSON to stdout."
    from captioning_course.transfer import compute_device
    data, _ = run
    out = tmp_path/'again'
    assert main(['tutorial', '--data-dir', str(data), '--out', str(out), '--epochs', '2', '--concept-epochs', '2']) == 0
    res = capsys.readouterr()
    printed = json.loads(res.out)  # nothing else on stdout
    device = compute_device()
    assert printed == json.loads((out/'metrics.json').read_text())
    assert printed['device'] == device['device'] and printed['precision'] in ('float32', 'bfloat16')
    assert printed['training'] | dict(epochs=0) == asdict(TrainConfig(**(TUTORIAL.training | dict(epochs=0))).resolved())  # the settings it trained with
    assert f"training on {device['device']} in {printed['precision']}" in res.err
    assert main(['evaluate', '--data-dir', str(data), '--model', str(out)]) == 0
    assert json.loads(capsys.readouterr().out)['images'] == 40


def test_evaluate_redirected_to_a_file_is_valid_json(run, tmp_path):
    "As a user types it: `captioning-course evaluate ... > out.json`, with Keras and TensorFlow free to print."
    data, out = run
    exe = shutil.which('captioning-course') or pytest.fail('captioning-course is not on PATH: pip install -e .')
    with open(tmp_path/'out.json', 'w') as f:
        res = subprocess.run([exe, 'evaluate', '--data-dir', str(data), '--model', str(out)], stdout=f, stderr=subprocess.PIPE, text=True, timeout=600)
    assert res.returncode == 0, res.stderr[-2000:]
    assert json.loads((tmp_path/'out.json').read_text())['images'] == 40


def test_keras_epoch_lines_go_to_stderr(monkeypatch, capsys):
    "Whatever a stage prints while it works (Keras' epoch lines, here a stand-in) is progress: stderr."
    import captioning_course.cli as cli
    def noisy(args):
        print('Epoch 1/2 - 3s - loss: 2.1')
        return '{"ok": 1}'
    monkeypatch.setattr(cli, 'cmd_data', noisy)
    assert main(['data']) == 0
    res = capsys.readouterr()
    assert json.loads(res.out) == {'ok': 1} and 'Epoch 1/2' in res.err


def test_a_runtime_error_is_one_line(monkeypatch, capsys):
    import captioning_course.cli as cli
    def broken(args): raise RuntimeError('PTBTokenizer failed:\n  java exited with status 1\n')
    monkeypatch.setattr(cli, 'cmd_data', broken)
    assert main(['data']) == 1
    err = capsys.readouterr().err
    assert err == 'captioning-course: error: PTBTokenizer failed: java exited with status 1\n'
