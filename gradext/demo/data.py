"""The demo's data: scikit-learn's handwritten digits (1797 images of 8x8, shipped inside the
package, nothing downloaded), binarized, with a fixed train/test split; or a user's own array."""

from __future__ import annotations

from pathlib import Path

import torch


def load_binary_images(path: str | None = None, test_fraction: float = 0.2, seed: int = 0):
    """(train, test) float32 tensors of 0/1 pixels, one image per row.

    path None: sklearn.datasets.load_digits, pixel > 8 of 16 -> 1. Otherwise a .npy file (or a
    .npz with one array), or a .pt file of one tensor (torch.save; needs no numpy), of shape
    (N, D) with values in [0, 1], binarized at 0.5.
    """
    if path is None:
        try:
            from sklearn.datasets import load_digits
        except ImportError as error:
            raise ImportError(
                "the default data needs scikit-learn (pip install scikit-learn); "
                "or pass --data with an array file"
            ) from error
        x = torch.from_numpy(load_digits().data > 8.0).float()
    else:
        x = _load_array(Path(path)).float()
        if x.dim() != 2 or x.shape[0] < 10:
            raise ValueError(
                f"--data: expected an array of shape (N >= 10, D), got {tuple(x.shape)}"
            )
        if x.min() < 0 or x.max() > 1:
            raise ValueError("--data: values must lie in [0, 1]")
        x = (x > 0.5).float()
    order = torch.randperm(x.shape[0], generator=torch.Generator().manual_seed(seed))
    n_test = max(1, int(round(test_fraction * x.shape[0])))
    return x[order[n_test:]], x[order[:n_test]]


def _load_array(file: Path) -> torch.Tensor:
    if not file.is_file():
        raise FileNotFoundError(f"--data: no such file: {file}")
    if file.suffix == ".pt":
        loaded = torch.load(file, weights_only=True)
        if not isinstance(loaded, torch.Tensor):
            raise ValueError(f"--data: {file} holds a {type(loaded).__name__}, expected a tensor")
        return loaded
    import numpy as np

    loaded = np.load(file)
    if isinstance(loaded, np.lib.npyio.NpzFile):
        if len(loaded.files) != 1:
            raise ValueError(f"--data: {file} holds {len(loaded.files)} arrays, expected one")
        loaded = loaded[loaded.files[0]]
    return torch.from_numpy(np.asarray(loaded, dtype=np.float32))
