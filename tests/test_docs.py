"""The docs site, page by page, in headless Chromium.

The pages and symbols to check come from the notebooks and the library's index (`_modidx.py`), so the test grows
with every chapter. The site is the one `nbdev_docs` wrote to `_docs/` (built here when missing or older than a
notebook); it is served on 127.0.0.1 and opened with Debian's chromium through Playwright (no browser download).
Screenshots of the home page and a chapter are kept in `test-artifacts/`."""
import functools, http.server, json, os, re, shutil, subprocess, threading, urllib.request
from pathlib import Path
from urllib.parse import urldefrag, urlparse

import pytest
from nbdev.doclinks import _nbpath2html

from captioning_course._modidx import d as modidx

ROOT = Path(__file__).resolve().parent.parent
NBS, SITE, ARTIFACTS = ROOT/'nbs', ROOT/'_docs', ROOT/'test-artifacts'
CHROMIUM = os.environ.get('CHROMIUM_PATH') or shutil.which('chromium') or '/usr/bin/chromium'
BADGE = 'https://colab.research.google.com/assets/colab-badge.svg'  # Colab's badge: served here from a copy, as offline
SITE_URL = 'https://captioning-course.github.io/captioning_course/'  # where the site is published (settings.ini)
CHROMIUM_ARGS = ['--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
                 '--disable-component-update', '--disable-sync']


def chapters():
    "(notebook, page, title, visible figures) for every rendered notebook."
    out = []
    for nb_path in sorted(NBS.glob('*.ipynb')):
        if nb_path.name.startswith('_'): continue
        nb = json.loads(nb_path.read_text())
        title = next(l for c in nb['cells'] if c['cell_type'] == 'markdown'
                     for l in ''.join(c['source']).splitlines() if l.startswith('# '))[2:].strip()
        figures = sum('image/png' in o.get('data', {}) for c in nb['cells'] if c['cell_type'] == 'code'
                      and not re.search(r'^#\|\s*(hide|output:\s*false)', ''.join(c['source']), re.M)
                      for o in c.get('outputs', []))
        page = 'index.html' if nb_path.stem == 'index' else _nbpath2html(nb_path).name
        out.append((nb_path.name, page, title, figures))
    return out


CHAPTERS = chapters()


def symbols(page):
    "Public exported symbols whose docs entry lives on `page`, as (name, anchor)."
    return [(name, url.split('#')[1]) for modname, mod in modidx['syms'].items() for name, (url, _) in mod.items()
            if url.split('#')[0] == page and not any(part.startswith('_') for part in name[len(modname) + 1:].split('.'))]


@pytest.fixture(scope='module')
def site():
    "The built site, served on 127.0.0.1; yields its base URL."
    newest = max(p.stat().st_mtime for p in NBS.glob('*.ipynb'))
    if not (SITE/'index.html').exists() or (SITE/'index.html').stat().st_mtime < newest:
        if not shutil.which('quarto'): pytest.fail('the docs site needs Quarto: run ../shared/tools/quarto/install or .ci/run')
        subprocess.run(['nbdev_docs'], cwd=ROOT, check=True, capture_output=True)
    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args): pass
    handler = functools.partial(Quiet, directory=str(SITE))
    srv = http.server.ThreadingHTTPServer(('127.0.0.1', 0), handler)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    yield f'http://127.0.0.1:{srv.server_address[1]}/'
    srv.shutdown(); srv.server_close()


@pytest.fixture(scope='module')
def browser():
    from playwright.sync_api import sync_playwright
    if not Path(CHROMIUM).exists(): pytest.fail(f'{CHROMIUM} not found: install Debian\'s chromium (apt-get install chromium)')
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        yield b
        b.close()


@pytest.fixture(scope='module')
def pages(site, browser):
    "Every chapter page opened once: its title, text, ids, links, images and console errors."
    ARTIFACTS.mkdir(exist_ok=True)
    out = {}
    for nb, page, title, _ in CHAPTERS:
        tab = browser.new_page(viewport={'width': 1280, 'height': 900})
        errors = []
        tab.on('console', lambda m, errors=errors: m.type == 'error' and errors.append(m.text))
        tab.on('pageerror', lambda e, errors=errors: errors.append(str(e)))
        tab.on('requestfailed', lambda r, errors=errors: errors.append(f'request failed: {r.url}'))
        tab.on('response', lambda r, errors=errors: r.status >= 400 and errors.append(f'HTTP {r.status}: {r.url}'))
        tab.route(BADGE, lambda route: route.fulfill(path=str(NBS/'images'/'colab-badge.svg'), content_type='image/svg+xml'))
        resp = tab.goto(site + page, wait_until='load')
        tab.wait_for_load_state('networkidle')
        out[page] = dict(
            status=resp.status, title=tab.title(), errors=errors,
            heading=tab.locator('h1.title').first.inner_text() if tab.locator('h1.title').count() else '',
            text=tab.locator('main').inner_text(),
            ids=set(tab.eval_on_selector_all('[id]', 'els => els.map(e => e.id)')),
            links=tab.eval_on_selector_all('a[href]', 'els => els.map(e => e.href)'),
            images=tab.eval_on_selector_all('main img', 'els => els.map(e => [e.currentSrc || e.src, e.complete, e.naturalWidth])'),
            collapsed=[c.inner_text() for c in tab.locator('.callout:has(.callout-collapse.collapse:not(.show)) .callout-header').all()],
            folded_heights=tab.eval_on_selector_all('.callout-collapse.collapse:not(.show)', 'els => els.map(e => e.offsetHeight)'))
        if page in ('index.html', 'data.html'):
            tab.screenshot(path=str(ARTIFACTS/f"docs-{page.replace('.html', '')}.png"), full_page=True)
        tab.close()
    return out


def test_chapters_were_found():
    assert len(CHAPTERS) >= 2 and any(page == 'index.html' for _, page, _, _ in CHAPTERS)


@pytest.mark.parametrize('nb,page,title,figures', CHAPTERS)
def test_chapter_page(pages, nb, page, title, figures):
    p = pages[page]
    assert p['status'] == 200, f'{nb}: {page} answered {p["status"]}'
    assert title in p['title'] or title == p['heading'], f'{nb}: page title {p["title"]!r}, expected {title!r}'
    for name, anchor in symbols(page):
        assert anchor in p['ids'], f'{page}: no API entry for {name} (#{anchor})'
    loaded = [src for src, complete, width in p['images'] if complete and width > 0]
    broken = [src for src, complete, width in p['images'] if not (complete and width > 0)]
    assert not broken, f'{page}: images that did not load: {broken}'
    assert len(loaded) >= figures, f'{page}: {len(loaded)} images shown, the notebook stores {figures} figures'
    for bad in ('#|', '<!--', 'Traceback (most recent call last)'):
        assert bad not in p['text'], f'{page}: {bad!r} shows as text'
    assert not p['errors'], f'{page}: console errors {p["errors"]}'
    if nb[0].isdigit():  # a chapter: it opens with the badge that opens it in Colab
        assert BADGE in loaded, f'{page}: no Open-in-Colab badge'
        assert f'https://colab.research.google.com/github/captioning-course/captioning_course/blob/main/nbs/{nb}' in p['links']


@pytest.mark.parametrize('page', ['data.html', 'transfer.html'])
def test_engineering_detail_is_folded_away(pages, page):
    p = pages[page]
    assert any('Under the hood' in title for title in p['collapsed']), f'{page}: no collapsed "Under the hood" section'
    assert p['folded_heights'] and not any(p['folded_heights']), f'{page}: a collapsed section takes room on the page'


def test_the_ideas_are_drawn(pages):
    decoder = pages['decoder.html']
    assert 'reset gate' in decoder['text'].lower() and 'update gate' in decoder['text'].lower()
    assert sum(w > 0 for _, _, w in decoder['images']) >= 3, 'the decoder chapter should draw the GRU and the decoder'
    assert 'teacher forcing' in (pages['generator.html']['text'] + pages['training.html']['text']).lower()


def test_the_explorer_is_shown_in_screenshots(pages):
    shots = [src for src, ok, w in pages['explorer.html']['images'] if 'explorer-' in src.rsplit('/', 1)[-1] and ok and w > 0]
    assert len(shots) >= 4, f'explorer.html shows {len(shots)} screenshots of the explorer'


def test_every_exported_symbol_has_a_page():
    pages = {page for _, page, _, _ in CHAPTERS}
    for mod in modidx['syms'].values():
        for name, (url, _) in mod.items(): assert url.split('#')[0] in pages, f'{name}: {url} is not a chapter page'


def test_internal_links_resolve(site, pages):
    ids = {page: p['ids'] for page, p in pages.items()}
    checked = {}
    for page, p in pages.items():
        for link in p['links']:
            url, frag = urldefrag(link)
            if urlparse(url).netloc != urlparse(site).netloc: continue
            if url not in checked:
                try: checked[url] = urllib.request.urlopen(url).status
                except urllib.error.HTTPError as e: checked[url] = e.code
            assert checked[url] == 200, f'{page}: link {link} answered {checked[url]}'
            target = url[len(site):] or 'index.html'
            if frag and target in ids: assert frag in ids[target], f'{page}: link {link}: no #{frag} on {target}'


def test_readme_chapter_links_reach_the_site(site):
    "README's chapter links work on the repository page (absolute) and on the site: each is a page the site builds."
    import configparser
    cfg = configparser.ConfigParser(delimiters=['=']); cfg.read(ROOT/'settings.ini')
    assert SITE_URL == cfg['DEFAULT']['doc_host'] + cfg['DEFAULT']['doc_baseurl'] + '/'
    readme = (ROOT/'README.md').read_text()
    links = re.findall(r'\]\((' + re.escape(SITE_URL) + r'[^)#]*)\)', readme)
    numbered = [page for nb, page, _, _ in CHAPTERS if nb[0].isdigit()]
    assert sorted(l[len(SITE_URL):] for l in links) == sorted(numbered), 'README links to a page that is not a chapter, or misses one'
    assert not re.search(r'\]\(\w+\.ipynb\)', readme), 'README links to a notebook beside it, which is in nbs/ on the repository page'
    for link in links: assert urllib.request.urlopen(site + link[len(SITE_URL):]).status == 200


def test_search_index_covers_every_chapter(site):
    entries = json.loads(urllib.request.urlopen(site + 'search.json').read())
    indexed = {e['href'].split('#')[0] for e in entries}
    for nb, page, _, _ in CHAPTERS: assert page in indexed, f'{nb}: {page} is not in search.json'


def test_home_page_shows_the_method_and_credit(pages):
    home = pages['index.html']
    assert 'Magnus Erik Hvass Pedersen' in home['text'] and 'MIT' in home['text']
    assert any(w > 0 for _, _, w in home['images']), 'the home page has no diagram'
    for cmd in ('captioning-course', 'import', 'jupyter lab'): assert cmd in home['text']
