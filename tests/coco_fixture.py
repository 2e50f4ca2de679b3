"""A small MS-COCO-2017-layout dataset made of real photographs, and a random-weights VGG16 file, for tests.

There is no internet here, so the photographs are the ones scikit-image ships in its wheel, cropped and resized
into variants with the oddities real COCO files have: greyscale, CMYK and EXIF-rotated JPEGs, PNG bytes behind a
`.jpg` name, 100-1,000 px sides, sparse 12-digit ids, messy captions and an image without captions.

    python tests/coco_fixture.py DATA_DIR [--weights PATH]
"""
import argparse, importlib.util, io, json, os, random
from functools import lru_cache
from pathlib import Path

from PIL import Image

# Captions per source photograph, written to describe it; the crops keep most of the scene, so they still apply.
CAPTIONS = {
    'astronaut.png': ['A smiling woman in an orange space suit poses for a portrait.',
                      'An astronaut in an orange suit sitting next to a white helmet.',
                      'A female astronaut smiling in front of an American flag.',
                      'A woman in a flight suit with a model of the space shuttle behind her.',
                      'Portrait of a smiling astronaut with short blond hair.',
                      'A woman wearing an orange pressure suit, covered in mission patches.',
                      'An astronaut posing with her helmet and a model rocket.'],
    'chelsea.png': ['A close up of a tabby cat\'s face.', 'An orange and brown striped cat with green eyes.',
                    'A cat with green eyes and long white whiskers.', 'Wow, what a cute cat!',
                    'Close-up of a ginger cat staring at something off camera.',
                    'The face of a tabby cat with pointed ears.', 'A brown cat looking at something.'],
    'coffee.png': ['A red cup of espresso on a saucer with a spoon.', 'A cup of coffee sitting on a wooden table.',
                   'An espresso in a red cup, seen from above.', 'Coffee, anyone?',
                   'A small coffee cup and a silver spoon on a red saucer.',
                   'Top view of a red espresso cup on a wooden counter.', 'A nearly empty cup of coffee on a plate.'],
    'rocket.jpg': ['A rocket on a launch pad at dusk.', 'A white rocket standing between tall lightning towers.',
                   'A rocket waiting for launch under a dark blue sky.',
                   'The launch pad is lit up with bright lights at night.',
                   'A tall rocket surrounded by metal towers in the evening.',
                   'A space rocket, ready for lift off at twilight!'],
    'motorcycle_left.png': ['A red motorcycle parked inside a garage.',
                            'A red and black motorbike in front of shelves full of boxes.',
                            'A motorcycle on its kickstand in a cluttered workshop.',
                            'An old red motorcycle parked in a storage room.',
                            'A red motorcycle with a black seat standing on a concrete floor.',
                            'A motorbike in a garage, next to a wooden bench.'],
    'camera.png': ['A black and white photo of a man using a camera on a tripod.',
                   'A man in a dark coat looking through a camera.',
                   'A photographer standing in a field with his tripod.',
                   'A man filming on a grassy field with buildings behind him.',
                   'A person in a black coat operating a camera on a tripod.',
                   'A cameraman taking a picture outside on a lawn.'],
    'coins.png': ['Rows of old coins on a black background.',
                  'A collection of ancient silver coins laid out in a grid.', 'A black and white photo of many coins.',
                  'Several rows of antique coins on a dark surface.', 'Old coins with faces on them, arranged in rows.',
                  'A display of ancient coins on black cloth.'],
    'retina.jpg': ['A photo of the back of a human eye.', 'A red retina with branching blood vessels.',
                   'A close up of an eye showing its blood vessels.',
                   'An orange circle with red veins on a black background.',
                   'A medical image of the inside of an eye.', 'The retina of an eye, photographed through the pupil.'],
    'brick.png': ['A close up of a brick wall.', 'A grey brick pavement seen from above.',
                  'A black and white picture of bricks in rows.', 'Rows of long bricks with light mortar between them.',
                  'A wall made of grey bricks.', 'Bricks laid in a staggered pattern.'],
    'grass.png': ['A close up of grass on the ground.', 'A black and white photo of a patch of grass.',
                  'Short grass and dry leaves on a lawn.', 'Blades of grass covering the ground.',
                  'A lawn seen from above.', 'A grey picture of dense, messy grass.'],
    'gravel.png': ['A close up of a pile of gravel.', 'Small stones covering the ground.',
                   'A black and white picture of gravel.', 'Lots of little rocks packed together.',
                   'A gravel path seen from above.', 'Grey pebbles filling the whole picture.'],
    'moon.png': ['The surface of the moon with a few craters.', 'A grey picture of craters on the moon.',
                 'A close up of the lunar surface.', 'A black and white photo of a rocky moon surface.',
                 'Craters and dark spots on a grey surface.', "A view of the moon's surface from above."],
    'hubble_deep_field.jpg': ['Many galaxies in the dark night sky.',
                              'A picture of deep space full of stars and galaxies.',
                              'Tiny colorful galaxies scattered over a black background.',
                              'A telescope image of distant galaxies.', 'Look at all those galaxies!',
                              'Stars and galaxies seen by a space telescope.'],
    'ihc.png': ['A microscope picture of stained tissue.', 'Brown and blue cells seen under a microscope.',
                'A close up of tissue stained brown and purple.', 'A slide of human tissue under a microscope.',
                'Cells stained brown on a light blue background.', 'A microscopic view of tissue samples.'],
    'page.png': ['A page of printed text about image segmentation.', 'A black and white photo of a book page.',
                 'A printed page with a heading and a paragraph of text.',
                 'A page from a tutorial, with a line of code at the bottom.', 'Text on a page with uneven lighting.',
                 'A photo of a printed document.'],
    'text.png': ['Handwritten math equations on a piece of paper.', 'A sheet of paper with formulas written in pen.',
                 'A black and white photo of handwritten notes.', 'Math notes written on a sheet of paper.',
                 'A close up of equations written by hand.', 'Pen marks and numbers on a page, seen at an angle.'],
}
# Real COCO whitespace: most captions are clean, some end in spaces, a newline, or both.
SUFFIXES = ['', '', '', '', ' ', '  ', '\n', ' \n', '  \n']
# One of each per split, at random positions; every other image is a plain RGB JPEG.
SPECIALS = ['L', 'CMYK', 'exif6', 'exif8', 'png']
MAX_ID = 581929  # the largest COCO 2017 image id
INFO = {'description': 'COCO 2017 Dataset', 'url': 'http://cocodataset.org', 'version': '1.0', 'year': 2017,
        'contributor': 'COCO Consortium', 'date_created': '2017/09/01'}
LICENSES = [{'url': u, 'id': i, 'name': n} for i, (u, n) in enumerate([
    ('http://creativecommons.org/licenses/by-nc-sa/2.0/', 'Attribution-NonCommercial-ShareAlike License'),
    ('http://creativecommons.org/licenses/by-nc/2.0/', 'Attribution-NonCommercial License'),
    ('http://creativecommons.org/licenses/by-nc-nd/2.0/', 'Attribution-NonCommercial-NoDerivs License'),
    ('http://creativecommons.org/licenses/by/2.0/', 'Attribution License'),
    ('http://creativecommons.org/licenses/by-sa/2.0/', 'Attribution-ShareAlike License'),
    ('http://creativecommons.org/licenses/by-nd/2.0/', 'Attribution-NoDerivs License'),
    ('http://flickr.com/commons/usage/', 'No known copyright restrictions'),
    ('http://www.usa.gov/copyright.shtml', 'United States Government Work')], start=1)]


def photo_dir() -> Path:
    "scikit-image's bundled data folder, found without importing skimage: only its files are needed."
    spec = importlib.util.find_spec('skimage')
    if spec is None: raise ModuleNotFoundError('coco_fixture needs scikit-image for its bundled photographs')
    return Path(spec.submodule_search_locations[0])/'data'


@lru_cache(maxsize=None)
def _photo(name):
    with Image.open(photo_dir()/name) as im: return im.convert('RGB')


def _size(rng, i, photo_aspect):
    "(width, height) between 100 and 1,000 px; the first two images pin the two ends of the range."
    long = 1000 if i == 0 else 160 if i == 1 else rng.randint(200, 1000)
    ratio = 1.6 if i == 1 else rng.uniform(1.0, 2.0)
    aspect = 1/ratio if rng.random() < 0.35 else ratio
    # Within 1.6x of the photo's aspect ratio, so that the crop still shows what its captions say.
    aspect = min(max(aspect, photo_aspect/1.6, 0.5), photo_aspect*1.6, 2.0)
    return (long, max(100, round(long/aspect))) if aspect >= 1 else (max(100, round(long*aspect)), long)


def _variant(rng, name, size):
    "A random crop of the photograph with the aspect ratio of `size` (70-100% of the largest such box), resized."
    im, (w, h) = _photo(name), size
    bw = min(im.width, im.height*w/h); bh = bw*h/w
    s = rng.uniform(0.7, 1.0); bw, bh = bw*s, bh*s
    x, y = rng.uniform(0, im.width - bw), rng.uniform(0, im.height - bh)
    return im.resize(size, Image.LANCZOS, box=(x, y, x + bw, y + bh))


def _encode(im, kind, quality):
    "The file's bytes; EXIF-rotated images store the pixels unrotated, as a camera does, with orientation 6 or 8."
    buf, extra = io.BytesIO(), {}
    if kind == 'png': im.save(buf, 'PNG'); return buf.getvalue()
    if kind in ('L', 'CMYK'): im = im.convert(kind)
    if kind.startswith('exif'):
        exif = Image.Exif(); exif[0x0112] = int(kind[4:])  # 6: view by turning 90 deg clockwise; 8: anticlockwise
        im, extra = im.transpose(Image.ROTATE_90 if kind == 'exif6' else Image.ROTATE_270), {'exif': exif.tobytes()}
    im.save(buf, 'JPEG', quality=quality, **extra)
    return buf.getvalue()


def _caption(rng, s):
    if rng.random() < 0.2: s = s[0].lower() + s[1:]
    if rng.random() < 0.25 and s.endswith('.'): s = s[:-1]
    return s + rng.choice(SUFFIXES)


def _write_split(root, split, ids, rng, ann_ids):
    folder = root/f'{split}2017'; folder.mkdir(parents=True, exist_ok=True)
    names = sorted(CAPTIONS)
    sources = [names[i % len(names)] for i in range(len(ids))]; rng.shuffle(sources)
    kinds = (SPECIALS + ['RGB']*len(ids))[:len(ids)]; rng.shuffle(kinds)
    uncaptioned = rng.randrange(len(ids))
    images, anns = [], []
    for i, (id_, name, kind) in enumerate(zip(ids, sources, kinds)):
        size = _size(rng, i, _photo(name).width/_photo(name).height)
        fn = f'{id_:012d}.jpg'
        (folder/fn).write_bytes(_encode(_variant(rng, name, size), kind, rng.randint(75, 95)))
        date = f'2013-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d} {rng.randint(0, 23):02d}:' \
               f'{rng.randint(0, 59):02d}:{rng.randint(0, 59):02d}'
        flickr = f'http://farm{rng.randint(1, 9)}.staticflickr.com/{rng.randint(1000, 9999)}/' \
                 f'{rng.randint(10**9, 10**10 - 1)}_{rng.getrandbits(40):010x}_z.jpg'
        # Key order as in the real file; width/height are those of the upright image, after EXIF rotation.
        images.append({'license': rng.randint(1, 8), 'file_name': fn,
                       'coco_url': f'http://images.cocodataset.org/{split}2017/{fn}', 'height': size[1],
                       'width': size[0], 'date_captured': date, 'flickr_url': flickr, 'id': id_})
        if i == uncaptioned: continue
        for s in rng.sample(CAPTIONS[name], rng.randint(5, min(7, len(CAPTIONS[name])))):
            anns.append({'image_id': id_, 'id': next(ann_ids), 'caption': _caption(rng, s)})
    rng.shuffle(anns)  # the real file is not grouped by image
    return {'info': INFO, 'licenses': LICENSES, 'images': images, 'annotations': anns}


def _atomic_write(path, write):
    "Call `write(tmp)` on a file beside `path`, then rename it: a reader never sees half a file."
    tmp = path.with_name(f'.{path.name}.{os.getpid()}.part')  # not mkstemp, whose files are 0600
    try:
        write(tmp); os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True); raise


def make_coco_fixture(root, n_train=48, n_val=16, seed=0) -> Path:
    "Write `root/{train,val}2017/*.jpg` and `root/annotations/captions_{train,val}2017.json`; same seed, same bytes."
    root, rng = Path(root), random.Random(seed)
    ids = rng.sample(range(1, MAX_ID + 1), n_train + n_val)
    # Caption ids are sparse too, and unique across both files.
    ann_ids = iter(sorted(rng.sample(range(1, 830_000), 7*(n_train + n_val))))
    (root/'annotations').mkdir(parents=True, exist_ok=True)
    for split, split_ids in (('train', ids[:n_train]), ('val', ids[n_train:])):
        coco = _write_split(root, split, split_ids, rng, ann_ids)
        # Written after the images, so that a run cut short leaves no annotations and is redone.
        _atomic_write(root/'annotations'/f'captions_{split}2017.json', lambda p: p.write_text(json.dumps(coco)))
    return root


def make_vgg16_weights(path) -> Path:
    "A random-weights VGG16 in the legacy HDF5 layout of Keras' `vgg16_weights_tf_dim_ordering_tf_kernels.h5`."
    path = Path(path)
    if path.exists(): return path
    import captioning_course  # first: it quiets TensorFlow's C++ start-up logs
    import h5py, keras
    from keras.src.legacy.saving.legacy_h5_format import save_weights_to_hdf5_group
    keras.utils.set_random_seed(0)
    model = keras.applications.VGG16(include_top=True, weights=None)
    path.parent.mkdir(parents=True, exist_ok=True)
    def write(tmp):
        with h5py.File(tmp, 'w') as f: save_weights_to_hdf5_group(f, model)
    _atomic_write(path, write)  # ~553 MB
    return path


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('data_dir', type=Path)
    p.add_argument('--weights', type=Path, help='also write a random-weights VGG16 .h5 file here')
    a = p.parse_args(argv)
    if not all((a.data_dir/'annotations'/f'captions_{s}2017.json').exists() for s in ('train', 'val')):
        make_coco_fixture(a.data_dir)
    print(a.data_dir)
    if a.weights: print(make_vgg16_weights(a.weights))


if __name__ == '__main__': main()
