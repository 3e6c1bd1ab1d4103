"""cluster-contrast's training transform: resize, flip, pad + random crop, random erasing."""

from __future__ import annotations

from torchvision import transforms as T

from reid_core.data.transforms import photometric_to_tensor


def cc_train_transform(height: int, width: int, erasing: float = 0.5, photometric: float = 0.0) -> T.Compose:
    """Resize, flip, pad 10 px (at 256 px height; scaled with it) + crop back, erase a patch.

    The erased patch is filled with 0 after normalisation, i.e. the ImageNet mean colour
    (cluster-contrast fills with the mean too). `photometric` as in the BUC transform.
    """
    pad = max(1, round(10 * height / 256))
    steps: list = [T.Resize((height, width), interpolation=T.InterpolationMode.BICUBIC),
                   T.RandomHorizontalFlip(), T.Pad(pad), T.RandomCrop((height, width)),
                   *photometric_to_tensor(photometric)]
    if erasing > 0:
        steps.append(T.RandomErasing(p=erasing, value=0))
    return T.Compose(steps)
