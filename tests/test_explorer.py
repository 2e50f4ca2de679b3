"""The explorer chapter in a real browser: JupyterLab runs the notebook, a person presses "next word".

JupyterLab is started on 127.0.0.1 with fresh settings, workspaces, config and runtime folders, on a copy of
`nbs/09_explorer.ipynb` in a throwaway nbdev project (so neither the committed notebook nor the library is ever
written, not even by the notebook's closing `nbdev_export`; autosave is off as well). Debian's chromium,
driven by Playwright (no browser download), opens the copy and runs all its cells once (the `explorer_page`
fixture); the first test presses "next word" twice and checks that the caption's words and the chart of likeliest
words appear. JupyterLab and its kernel are stopped whatever happens. The settings and waits follow
`browser-testing.md` of the shared references: each of them once made such a test flaky when missing.

Screenshots. The docs site runs no widgets, so the chapter shows the explorer through screenshots that the second
test takes, each cropped to the widget, into `test-artifacts/`:

- `explorer-image.png`: the attention decoder chosen, a validation image with three objects, its predicted caption
  and its true captions, before any step;
- `explorer-step-01.png`, `explorer-step-03.png`, `explorer-step-07.png`: after 1, 3 and 7 clicks of "next word":
  the caption so far, the chart of the likeliest next words (the chosen one in orange) and the attention map over
  the image.

With `CAPTIONING_UPDATE_SCREENSHOTS=1` in the environment the test also writes them, reduced to 256 colours, to
`nbs/images/`, the copies the chapter shows: `CAPTIONING_UPDATE_SCREENSHOTS=1 pytest tests/test_explorer.py`,
then look at them and commit them. A failed test leaves a full-page `explorer-failure.png` (or
`explorer-screenshots-failure.png`) in `test-artifacts/`."""
import ctypes, json, os, re, shutil, signal, socket, subprocess, sys, time, urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOK, ARTIFACTS, IMAGES = ROOT/'nbs'/'09_explorer.ipynb', ROOT/'test-artifacts', ROOT/'nbs'/'images'
CHROMIUM = os.environ.get('CHROMIUM_PATH') or shutil.which('chromium') or '/usr/bin/chromium'
CHROMIUM_ARGS = ['--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
                 '--disable-component-update', '--disable-sync']
TOKEN = 'explorer-test'
SETTINGS = {  # JupyterLab settings, each of which broke a run when missing
    'notebook-extension/tracker': {'autoStartDefaultKernel': True, 'windowingMode': 'none'},  # no kernel dialog; every cell in the DOM
    'docmanager-extension/plugin': {'autosave': False},
    'apputils-extension/notification': {'fetchNews': 'false', 'checkForUpdates': False},
    'apputils-extension/sessionDialogs': {'skipKernelRestartDialog': True},
}
SCREENSHOT_IMAGE = 7  # the validation image of the screenshots: three objects, which the attention decoder names right
SCREENSHOT_STEPS = (1, 3, 7)  # clicks of "next word" before each step's screenshot
RUN_ALL_TIMEOUT_S = 420  # the chapter takes 20-60 s on 2 shared cores; far more only when something is wrong


def _free_port():
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0)); return s.getsockname()[1]


def _die_with_parent():
    "In the child: get SIGTERM if pytest dies, so that no JupyterLab outlives the test run (Linux)."
    try: ctypes.CDLL('libc.so.6', use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except OSError: pass


def _api(url, method='GET'):
    req = urllib.request.Request(url, method=method, headers={'Authorization': f'token {TOKEN}'})
    with urllib.request.urlopen(req, timeout=10) as r: return json.loads(r.read() or b'null')


def _pids_using(path):
    "PIDs of processes whose command line names `path` (kernels name their connection file in the runtime folder)."
    pids = []
    for p in Path('/proc').glob('[0-9]*'):
        try: cmd = (p/'cmdline').read_bytes().decode(errors='replace')
        except OSError: continue
        if str(path) in cmd and int(p.name) != os.getpid(): pids.append(int(p.name))
    return pids


def _stop(proc, base, runtime):
    "Shut the kernels down, stop JupyterLab, and end any kernel left over."
    try:
        for k in _api(base + 'api/kernels'): _api(base + f'api/kernels/{k["id"]}', 'DELETE')
    except Exception: pass  # the server may be gone already; what is left is killed below
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)  # JupyterLab shuts its kernels down on SIGTERM
        try: proc.wait(30)
        except subprocess.TimeoutExpired: proc.kill(); proc.wait(10)
    for pid in _pids_using(runtime):
        try: os.kill(pid, signal.SIGKILL)
        except ProcessLookupError: pass


@pytest.fixture(scope='module')
def lab(tmp_path_factory):
    "JupyterLab on 127.0.0.1 serving a copy of the explorer notebook; yields its base URL."
    tmp = tmp_path_factory.mktemp('lab')
    work, settings, runtime = tmp/'project', tmp/'settings', tmp/'runtime'
    (work/'nbs').mkdir(parents=True)
    shutil.copy(NOTEBOOK, work/'nbs'/NOTEBOOK.name); shutil.copy(ROOT/'settings.ini', work/'settings.ini')
    for name, value in SETTINGS.items():
        f = settings/'@jupyterlab'/f'{name}.jupyterlab-settings'
        f.parent.mkdir(parents=True, exist_ok=True); f.write_text(json.dumps(value))
    env = {**os.environ, 'JUPYTER_CONFIG_DIR': str(tmp/'config'), 'JUPYTER_DATA_DIR': str(tmp/'data'),
           'JUPYTER_RUNTIME_DIR': str(runtime), 'IPYTHONDIR': str(tmp/'ipython'), 'PYTHONUNBUFFERED': '1'}
    env.pop('MPLBACKEND', None)  # CI sets Agg; the kernel should draw inline, as for a reader
    port = _free_port()
    base = f'http://127.0.0.1:{port}/'
    cmd = [sys.executable, '-m', 'jupyterlab', '--no-browser', '--ServerApp.ip=127.0.0.1', f'--ServerApp.port={port}',
           '--ServerApp.port_retries=0', f'--IdentityProvider.token={TOKEN}', f'--ServerApp.root_dir={work}',
           f'--LabApp.user_settings_dir={settings}', f'--LabApp.workspaces_dir={tmp/"workspaces"}',
           '--LabApp.expose_app_in_browser=True']
    if os.geteuid() == 0: cmd.append('--allow-root')
    log = open(tmp/'jupyterlab.log', 'w')
    proc = subprocess.Popen(cmd, cwd=work, env=env, stdout=log, stderr=subprocess.STDOUT, preexec_fn=_die_with_parent)
    try:
        deadline = time.time() + 120
        while True:
            if proc.poll() is not None: pytest.fail(f'JupyterLab exited ({proc.returncode}):\n' + (tmp/'jupyterlab.log').read_text()[-3000:])
            try: _api(base + 'api/status'); break
            except Exception:
                if time.time() > deadline: pytest.fail('JupyterLab did not answer in 120 s:\n' + (tmp/'jupyterlab.log').read_text()[-3000:])
                time.sleep(0.5)
        yield base
    finally:
        _stop(proc, base, runtime)
        log.close()
        assert not _pids_using(runtime), 'a kernel outlived the test'


@pytest.fixture(scope='module')
def browser():
    from playwright.sync_api import sync_playwright
    if not Path(CHROMIUM).exists(): pytest.fail(f'{CHROMIUM} not found: install Debian\'s chromium (apt-get install chromium)')
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        try: yield b
        finally: b.close()


# The notebook panel, its kernel and its code cells, read from JupyterLab's own objects (`expose_app_in_browser`)
PANEL = f"Array.from(jupyterapp.shell.widgets('main')).find(w => w.context && w.context.path.endsWith('{NOTEBOOK.name}'))"
KERNEL_READY = """() => {
  const bar = document.querySelector('#jp-main-statusbar');
  return !!bar && /Python 3 \\(ipykernel\\) \\| Idle/.test(bar.textContent)
    && !!document.querySelector(".jp-DebuggerBugButton[aria-disabled='false']");
}"""
RUN_ALL = """() => {
  jupyterapp.commands.execute('notebook:run-all-cells').catch(e => console.error(e));
  return true;  // not the command's promise: a hang would then block `evaluate`, which has no timeout
}"""
RUN_STATE = """() => {
  const panel = PANEL;
  if (!panel) return null;
  const cells = panel.content.widgets.filter(c => c.model.type === 'code');
  const error = cells.map(c => c.model.outputs.toJSON().find(o => o.output_type === 'error')).find(o => o);
  if (error) return {error: error.ename + ': ' + error.evalue};
  const ran = cells.filter(c => c.model.executionCount !== null).length;
  const idle = panel.sessionContext.session?.kernel?.status === 'idle';
  return ran === cells.length && idle ? {done: cells.length} : null;
}""".replace('PANEL', PANEL)
CHART_SHOWN = """(src) => {
  const img = document.querySelector('img.ce-chart');
  return !!img && getComputedStyle(img).visibility === 'visible' && img.complete && img.naturalWidth > 0 && img.src !== src;
}"""


@pytest.fixture(scope='module')
def explorer_page(lab, browser):
    "A page of JupyterLab with the explorer notebook run to its end; yields the page and the errors it reported."
    ARTIFACTS.mkdir(exist_ok=True)
    page = browser.new_page(viewport={'width': 1400, 'height': 1000})
    errors = []
    page.on('pageerror', lambda e: errors.append(str(e)))
    try:
        page.goto(f'{lab}lab/tree/nbs/{NOTEBOOK.name}?token={TOKEN}', wait_until='load')
        page.wait_for_function(KERNEL_READY, timeout=180_000, polling=250)
        page.evaluate(RUN_ALL)
        state = page.wait_for_function(RUN_STATE, timeout=RUN_ALL_TIMEOUT_S*1000, polling=500).json_value()
        assert 'error' not in state, f'a cell failed: {state["error"]}'
        page.locator('.ce-explorer').wait_for(state='visible', timeout=30_000)
    except Exception:
        page.screenshot(path=str(ARTIFACTS/'explorer-failure.png'), full_page=True)
        page.close()
        raise
    yield page, errors
    page.close()


def _click_next_word(page, button, words:str, src):
    "Click \"next word\", wait for the caption so far to read `words` and for a new chart; return the chart's `src`."
    button.click()
    page.wait_for_function("([w]) => (document.querySelector('.ce-words')?.textContent || '').startsWith(w + ' ')",
                           arg=[words], timeout=30_000)
    page.wait_for_function(CHART_SHOWN, arg=src, timeout=30_000)
    return page.locator('img.ce-chart').get_attribute('src')


def test_explorer_steps_in_jupyterlab(explorer_page):
    page, errors = explorer_page
    try:
        explorer = page.locator('.ce-explorer')
        explorer.scroll_into_view_if_needed()
        caption = page.locator('.ce-caption').inner_text().split()
        assert caption, 'the explorer shows no predicted caption'
        assert not page.locator('img.ce-chart').is_visible(), 'the chart shows before any step'
        button = explorer.get_by_role('button', name='next word', exact=True)

        src = None
        for n in (1, 2):  # each click reveals one more word of the predicted (greedy) caption, and a new chart
            src = _click_next_word(page, button, ' '.join(caption[:n]), src)
        words = page.locator('.ce-words').inner_text()
        assert re.fullmatch(re.escape(' '.join(caption[:2])) + r' […■]', words), words
        box = page.locator('img.ce-chart').bounding_box()
        assert box and box['width'] > 100 and box['height'] > 100, f'the chart is too small to read: {box}'
        explorer.screenshot(path=str(ARTIFACTS/'explorer.png'))
        assert not errors, f'errors in the page: {errors}'
    except Exception:
        page.screenshot(path=str(ARTIFACTS/'explorer-failure.png'), full_page=True)
        raise


def _save(locator, name:str):
    "Screenshot `locator` to `test-artifacts/`, and to `nbs/images/` (256 colours) with `CAPTIONING_UPDATE_SCREENSHOTS=1`."
    path = ARTIFACTS/name
    locator.page.evaluate('() => document.activeElement?.blur()'); locator.page.mouse.move(0, 0)  # no focus ring, no hover
    locator.screenshot(path=str(path))
    if os.environ.get('CAPTIONING_UPDATE_SCREENSHOTS') == '1':
        from PIL import Image
        IMAGES.mkdir(exist_ok=True)
        Image.open(path).convert('RGB').quantize(256).save(IMAGES/name, optimize=True)


def test_explorer_screenshots(explorer_page):
    "The explorer's states for the docs site: an image with its captions, then a caption growing word by word."
    page, errors = explorer_page
    try:
        explorer = page.locator('.ce-explorer')
        explorer.locator('.ce-model select').select_option('attention')
        page.wait_for_function("() => (document.querySelector('.ce-words')?.textContent || '') === ''", timeout=30_000)
        for n in range(SCREENSHOT_IMAGE):  # "next ▶" to the screenshots' image, as a person would
            explorer.get_by_role('button', name='next ▶', exact=True).click()
            page.wait_for_function("([n]) => (document.querySelector('.ce-source')?.textContent || '').includes(`image ${n} of`)",
                                   arg=[n + 2], timeout=30_000)
        # the handler sets the image's name before its caption: wait for the kernel to finish it, updates and all
        page.wait_for_function(f"() => {PANEL}?.sessionContext.session?.kernel?.status === 'idle'", timeout=30_000)
        explorer.scroll_into_view_if_needed()
        assert 'true captions' in page.locator('.ce-truth').inner_text()
        caption = page.locator('.ce-caption').inner_text().split()
        assert len(caption) >= max(SCREENSHOT_STEPS), f'the caption is too short for the screenshots: {caption}'
        _save(explorer, 'explorer-image.png')
        button, src = explorer.get_by_role('button', name='next word', exact=True), None
        for n in range(1, max(SCREENSHOT_STEPS) + 1):  # the explorer sends a step's map before its chart and words
            src = _click_next_word(page, button, ' '.join(caption[:n]), src)
            if n in SCREENSHOT_STEPS:
                page.wait_for_function("() => [...document.querySelectorAll('.ce-explorer img')].every(i => i.complete)", timeout=30_000)
                _save(explorer, f'explorer-step-{n:02d}.png')
        assert not errors, f'errors in the page: {errors}'
    except Exception:
        page.screenshot(path=str(ARTIFACTS/'explorer-screenshots-failure.png'), full_page=True)
        raise


def test_notebook_stores_no_widget_state():
    "The docs site loads no widget code: a stored widget state or a shown widget would pull require.js from a CDN."
    nb = json.loads(NOTEBOOK.read_text())
    assert 'widgets' not in nb['metadata'], 'the notebook stores widget state: remove metadata.widgets (nbconvert --ExecutePreprocessor.store_widget_state=False)'
    for c in nb['cells']:
        shown = [o for o in c.get('outputs', []) if 'application/vnd.jupyter.widget-view+json' in o.get('data', {})]
        if shown: assert re.search(r'^#\|\s*hide', ''.join(c['source']), re.M), f'a widget is shown on the docs site: {"".join(c["source"])[:80]!r}'
