"""Training levers, side by side in one run: each variant trains a fresh decoder (and, if asked, a fresh concept CNN)
on the embedded dataset, decodes the validation split greedily, and is scored with the rest by one `evaluate_many`:

    python benchmarks/training_levers.py [VARIANT ...] [--design tutorial|attention|transformer]

A variant is `name[:key=value,...]`. Keys are `TrainConfig` fields (`epochs`, `batch_size`, `learning_rate`,
`length_window`, `schedule`, `precision`, `seed`), the design's sizes (`state_size`, `embedding_size`, ...), or `cnn_` and a
`ConceptConfig` field (`cnn_epochs`, `cnn_batch_size`, `cnn_learning_rate`): a variant with any `cnn_` key
pre-trains its own concept CNN with `train_concept_cnn` (timed; its transfer values land in the dataset's cache),
the others share the library's cached one. Everything not given is the design's default. The first variant is the
reference: every time is also printed as its ratio to the first's, measured in this run on this machine.
`epochs=0` with `cnn_` keys times the concept CNN's pre-training alone (no decoder).

With no variants it compares the library's settings with the tutorial's batches and schedule (`today`) for the
tutorial decoder. A variant's `precision=float32` or `precision=bfloat16` sets the decoder's training precision
(default: the design's, else `fast_precision()`); `CAPTIONING_PRECISION=float32` forces float32 everywhere, the image
model's transfer values included. Prints one JSON
line per variant as it finishes, then a Markdown table.
"""
import argparse, json, tempfile, time
from dataclasses import fields
from pathlib import Path

import captioning_course  # first: importing the package quiets TensorFlow's start-up logs
from captioning_course import transfer
from captioning_course.data import load_records, prepare_data
from captioning_course.designs import library_design
from captioning_course.evaluation import evaluate_many, scores_table
from captioning_course.generation import Captioner, caption_split
from captioning_course.generator import batch_dataset
from captioning_course.tokenizer import mark_captions
from captioning_course.training import TrainConfig, dataset_tokenizer, train_decoder

DEFAULT = ['today:length_window=1,schedule=constant,learning_rate=0.001', 'library']
TRAIN_KEYS = {f.name for f in fields(TrainConfig)}


def parse(spec):
    "`name:key=value,...` -> name, {key: value} (numbers as numbers, `a-b-c` as a tuple of ints)."
    name, _, rest = spec.partition(':')
    def value(v):
        if '-' in v.strip('-'): return tuple(int(x) for x in v.split('-'))
        for t in (int, float):
            try: return t(v)
            except ValueError: pass
        return v
    return name, {k: value(v) for k, v in (kv.split('=') for kv in rest.split(',') if kv)}


def padding_share(tv, tokens, tcfg):
    "The share of target positions that are padding, over one epoch of `tcfg`'s batches."
    real = cells = 0
    for _, y in batch_dataset(tv, tokens, tcfg.batch_size, tcfg.mode, tcfg.seed, 0, 1, tcfg.length_window):
        real += int((y.numpy() > 0).sum()); cells += int(y.shape[0]*y.shape[1])
    return 1 - real/cells


def image_model(root, cnn):
    "The library's cached concept CNN, or (for `cnn_` keys) a fresh one and the seconds it took to pre-train."
    if not cnn: return transfer.load_image_model(data_dir=root), None
    t0 = time.time()
    model, _, _ = transfer.train_concept_cnn(root, transfer.ConceptConfig(**cnn), verbose=0)
    return transfer.concept_image_model(model), time.time() - t0


def measure(name, keys, design, root, tokenizer, tokens):
    cnn = {k[4:]: v for k, v in keys.items() if k.startswith('cnn_')}
    im, cnn_s = image_model(root, cnn)
    if keys.get('epochs') == 0: return dict(variant=name, settings=keys, cnn_s=round(cnn_s, 1)), None  # the image model's time alone
    im = im.at(design.transfer_layer(im))
    tv = transfer.transfer_values(True, im, root)
    tcfg = TrainConfig(**(design.training | {k: v for k, v in keys.items() if k in TRAIN_KEYS}))
    sizes = design.sizes | {k: v for k, v in keys.items() if k not in TRAIN_KEYS and not k.startswith('cnn_')}
    dcfg = design.config(tuple(im.model.get_layer(im.layer).output.shape[1:]), tokenizer.vocab_size, **sizes)  # a feature map's (h, w, c)
    with tempfile.TemporaryDirectory() as d:
        model, history = train_decoder(Path(d)/'decoder', tv, tokens, tokenizer, dcfg, tcfg, verbose=0, design=design)
    cap = Captioner(im, model, tokenizer, design)
    t0 = time.time()
    captions = caption_split(cap, transfer.transfer_values(False, im, root))
    row = dict(variant=name, settings=keys, epochs=tcfg.epochs, padding=round(padding_share(tv, tokens, tcfg), 3),
               train_s=round(sum(history['seconds']), 1), s_per_epoch=round(sum(history['seconds'])/tcfg.epochs, 1),
               final_loss=round(history['loss'][-1], 4), captions_s=round(time.time() - t0, 1), params=model.count_params())
    if cnn_s is not None: row['cnn_s'] = round(cnn_s, 1)
    return row, captions


if __name__ == '__main__':
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('variants', nargs='*', default=DEFAULT)
    p.add_argument('--design', default='tutorial', help="a library design's name")
    p.add_argument('--data-dir', type=Path, default=None, help='default: the embedded dataset in its usual folder')
    args = p.parse_args()
    design = library_design(args.design)
    root = prepare_data('embedded', args.data_dir)
    tokenizer = dataset_tokenizer(root)
    tokens = tokenizer.captions_to_tokens(mark_captions(load_records(True, root).captions))
    ids, rows, systems = load_records(False, root).ids, {}, {}
    for spec in args.variants:
        name, keys = parse(spec)
        row, captions = measure(name, keys, design, root, tokenizer, tokens)
        for k in ('train_s', 'cnn_s'):
            ref = next((r[k] for r in [*rows.values(), row] if k in r), None)  # the first variant that has it
            if k in row: row[k.replace('_s', '_ratio')] = round(row[k]/ref, 2)
        rows[name] = row
        if captions is not None: systems[name] = dict(zip(ids, captions))
        print(json.dumps(row), flush=True)
    scores = evaluate_many(systems, root) if systems else {}
    keep = ('object recall', 'recall 1 object', 'recall 2 objects', 'recall 3 objects', 'exact match', 'BLEU-4', 'CIDEr')
    print(scores_table({n: {k: v for k, v in r.items() if k not in ('variant', 'settings')} | {k: scores[n][k] for k in keep if k in scores.get(n, {})}
                        for n, r in rows.items()}))
