"""Each chapter's run time as a learner meets it: the notebooks executed one after another, in the course's order,
in one data folder, so every chapter finds what earlier chapters made (the dataset, the image model, the shared
decoder) and makes its own models from nothing:

    python benchmarks/chapters.py [--data-dir DIR] [--inplace] [CHAPTER ...]

CHAPTER is a notebook's name or prefix (`06`, `08a`); default: every numbered chapter. `--data-dir` defaults to a
fresh temporary folder (then the dataset is drawn first, and timed apart). `--inplace` stores each executed notebook
with its outputs (without widget state), as they are committed; run `nbdev_clean` after it. Prints one JSON line a
chapter and a Markdown table; the target is 180 s a chapter on 2 CPU cores.
"""
import argparse, json, os, sys, tempfile, time
from pathlib import Path

import nbformat
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError

NBS = Path(__file__).resolve().parent.parent/'nbs'
TARGET_S = 180


def chapters(names):
    "The numbered notebooks matching `names` (all of them if empty), in the course's order."
    nbs = sorted(p for p in NBS.glob('[0-9]*.ipynb'))
    return [p for p in nbs if not names or any(p.name.startswith(n) for n in names)]


def run(path, inplace):
    "Execute one notebook from its own folder; its wall seconds."
    nb = nbformat.read(path, as_version=4)
    t0 = time.time()
    NotebookClient(nb, timeout=1800, kernel_name='python3', resources={'metadata': {'path': str(path.parent)}},
                   store_widget_state=False).execute()
    seconds = time.time() - t0
    if inplace: nbformat.write(nb, path)
    return seconds


if __name__ == '__main__':
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('chapters', nargs='*')
    p.add_argument('--data-dir', type=Path, default=None)
    p.add_argument('--inplace', action='store_true', help='store the executed notebooks')
    args = p.parse_args()
    data_dir = args.data_dir or Path(tempfile.mkdtemp(prefix='chapters-'))/'embedded'
    os.environ['CAPTIONING_DATA_DIR'] = str(data_dir)  # the kernels inherit it
    os.environ.pop('IN_TEST', None)  # the chapters' own budgets, as a learner runs them
    if not data_dir.exists():
        t0 = time.time()
        from captioning_course.data import prepare_data
        prepare_data('embedded', data_dir)
        print(json.dumps(dict(chapter='(dataset)', seconds=round(time.time() - t0, 1))), flush=True)
    rows = []
    for path in chapters(args.chapters):
        t0 = time.time()
        try: rows.append(dict(chapter=path.stem, seconds=round(run(path, args.inplace), 1)))
        except CellExecutionError as e:  # a failing chapter is reported; the others still run
            rows.append(dict(chapter=path.stem, seconds=round(time.time() - t0, 1), error=str(e).strip().splitlines()[-1][:300]))
        print(json.dumps(rows[-1]), flush=True)
    print(f'\n| chapter | seconds | within {TARGET_S} s |\n|---|---|---|')
    for r in rows: print(f"| {r['chapter']} | {r['seconds']} | {'failed: ' + r['error'] if 'error' in r else 'yes' if r['seconds'] <= TARGET_S else 'no'} |")
    print(f"| all | {sum(r['seconds'] for r in rows):.0f} | |")
    sys.exit(1 if any('error' in r for r in rows) else 0)
