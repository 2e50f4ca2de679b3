"""Which concept CNN lets the attention decoder name the scene's objects? Variants of the image model, side by side in
one run, each judged by what the attention decoder (chapter 08e, its default settings) writes with its features:

    python benchmarks/image_features.py library deeper:1,2,2,2:bf16 [--decoder-epochs N]

A variant is `name:convs:precision[:epochs]`: `convs` is the number of 3x3 convolutions (each with BatchNorm and ReLU)
in each of the four blocks (16-32-64-128 channels), `precision` `fp32` or `bf16` (Keras' `mixed_bfloat16` training;
use it only where the CPU computes bfloat16 natively), `epochs` the pre-training's (default 15). `library` is the
library's own CNN (`concept_cnn`, one convolution per block, float32). For each variant it pre-trains the CNN on the
embedded training split with `train_concept_cnn`'s data, labels and schedule, extracts the 8x8 feature maps, trains
the attention decoder with `trained_decoder`, decodes the validation split greedily, and prints one JSON line: the
pre-training seconds, their ratio to the first variant's, and object recall (per number of objects) and exact match.
The decoders and transfer values land in the dataset's cache like any other (keyed by the CNN's weights). Expect about
10 minutes a variant on 2 cores; `--decoder-epochs 1` (and a variant's `epochs` of 1) makes a quick smoke run.
"""
import argparse, json, time

import keras
from keras import layers

import captioning_course  # first: importing the package quiets TensorFlow's start-up logs
from captioning_course import transfer
from captioning_course.attention import ATTENTION
from captioning_course.data import load_records, load_scenes, prepare_data
from captioning_course.evaluation import object_scores
from captioning_course.generation import caption_split, trained_captioner
from captioning_course.training import TrainConfig

LIBRARY_CNN = transfer.concept_cnn


def variant_cnn(convs, dtype):
    "A `concept_cnn` with `convs` convolutions per block, its layers in `dtype` up to the float32 feature map."
    def build(n_concepts, img_size=64, widths=(16, 32, 64, 128), regions=3):
        inp = keras.Input((img_size, img_size, 3), name='image')
        x = layers.Rescaling(1/255, name='rescale', dtype=dtype)(inp)
        for i, (w, n) in enumerate(zip(widths, convs)):
            if i: x = layers.MaxPooling2D(name=f'pool{i}', dtype=dtype)(x)
            for j in range(n):
                x = layers.Conv2D(w, 3, padding='same', use_bias=False, name=f'conv{i+1}_{j}', dtype=dtype)(x)
                x = layers.ReLU(name=f'relu{i+1}_{j}', dtype=dtype)(layers.BatchNormalization(name=f'bn{i+1}_{j}', dtype=dtype)(x))
        fmap = layers.Identity(name='feature_map', dtype='float32')(x)
        pool = -(-fmap.shape[1]//regions)
        reg = layers.Flatten(name='regions_flat')(layers.MaxPooling2D(pool, strides=pool, padding='same', name='regions')(fmap))
        out = layers.Dense(n_concepts, activation='sigmoid', name='concepts', dtype='float32')(layers.GlobalMaxPooling2D(name='transfer')(fmap))
        return keras.Model(inp, [out, reg], name='concept_cnn')
    return build


def measure(spec, root, decoder_epochs=None):
    name, *rest = spec.split(':')
    convs, precision, epochs = (rest + [None, None, None])[:3]
    transfer.concept_cnn = LIBRARY_CNN if name == 'library' else variant_cnn([int(c) for c in convs.split(',')], 'mixed_bfloat16' if precision == 'bf16' else None)
    t0 = time.time()
    model, _, history = transfer.train_concept_cnn(root, transfer.ConceptConfig(epochs=int(epochs or 15)), verbose=0)
    seconds = time.time() - t0
    if precision == 'bf16': model = transfer.with_policy(model, 'float32')
    im = transfer.concept_image_model(model)
    tcfg = TrainConfig(**(ATTENTION.training | ({'epochs': decoder_epochs} if decoder_epochs else {})))
    cap = trained_captioner(root, ATTENTION, image_model=im, tcfg=tcfg, verbose=0)
    captions = caption_split(cap, transfer.transfer_values(False, im, root, layer=ATTENTION.transfer_layer(im)))
    ids = load_records(False, root).ids
    return dict(variant=spec, pretraining_s=round(seconds, 1), train_auc=round(history['auc'][-1], 4),
                **{k: round(v, 3) for k, v in object_scores(dict(zip(ids, captions)), dict(zip(ids, load_scenes(False, root)))).items()})


if __name__ == '__main__':
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('variants', nargs='*', default=['library'])
    p.add_argument('--decoder-epochs', type=int, default=None, help="the attention decoder's epochs; default: its design's")
    args = p.parse_args()
    root, first = prepare_data('embedded'), None
    for spec in args.variants:
        r = measure(spec, root, args.decoder_epochs)
        first = first or r['pretraining_s']
        print(json.dumps(r | dict(pretraining_ratio=round(r['pretraining_s']/first, 2))), flush=True)
