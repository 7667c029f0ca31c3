"""What joblib's NumpyArrayWrapper.read does to an array once its bytes are read."""

import sys

import numpy as np


def _byte_order_mismatch(dtype):
    other = ">" if sys.byteorder == "little" else "<"
    return dtype.byteorder == other or (
        dtype.byteorder == "|" and bool(dtype.fields)
        and all(f[0].byteorder == other for f in dtype.fields.values()))


def joblib_array(array, subclass):
    if _byte_order_mismatch(array.dtype):
        # a copy, writable even from a map, as joblib's is
        array = array.byteswap().view(array.dtype.newbyteorder("="))
    if subclass is not None and subclass is not np.ndarray and subclass is not np.memmap \
            and hasattr(array, "__array_prepare__"):
        array = np.core.multiarray._reconstruct(subclass, (0,), "b").__array_prepare__(array)
    return array
