"""Where the main job's time goes: README's `captioning-course tutorial`, from nothing (a fresh data folder), stage by
stage, as the pipeline itself records them in `metrics.json` (`stage_seconds`):

    python benchmarks/main_job.py [--float32] [--runs N] [--decoder NAME] [--epochs N]

Each run calls the library's `run_tutorial` (what the command runs) in a fresh Python process, so that every run
pays for its imports as the command does.

`--float32` sets `CAPTIONING_PRECISION=float32`, which forces float32 on a CPU that computes bfloat16 natively (on
one that does not, float32 is what runs anyway). `--runs 2` alternates the library's precision and float32, so their
ratio is measured side by side. Prints one JSON line per run (stages, wall seconds, CPU seconds, page faults, and
the quality figures) and a Markdown table.
"""
import argparse, json, multiprocessing, os, resource, tempfile, time
from pathlib import Path

QUALITY = ('BLEU-4', 'CIDEr', 'object recall', 'recall 1 object', 'recall 2 objects', 'recall 3 objects', 'exact match')


def job(folder, float32, options):
    "The main job, in a process of its own: `run_tutorial` into fresh folders under `folder`."
    if float32: os.environ['CAPTIONING_PRECISION'] = 'float32'
    from captioning_course.pipeline import run_tutorial  # imported here: its import time is part of the job
    run_tutorial(f'{folder}/out', data_dir=f'{folder}/data', **options)


def run(float32, options):
    "One main job in fresh folders; its figures."
    with tempfile.TemporaryDirectory() as d:
        before, t0 = resource.getrusage(resource.RUSAGE_CHILDREN), time.time()
        p = multiprocessing.get_context('spawn').Process(target=job, args=(d, float32, options))
        p.start(); p.join()
        if p.exitcode: raise SystemExit(f'the main job failed (exit status {p.exitcode})')
        wall, after = time.time() - t0, resource.getrusage(resource.RUSAGE_CHILDREN)
        m = json.loads(Path(f'{d}/out/metrics.json').read_text())
    return dict(precision='float32' if float32 else 'library', wall_s=round(wall, 1), **m['stage_seconds'],
                user_s=round(after.ru_utime - before.ru_utime, 1), sys_s=round(after.ru_stime - before.ru_stime, 1),
                minor_faults=after.ru_minflt - before.ru_minflt, **{k: round(m[k], 3) for k in QUALITY if k in m})


if __name__ == '__main__':
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('--float32', action='store_true', help='force float32 in every run')
    p.add_argument('--runs', type=int, default=1, help='runs; with more than one, they alternate the library precision and float32')
    p.add_argument('--decoder', default='tutorial', help="a design's name, as `tutorial --decoder`")
    p.add_argument('--epochs', type=int, default=None, help="decoder epochs (default: the design's)")
    args = p.parse_args()
    rows, options = [], dict(design=args.decoder, epochs=args.epochs)
    for i in range(args.runs):
        rows.append(run(args.float32 or (args.runs > 1 and i % 2 == 1), options))
        print(json.dumps(rows[-1]), flush=True)
    cols = list(rows[0])
    print('| ' + ' | '.join(cols) + ' |\n' + '|---'*len(cols) + '|')
    for r in rows: print('| ' + ' | '.join(str(r.get(c, '')) for c in cols) + ' |')
