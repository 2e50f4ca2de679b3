"""Caption decoding, side by side in one run, with the same trained decoder and the same images:

(a) the tutorial's algorithm (`model.predict` over the whole sequence for every token) against greedy decoding with
    the one-step model, one image at a time; the captions must be identical;
(b) batched greedy decoding: captions per second over the validation split;
(c) batched beam search (k=3) relative to batched greedy.

Run: `python benchmarks/decoding.py [--images 20]` (uses the embedded dataset's trained decoder, training it first
if no chapter did). Prints the figures as JSON. Nothing here is a timed assertion: it is a comparison in one run.
"""
import argparse, json, time

import numpy as np

from captioning_course.data import prepare_data
from captioning_course.decoder import build_one_step
from captioning_course.generation import Captioner, beam_search, greedy_tokens, tutorial_caption
from captioning_course.training import trained_decoder
from captioning_course.transfer import load_image_model, transfer_values


def timed(fn, *args, **kwargs):
    t = time.perf_counter(); out = fn(*args, **kwargs)
    return out, time.perf_counter() - t


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--images', type=int, default=20, help='images for the one-at-a-time comparison (a)')
    args = ap.parse_args()
    root = prepare_data('embedded')
    im = load_image_model(data_dir=root)
    decoder, tokenizer, _ = trained_decoder(root)
    cap = Captioner(im, build_one_step(decoder), tokenizer)
    tv = np.asarray(transfer_values(False, im, root), np.float32)
    greedy_tokens(cap, tv[:1]); greedy_tokens(cap, tv[:500]); beam_search(cap, tv[:500], k=3)  # compile, warm up
    tutorial_caption(decoder, tokenizer, tv[0])

    slow, t_slow = zip(*[timed(tutorial_caption, decoder, tokenizer, tv[i]) for i in range(args.images)])
    fast, t_fast = zip(*[timed(lambda x: greedy_tokens(cap, x)[0], tv[i:i+1]) for i in range(args.images)])
    _, t_batch = timed(greedy_tokens, cap, tv)
    _, t_beam = timed(beam_search, cap, tv, k=3)
    res = dict(
        a_tutorial_s_per_caption=round(float(np.mean(t_slow)), 4), a_one_step_s_per_caption=round(float(np.mean(t_fast)), 4),
        a_speedup=round(float(np.sum(t_slow)/np.sum(t_fast)), 1), a_identical_captions=list(slow) == list(fast),
        b_greedy_captions_per_s=round(len(tv)/t_batch, 1), b_images=len(tv),
        c_beam3_over_greedy=round(t_beam/t_batch, 2))
    print(json.dumps(res, indent=1))


if __name__ == '__main__': main()
