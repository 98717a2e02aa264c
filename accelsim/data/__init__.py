"""Labelled data for accuracy: bundled datasets with fixed splits, and user .npz files.

A leaf package: it imports nothing from accelsim but `errors`, so every layer may use it.
"""
from __future__ import annotations

from .datasets import DATASETS, SPLITS, Dataset, dataset_names, known_input_range, load_dataset, load_npz, stratified_split

__all__ = ["DATASETS", "SPLITS", "Dataset", "dataset_names", "known_input_range", "load_dataset", "load_npz", "stratified_split"]
