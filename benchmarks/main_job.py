"""Where the main job's time goes: README's `captioning-course tutorial`, from nothing (a fresh data folder), stage by
stage, as the command itself records them in `metrics.json` (`stage_seconds`):

    python benchmarks/main_job.py [--float32] [--runs N] [-- extra tutorial options]

`--float32` sets `CAPTIONING_PRECISION=float32`, which forces float32 on a CPU that computes bfloat16 natively (on
one that does not, float32 is what runs anyway). `--runs 2` alternates the library's precision and float32, so their
ratio is measured side by side. Prints one JSON line per run (stages, wall seconds, CPU seconds, page faults, and
the quality figures) and a Markdown table.
"""
import argparse, json, os, resource, subprocess, sys, tempfile, time
from pathlib import Path

QUALITY = ('BLEU-4', 'CIDEr', 'object recall', 'recall 1 object', 'recall 2 objects', 'recall 3 objects', 'exact match')


def run(float32, extra):
    "One main job in fresh folders; its figures."
    with tempfile.TemporaryDirectory() as d:
        env = dict(os.environ, **({'CAPTIONING_PRECISION': 'float32'} if float32 else {}))
        before, t0 = resource.getrusage(resource.RUSAGE_CHILDREN), time.time()
        subprocess.run([str(Path(sys.executable).parent/'captioning-course'), 'tutorial', '--data-dir', f'{d}/data', '--out', f'{d}/out', *extra],
                       env=env, check=True, stdout=subprocess.DEVNULL)
        wall, after = time.time() - t0, resource.getrusage(resource.RUSAGE_CHILDREN)
        m = json.loads(Path(f'{d}/out/metrics.json').read_text())
    return dict(precision='float32' if float32 else 'library', wall_s=round(wall, 1), **m['stage_seconds'],
                user_s=round(after.ru_utime - before.ru_utime, 1), sys_s=round(after.ru_stime - before.ru_stime, 1),
                minor_faults=after.ru_minflt - before.ru_minflt, **{k: round(m[k], 3) for k in QUALITY if k in m})


if __name__ == '__main__':
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('--float32', action='store_true', help='force float32 in every run')
    p.add_argument('--runs', type=int, default=1, help='runs; with more than one, they alternate the library precision and float32')
    p.add_argument('extra', nargs='*', help="options for `tutorial`, after `--`")
    args = p.parse_args()
    rows = []
    for i in range(args.runs):
        rows.append(run(args.float32 or (args.runs > 1 and i % 2 == 1), args.extra))
        print(json.dumps(rows[-1]), flush=True)
    cols = list(rows[0])
    print('| ' + ' | '.join(cols) + ' |\n' + '|---'*len(cols) + '|')
    for r in rows: print('| ' + ' | '.join(str(r.get(c, '')) for c in cols) + ' |')
