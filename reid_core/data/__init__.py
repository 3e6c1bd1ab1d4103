"""Data layer: ReID folder readers, image scanning/loading, transforms, synthetic federation."""

from reid_core.data.images import (
    EvalImageDataset,
    ImageScan,
    UnlabeledImageDataset,
    check_image,
    collate_skip_none,
    load_rgb,
    scan_images,
)
from reid_core.data.market import (
    DISTRACTOR_PID,
    IMAGE_EXTENSIONS,
    JUNK_PID,
    ReIDDataset,
    ReIDSample,
    parse_market_name,
    read_market_layout,
    unlabeled_paths,
)
from reid_core.data.registry import (
    KNOWN_DATASETS,
    canonical_dataset_name,
    dataset_folder,
    read_fedreid_layout,
    read_reid_root,
)
from reid_core.data.synth import (
    FEDERATION_FILE,
    PRESETS,
    ClientSpec,
    SynthDifficulty,
    default_clients,
    generate_federation,
    preset_clients,
    smoke_clients,
    synth_main,
    with_difficulty,
)
from reid_core.data.transforms import RandomSizedRectCrop, eval_transform, train_transform

__all__ = [
    "DISTRACTOR_PID", "FEDERATION_FILE", "IMAGE_EXTENSIONS", "JUNK_PID", "KNOWN_DATASETS",
    "PRESETS", "ClientSpec", "EvalImageDataset", "ImageScan", "RandomSizedRectCrop",
    "ReIDDataset", "ReIDSample", "SynthDifficulty", "UnlabeledImageDataset",
    "canonical_dataset_name", "check_image", "collate_skip_none", "default_clients",
    "eval_transform", "generate_federation", "load_rgb",
    "parse_market_name", "preset_clients", "dataset_folder", "read_fedreid_layout",
    "read_market_layout", "read_reid_root", "scan_images", "smoke_clients", "synth_main",
    "train_transform", "unlabeled_paths", "with_difficulty",
]
