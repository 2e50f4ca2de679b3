"""Caption decoding, side by side in one run, with the same trained decoders and the same images:

(a) the tutorial's algorithm (`model.predict` over the whole sequence for every token) against greedy decoding with
    the one decoding loop, one image at a time; the captions must be identical;
(b) batched greedy decoding: captions per second over the validation split;
(c) batched beam search relative to batched greedy, for the tutorial's decoder and the attention decoder:
    k=1 (the same captions as greedy; target: at most 1.1x greedy's time) and k=3 (its arithmetic bound is about
    3x, since every step runs the decoder on three rows per image; target: at most 3.3x);
(d) batched greedy decoding of the Transformer (its key/value cache) against the attention GRU's, in alternating
    rounds: the Transformer's captions/s over the attention GRU's (target: at least 2/3).

Each ratio is the median over `--repeats` rounds of the ratio measured within a round, where greedy decoding and
both beam searches run back to back (in a rotating order), so that a slow moment of the machine (a shared VM's
CPU comes and goes) hits the methods of a round alike. Run: `python benchmarks/decoding.py [--images 20] [--repeats 3]` (uses the embedded dataset's
trained decoders, training them first if no chapter did). Prints the figures as JSON. Nothing here is a timed
assertion: it is a comparison made in one run.
"""
import argparse, json, time

import numpy as np

from captioning_course.attention import ATTENTION
from captioning_course.data import prepare_data
from captioning_course.decoder import TUTORIAL
from captioning_course.transformer import TRANSFORMER
from captioning_course.generation import beam_search, greedy_tokens, trained_captioner, tutorial_caption
from captioning_course.transfer import load_image_model, transfer_values


def timed(fn, *args, **kwargs):
    t = time.perf_counter(); out = fn(*args, **kwargs)
    return out, time.perf_counter() - t


def rounds(methods, repeats):
    "Each method's seconds in each of `repeats` rounds, `{name: [seconds, ...]}`; the order rotates from round to round."
    names, out = list(methods), {name: [] for name in methods}
    for r in range(repeats):
        for name in names[r % len(names):] + names[:r % len(names)]: out[name].append(timed(methods[name])[1])
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--images', type=int, default=20, help='images for the one-at-a-time comparison (a)')
    ap.add_argument('--repeats', type=int, default=9, help='rounds of timings; the median ratio counts')
    args = ap.parse_args()
    root = prepare_data('embedded')
    im = load_image_model(data_dir=root)
    res, greedy = {}, {}
    for design in (TUTORIAL, ATTENTION):
        cap = trained_captioner(root, design, image_model=im)
        tv = np.asarray(transfer_values(False, cap.image_model, root), np.float32)
        for k in (1, 3): beam_search(cap, tv[:8], k=k)  # compile every step once
        greedy_tokens(cap, tv[:8])
        if design is TUTORIAL:
            tutorial_caption(cap.decoder, cap.tokenizer, tv[0])
            slow, t_slow = zip(*[timed(tutorial_caption, cap.decoder, cap.tokenizer, tv[i]) for i in range(args.images)])
            fast, t_fast = zip(*[timed(lambda x: greedy_tokens(cap, x)[0], tv[i:i+1]) for i in range(args.images)])
            res.update(a_tutorial_s_per_caption=round(float(np.mean(t_slow)), 4), a_one_step_s_per_caption=round(float(np.mean(t_fast)), 4),
                       a_speedup=round(float(np.sum(t_slow)/np.sum(t_fast)), 1), a_identical_captions=list(slow) == list(fast))
        t = rounds({'greedy': lambda: greedy_tokens(cap, tv), 'beam1': lambda: beam_search(cap, tv, k=1),
                    'beam3': lambda: beam_search(cap, tv, k=3)}, args.repeats)
        ratio = lambda name: round(float(np.median(np.array(t[name])/np.array(t['greedy']))), 2)
        same = [b[0][0] for b in beam_search(cap, tv, k=1)] == greedy_tokens(cap, tv)
        res[design.name] = dict(images=len(tv), greedy_captions_per_s=round(len(tv)/min(t['greedy']), 1),
                                beam1_over_greedy=ratio('beam1'), beam3_over_greedy=ratio('beam3'),
                                beam1_same_captions_as_greedy=same)
        greedy[design.name] = (cap, tv)
    cap = trained_captioner(root, TRANSFORMER, image_model=im)
    greedy['transformer'] = cap, np.asarray(transfer_values(False, cap.image_model, root), np.float32)
    greedy_tokens(*greedy['transformer'])  # compile its step
    t = rounds({name: lambda name=name: greedy_tokens(*greedy[name]) for name in ('attention', 'transformer')}, args.repeats)
    res['transformer'] = dict(images=len(greedy['transformer'][1]), greedy_captions_per_s=round(len(greedy['transformer'][1])/min(t['transformer']), 1),
                              captions_per_s_over_attention=round(float(np.median(np.array(t['attention'])/np.array(t['transformer']))), 2))
    print(json.dumps(res, indent=1))


if __name__ == '__main__': main()
