"""Datasets as in-memory uint8 train/validation/test splits: CIFAR-10/100, MNIST, Fashion-MNIST, SVHN,
synthetic, image folders."""

from gat_tui.data.load import load_splits
from gat_tui.data.splits import DataError, ImageSplits, default_data_dir, split_train_val, to_model_input

__all__ = ["DataError", "ImageSplits", "default_data_dir", "load_splits", "split_train_val", "to_model_input"]
