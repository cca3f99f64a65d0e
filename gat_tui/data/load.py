"""Load the data set a config names: the one place that knows every loader.

The loaders import this package's `splits`, never the other way round; each is imported only
when its data set is read, so `import gat_tui.data` does not pay for torchvision.
"""

from __future__ import annotations

from pathlib import Path

from gat_tui.config import DataConfig
from gat_tui.data.splits import DataError, ImageSplits, default_data_dir


def load_splits(config: DataConfig, data_dir: Path | None = None, download: bool = True) -> ImageSplits:
    """Load the dataset `config.dataset` names, split into train/validation/test, on the CPU.

    `data_dir` (default `default_data_dir()`) holds downloaded archives; `download=False` never
    touches the network and fails with advice instead.
    """
    if config.dataset in ("cifar10", "cifar100"):
        from gat_tui.data.cifar import load_cifar

        return load_cifar(config, _root(data_dir), download=download)
    if config.dataset in ("mnist", "fashion_mnist"):
        from gat_tui.data.mnist import load_mnist

        return load_mnist(config, _root(data_dir), download=download)
    if config.dataset == "svhn":
        from gat_tui.data.svhn import load_svhn

        return load_svhn(config, _root(data_dir), download=download)
    if config.dataset == "synthetic":
        from gat_tui.data.synthetic import load_synthetic

        return load_synthetic(config)
    if config.dataset == "imagefolder":
        from gat_tui.data.imagefolder import load_imagefolder

        return load_imagefolder(config)
    raise DataError(f"unknown dataset {config.dataset!r}; expected cifar10, cifar100, mnist, fashion_mnist, svhn, synthetic or imagefolder")


def _root(data_dir: Path | None) -> Path:
    """The folder of downloaded data sets."""
    return Path(data_dir).expanduser() if data_dir is not None else default_data_dir()
