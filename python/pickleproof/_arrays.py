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


def check_state(array, state):
    """Refuses an ndarray.__setstate__ state numpy would read out of bounds with: an object
    array's item list must hold exactly one item per element (numpy does not check, and crashes
    the process); raw data must be exactly the array's bytes."""
    import pickle

    if not isinstance(state, tuple) or len(state) not in (4, 5):
        return  # numpy raises its own error
    shape, dtype, data = state[-4], state[-3], state[-1]
    if not isinstance(dtype, np.dtype) or not isinstance(shape, tuple):
        return
    try:
        count = 1
        for d in shape:
            count *= int(d)
    except (TypeError, ValueError):
        return
    if dtype.hasobject:
        if not isinstance(data, list) or len(data) != count:
            raise pickle.UnpicklingError(
                "an object array's state holds %s items for %d elements"
                % (len(data) if isinstance(data, list) else type(data).__name__, count))
    elif isinstance(data, (bytes, bytearray)) and len(data) != count * dtype.itemsize:
        raise pickle.UnpicklingError("an array's state holds %d bytes for %d" %
                                     (len(data), count * dtype.itemsize))


def check_dtype_state(dt, state):
    """Refuses a numpy.dtype.__setstate__ state of a shape numpy never writes: numpy trusts the
    pieces to fit together, and some that do not crash the process."""
    import pickle

    def bad(why):
        raise pickle.UnpicklingError("dtype state refused: %s" % why)

    if not isinstance(state, tuple) or len(state) not in (8, 9) or state[0] != len(state) - 5:
        bad("not a version 3 or 4 state")
    endian, subarray, names, fields, elsize, alignment, flags = state[1:8]
    if not isinstance(endian, str) or endian not in ("<", ">", "|", "="):
        bad("byte order %r" % (endian,))
    if not all(type(x) is int for x in (elsize, alignment, flags)):
        bad("sizes are not ints")
    if subarray is not None and not (
            isinstance(subarray, tuple) and len(subarray) == 2
            and isinstance(subarray[0], np.dtype) and isinstance(subarray[1], tuple)
            and all(type(d) is int and d >= 0 for d in subarray[1])):
        bad("subarray %r" % (subarray,))
    if (names is None) != (fields is None):
        bad("names and fields disagree")
    if names is not None:
        if not (isinstance(names, tuple) and all(isinstance(n, str) for n in names)
                and isinstance(fields, dict) and len(fields) >= len(names)
                and all(n in fields for n in names)):
            bad("fields")
        for f in fields.values():
            if not (isinstance(f, tuple) and len(f) in (2, 3) and isinstance(f[0], np.dtype)
                    and type(f[1]) is int and f[1] >= 0):
                bad("field %r" % (f,))
    if names is None and subarray is None and dt.kind not in "SUV" and (elsize, alignment) != (-1, -1):
        bad("a fixed-size type given a size")
    if elsize < -1 or alignment < -1:
        bad("negative sizes")
    if names is None and subarray is None and flags != dt.flags:
        bad("flags %d for a type whose flags are %d" % (flags, dt.flags))
