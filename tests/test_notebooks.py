"""Tests of the committed notebooks themselves: what a reader of the docs site sees in their stored outputs."""
import json, re
from pathlib import Path

import pytest

NBS = sorted((Path(__file__).parent.parent/'nbs').glob('*.ipynb'))
TF_LOG = re.compile(r'^[IWEF]\d{4} \d\d:\d\d:\d+\.\d+ |absl::InitializeLog|oneDNN|cuInit|cudart_stub|cuda_platform|'
                    r'To enable the following instructions|WARNING:tensorflow:', re.M)


def output_texts(nb):
    for i, cell in enumerate(nb['cells']):
        for out in cell.get('outputs', []):
            text = out.get('text') if out.get('output_type') == 'stream' else out.get('data', {}).get('text/plain')
            if text: yield i, ''.join(text)


@pytest.mark.parametrize('path', NBS, ids=[p.name for p in NBS])
def test_no_tensorflow_log_lines_in_stored_outputs(path):
    found = [(i, m.group(0)) for i, text in output_texts(json.loads(path.read_text())) for m in TF_LOG.finditer(text)]
    assert not found, f'{path.name}: TensorFlow log lines in the outputs of cells {sorted({i for i, _ in found})}'
