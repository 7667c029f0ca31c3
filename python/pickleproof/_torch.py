"""PyTorch storages from verified bytes, as torch.load's persistent_load makes them."""

import torch


def storage(storage_type, data):
    """A typed storage of storage_type's dtype over `data` (a bytearray the storage keeps)."""
    if storage_type is torch.UntypedStorage:
        dtype = torch.uint8
    else:
        dtype = storage_type.dtype
    raw = torch.frombuffer(data, dtype=torch.uint8) if len(data) else torch.empty(0, dtype=torch.uint8)
    if hasattr(raw, "untyped_storage"):  # torch >= 2.0
        return torch.storage.TypedStorage(wrap_storage=raw.untyped_storage(), dtype=dtype,
                                          _internal=True)
    return torch.storage.TypedStorage(wrap_storage=raw.storage().untyped(), dtype=dtype)


def after_load():
    """What torch.load does once the objects exist: sparse tensors rebuilt by the load are
    checked for consistent indices (torch defers that until everything is loaded)."""
    validate = getattr(torch._utils, "_validate_loaded_sparse_tensors", None)
    if validate is not None:
        validate()


def view(base, view_metadata):
    """A legacy-format storage view: (view_key, offset, size) in elements of the root's dtype."""
    _key, offset, size = view_metadata
    es = base.element_size()
    raw = base._storage if hasattr(base, "_storage") else base._untyped()
    return torch.storage.TypedStorage(wrap_storage=raw[offset * es:(offset + size) * es],
                                      dtype=base.dtype)
