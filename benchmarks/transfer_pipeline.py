"""Transfer-value extraction, side by side in one run, on the same images and the same model:

(a) `process_images`: the package's tf.data pipeline (parallel decode and resize, prefetch, the image model's
    compiled forward pass, in bfloat16 where the CPU computes it natively: see `fast_precision`);
(b) the tutorial's loop: PIL load and resize image by image, then Keras `predict` per batch, in float32;
(c) the model alone: (a)'s forward pass on image batches already in memory (the ceiling for (a)).

Run: `python benchmarks/transfer_pipeline.py [--vgg-images 96] [--cnn-images 4000]`. Prints images/s and the
ratios a/b and a/c for VGG16 at 224x224 (random weights: speed does not depend on them) and for the concept CNN
at 64x64 on the embedded dataset. Nothing here is a timed assertion: it is a comparison made in one run.
"""
import argparse, json, tempfile, time
from pathlib import Path

import numpy as np
import tensorflow as tf

from captioning_course.data import load_image, load_records, prepare_data
from captioning_course.transfer import concept_cnn, concept_image_model, process_images, vgg16


def pipeline(image_model, paths, batch_size):
    "(a) The package's pipeline, into a fresh cache folder so nothing is reused."
    with tempfile.TemporaryDirectory() as d:
        t = time.perf_counter()
        process_images(image_model, paths, d, batch_size=batch_size, chunk_size=len(paths))
        return time.perf_counter() - t


def tutorial_loop(image_model, paths, batch_size):
    "(b) The tutorial's `process_images`: PIL load and resize one by one, `predict` per batch."
    tmodel = image_model.transfer_model()
    h, w = image_model.img_size
    t = time.perf_counter()
    for i in range(0, len(paths), batch_size):
        batch = np.stack([load_image(p, size=(w, h)) for p in paths[i:i+batch_size]])*255.0
        tmodel.predict(batch, verbose=0)
    return time.perf_counter() - t


def model_alone(image_model, paths, batch_size):
    "(c) The pipeline's compiled forward pass alone, on batches already decoded and in memory."
    h, w = image_model.img_size
    batches = [tf.constant(np.stack([load_image(p, size=(w, h)) for p in paths[i:i+batch_size]])*255.0, tf.float32)
               for i in range(0, len(paths), batch_size)]
    predict = image_model.predict_fn()
    predict(batches[0])  # trace once, outside the timing
    t = time.perf_counter()
    for b in batches: predict(b).numpy()
    return time.perf_counter() - t


def compare(name, image_model, paths, batch_size):
    "Time (a), (b), (c) on the same images; return images/s and ratios."
    pipeline(image_model, paths[:batch_size], batch_size)  # warm up: tracing, thread pools, file cache
    tutorial_loop(image_model, paths[:batch_size], batch_size)
    secs = dict(a=pipeline(image_model, paths, batch_size), b=tutorial_loop(image_model, paths, batch_size),
                c=model_alone(image_model, paths, batch_size))
    rate = {k: len(paths)/v for k, v in secs.items()}
    row = dict(model=name, precision=image_model.precision, images=len(paths), batch_size=batch_size, **{f'{k}_img_per_s': round(v, 1) for k, v in rate.items()},
               a_over_b=round(rate['a']/rate['b'], 2), a_over_c=round(rate['a']/rate['c'], 2))
    print(json.dumps(row))
    return row


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--vgg-images', type=int, default=256)
    ap.add_argument('--cnn-images', type=int, default=4000)
    ap.add_argument('--out', type=Path, default=None, help='also write the rows as JSON here')
    args = ap.parse_args()
    root = prepare_data('embedded')
    files = [root/'train2017'/f for f in load_records(True, root).filenames]
    rows = [compare('concept CNN 64x64', concept_image_model(concept_cnn(200)), files[:args.cnn_images], 256)]
    if args.vgg_images: rows.append(compare('VGG16 224x224 fc2', vgg16(weights=None), files[:args.vgg_images], 32))
    print(f"\n{'model':20} {'(a) pipeline':>13} {'(b) tutorial':>13} {'(c) model':>10} {'a/b':>6} {'a/c':>6}  images/s")
    for r in rows:
        print(f"{r['model']:20} {r['a_img_per_s']:13.1f} {r['b_img_per_s']:13.1f} {r['c_img_per_s']:10.1f} {r['a_over_b']:6.2f} {r['a_over_c']:6.2f}")
    if args.out: args.out.write_text(json.dumps(rows, indent=1))


if __name__ == '__main__': main()
