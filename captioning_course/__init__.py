__version__ = "0.1.0"

from . import files as _files  # first, always: it quiets TensorFlow's C++ start-up logs before any module loads TensorFlow
