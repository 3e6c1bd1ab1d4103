"""Synthetic pedestrians' looks: identities, cameras and tracklet poses (no drawing).

Identity shows in appearance (clothes colours and pattern, accessories, body shape,
skin/hair); cameras change illumination, colour cast, blur, resolution, viewpoint and
background (with static clutter: doors, bins, signs). Clothes share one small palette,
so colour alone is ambiguous. A person walking through a camera's view gives a tracklet:
consecutive frames that share view and position up to small steps (`TrackletPose`).
`synth_render` draws one image from a look, a camera and a pose.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

RGB = tuple[int, int, int]

PALETTE: dict[str, RGB] = {
    "black": (30, 30, 32), "white": (225, 225, 220), "grey": (128, 128, 130),
    "navy": (30, 40, 90), "blue": (50, 90, 180), "lightblue": (130, 170, 220),
    "red": (180, 40, 40), "maroon": (110, 30, 40), "green": (50, 130, 60),
    "olive": (110, 110, 50), "yellow": (220, 190, 60), "orange": (220, 120, 40),
    "pink": (220, 140, 170), "purple": (110, 60, 140), "brown": (110, 75, 45),
    "beige": (200, 180, 140),
}
TROUSER_COLOURS = ("black", "navy", "grey", "blue", "beige", "brown", "olive", "white")
SKIN_TONES: tuple[RGB, ...] = ((240, 205, 180), (225, 180, 145), (190, 140, 100),
                               (140, 95, 65), (95, 65, 45))
HAIR_COLOURS: tuple[RGB, ...] = ((20, 18, 16), (60, 40, 25), (110, 75, 40),
                                 (190, 160, 100), (130, 130, 130))
PATTERNS = ("plain", "plain", "stripes", "checks", "logo")
VIEWS = ("front", "back", "side")
BG_TEXTURES = ("plain", "floor", "tiles", "stripes")
# Client domains: background colours and a base light level.
DOMAINS: dict[str, tuple[tuple[RGB, ...], float]] = {
    "indoor": (((190, 180, 160), (170, 160, 150), (200, 195, 185), (150, 140, 130)), 1.0),
    "outdoor": (((110, 130, 90), (130, 130, 125), (150, 160, 170), (90, 110, 80)), 1.1),
    "station": (((120, 120, 130), (100, 105, 120), (140, 140, 150), (80, 85, 95)), 0.95),
    "night": (((65, 65, 75), (85, 80, 75), (55, 60, 70), (75, 75, 85)), 0.85),
    "office": (((210, 210, 205), (180, 190, 200), (160, 170, 160), (220, 215, 200)), 1.05),
}


@dataclass(frozen=True)
class SynthDifficulty:
    """How hard re-identification is; the lead tunes these (see lab/synth_difficulty.py)."""

    # Scales illumination, colour cast, blur, resolution and shift. Demo (generator v2, seed 0),
    # mean cross-camera rank-1 over clients (lab/synth_difficulty.py --epochs 8):
    # 0.5 -> raw pixels 18.2%, colour histogram 27.5%, untrained CNN 15.2%, supervised 46.1%.
    camera_strength: float = 0.5
    noise: float = 4.0  # sensor noise std on a 0-255 scale (per camera 0.5x..1.5x)
    colour_jitter: float = 12.0  # identity colour spread around the palette (higher = easier)
    pose_jitter: float = 1.0  # per-image position/scale jitter
    occlusion_prob: float = 0.15
    view_change_prob: float = 0.2  # chance an image shows another view than its camera's
    background_jitter: float = 6.0  # per-image change of the camera's background colours
    clutter: int = 3  # static objects per camera in the background (doors, bins, signs)
    frame_step: float = 0.02  # a tracklet's horizontal walk per frame, fraction of width


@dataclass(frozen=True)
class PersonLook:
    """What makes one identity recognisable."""

    shirt: RGB
    pattern: str
    pattern_colour: RGB
    pattern_period: float  # fraction of body height
    sleeves_long: bool
    top_extra: float  # coat below the hips, fraction of leg length
    trousers: RGB
    shorts: bool
    shoes: RGB
    skin: RGB
    hair: RGB
    hair_long: bool
    hat: RGB | None
    bag: str | None  # None | backpack | shoulder
    bag_colour: RGB
    bag_side: int  # -1 left, +1 right
    width: float  # shoulder width, fraction of image width
    height: float  # body height, fraction of image height
    torso: float  # torso length, fraction of body height


@dataclass(frozen=True)
class CameraLook:
    """What one camera does to every image it takes."""

    view: str
    mirror: bool
    gain: float
    cast: tuple[float, float, float]
    gamma: float
    blur: float  # Gaussian radius in output pixels
    resolution: float  # downsample factor before upsampling back (1 = sharp)
    shift: float  # horizontal offset, fraction of width
    scale: float
    background: RGB
    background2: RGB
    texture: str
    noise: float  # sensor noise std (0-255 scale)
    # static background objects: (x0, y0, x1, y1) as fractions of the image, and a colour
    clutter: tuple[tuple[float, float, float, float, RGB], ...] = ()


@dataclass(frozen=True)
class TrackletPose:
    """Where one person is in one frame of a tracklet; the next frame moves it a little."""

    view: str
    dx: float  # horizontal offset from the camera's centre, fraction of width
    dfeet: float  # vertical offset of the feet, fraction of height
    dscale: float  # relative size change
    phase: float  # walking cycle (radians): drives stride and arm swing
    bg_seed: int  # background jitter seed: the scene stays the same within a tracklet


def _jitter(rng: np.random.Generator, colour: RGB, amount: float) -> RGB:
    c = np.clip(np.asarray(colour, float) + rng.normal(0, amount, 3), 0, 255)
    return tuple(int(v) for v in c)  # type: ignore[return-value]


def _pick(rng: np.random.Generator, items: tuple | list) -> object:
    return items[int(rng.integers(len(items)))]


def random_person(rng: np.random.Generator, colour_jitter: float = 12.0) -> PersonLook:
    """Draw one identity's look."""
    names = list(PALETTE)
    shirt_name = str(_pick(rng, names))
    pattern_name = str(_pick(rng, [n for n in names if n != shirt_name]))
    has_bag = rng.random() < 0.4
    return PersonLook(
        shirt=_jitter(rng, PALETTE[shirt_name], colour_jitter),
        pattern=str(_pick(rng, PATTERNS)),
        pattern_colour=_jitter(rng, PALETTE[pattern_name], colour_jitter),
        pattern_period=float(rng.uniform(0.05, 0.11)),
        sleeves_long=bool(rng.random() < 0.6),
        top_extra=float(rng.uniform(0.25, 0.6)) if rng.random() < 0.2 else 0.0,
        trousers=_jitter(rng, PALETTE[str(_pick(rng, TROUSER_COLOURS))], colour_jitter),
        shorts=bool(rng.random() < 0.2),
        shoes=_jitter(rng, PALETTE[str(_pick(rng, ("black", "white", "brown", "grey")))], 10),
        skin=_jitter(rng, SKIN_TONES[int(rng.integers(len(SKIN_TONES)))], 8),
        hair=_jitter(rng, HAIR_COLOURS[int(rng.integers(len(HAIR_COLOURS)))], 8),
        hair_long=bool(rng.random() < 0.35),
        hat=_jitter(rng, PALETTE[str(_pick(rng, names))], 10) if rng.random() < 0.2 else None,
        bag=str(_pick(rng, ("backpack", "shoulder"))) if has_bag else None,
        bag_colour=_jitter(rng, PALETTE[str(_pick(rng, names))], colour_jitter),
        bag_side=int(_pick(rng, (-1, 1))),
        width=float(rng.uniform(0.5, 0.64)),
        height=float(rng.uniform(0.86, 0.95)),
        torso=float(rng.uniform(0.30, 0.38)),
    )


def _random_clutter(rng: np.random.Generator, count: int,
                    backgrounds: tuple[RGB, ...]) -> tuple[tuple[float, float, float, float, RGB], ...]:
    items = []
    for _ in range(count):
        w, h = rng.uniform(0.1, 0.35), rng.uniform(0.1, 0.5)
        x0, y0 = rng.uniform(-0.1, 1.0 - w / 2), rng.uniform(0.0, 0.9 - h / 2)
        base = PALETTE[str(_pick(rng, list(PALETTE)))] if rng.random() < 0.5 else _pick(rng, backgrounds)
        items.append((float(x0), float(y0), float(x0 + w), float(y0 + h), _jitter(rng, base, 20)))
    return tuple(items)


def random_camera(rng: np.random.Generator, domain: str, strength: float,
                  noise: float, clutter: int = 0) -> CameraLook:
    """Draw one camera; `strength` scales every deviation from a neutral camera."""
    backgrounds, light = DOMAINS[domain]
    s = strength
    return CameraLook(
        view=str(_pick(rng, VIEWS)),
        mirror=bool(rng.random() < 0.5),
        gain=float(light * (1 + s * rng.uniform(-0.3, 0.3))),
        cast=tuple(float(v) for v in 1 + s * rng.uniform(-0.18, 0.18, 3)),  # type: ignore[arg-type]
        gamma=float(1 + s * rng.uniform(-0.3, 0.3)),
        blur=float(s * rng.uniform(0.0, 0.8)),
        resolution=float(1 - s * rng.uniform(0.0, 0.5)),
        shift=float(s * rng.uniform(-0.08, 0.08)),
        scale=float(1 + s * rng.uniform(-0.12, 0.05)),
        background=_jitter(rng, backgrounds[int(rng.integers(len(backgrounds)))], 15),
        background2=_jitter(rng, backgrounds[int(rng.integers(len(backgrounds)))], 25),
        texture=str(_pick(rng, BG_TEXTURES)),
        noise=float(noise * (0.5 + rng.random())),
        clutter=_random_clutter(rng, clutter, backgrounds),
    )


def start_tracklet(rng: np.random.Generator, cam: CameraLook, difficulty: SynthDifficulty) -> TrackletPose:
    """The first frame of a person crossing `cam`: a view, a position, a walking phase."""
    view = cam.view if rng.random() >= difficulty.view_change_prob else str(_pick(rng, VIEWS))
    j = difficulty.pose_jitter
    return TrackletPose(view=view, dx=float(j * rng.uniform(-0.06, 0.06)),
                        dfeet=float(j * rng.uniform(-0.03, 0.015)), dscale=float(j * rng.uniform(-0.05, 0.05)),
                        phase=float(rng.uniform(0, 2 * np.pi)), bg_seed=int(rng.integers(2**31)))


def next_frame(rng: np.random.Generator, pose: TrackletPose, difficulty: SynthDifficulty) -> TrackletPose:
    """The following frame: a small step sideways and in size, the walking cycle advances."""
    step = difficulty.frame_step
    return replace(pose, dx=float(np.clip(pose.dx + step * rng.uniform(0.5, 1.5), -0.12, 0.12)),
                   dfeet=float(pose.dfeet + rng.uniform(-0.005, 0.005)),
                   dscale=float(pose.dscale + rng.uniform(-0.01, 0.01)),
                   phase=float(pose.phase + rng.uniform(0.6, 1.2)))
