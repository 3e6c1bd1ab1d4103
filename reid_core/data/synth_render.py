"""Draw synthetic pedestrians: identity looks, camera looks, and one rendered image.

Identity shows in appearance (clothes colours and pattern, accessories, body shape,
skin/hair); cameras change illumination, colour cast, blur, resolution, viewpoint and
background (with static clutter: doors, bins, signs). Clothes share one small palette,
so colour alone is ambiguous. A person walking through a camera's view gives a tracklet:
consecutive frames that share view and position up to small steps (`TrackletPose`).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

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
    """How hard re-identification is; the lead tunes these (see scripts/check_synth_difficulty.py)."""

    # Scales illumination, colour cast, blur, resolution and shift. Demo (generator v2, seed 0),
    # mean cross-camera rank-1 over clients (scripts/check_synth_difficulty.py --epochs 8):
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


def _background(rng: np.random.Generator, cam: CameraLook, h: int, w: int,
                jitter: float) -> np.ndarray:
    img = np.empty((h, w, 3), np.uint8)
    img[:] = _jitter(rng, cam.background, jitter)
    other = np.asarray(_jitter(rng, cam.background2, jitter), np.uint8)
    if cam.texture == "floor":
        img[int(h * rng.uniform(0.55, 0.75)):] = other
    elif cam.texture in ("tiles", "stripes"):
        period = max(2, int(w * rng.uniform(0.18, 0.3)))
        phase = int(rng.integers(period))
        cols = ((np.arange(w) + phase) // period) % 2 == 1
        if cam.texture == "tiles":
            rows = ((np.arange(h) + phase) // period) % 2 == 1
            img[rows[:, None] ^ cols[None, :]] = other
        else:
            img[:, cols] = other
    for x0, y0, x1, y1, colour in cam.clutter:  # static scene objects behind the person
        c = np.asarray(_jitter(rng, colour, jitter), np.uint8)
        img[max(0, int(y0 * h)):max(0, int(y1 * h)), max(0, int(x0 * w)):max(0, int(x1 * w))] = c
    return img


def _draw_person(draw: ImageDraw.ImageDraw, look: PersonLook, view: str, cx: float,
                 feet: float, body_h: float, body_w: float, stride: float, swing: float) -> None:
    side = view == "side"
    bw = body_w * (0.75 if side else 1.0)
    head_r = body_h * 0.075
    top = feet - body_h
    torso_top = top + 2.2 * head_r
    hips = torso_top + body_h * look.torso
    leg_bottom = feet - body_h * 0.035
    leg_len = leg_bottom - hips
    # Long hair and backpacks behind the body first.
    if look.hair_long and view != "front":
        draw.rectangle([cx - head_r, top + head_r, cx + head_r, torso_top + 0.3 * (hips - torso_top)],
                       fill=look.hair)
    if look.bag == "backpack" and side:
        draw.rectangle([cx - bw / 2 - bw * 0.45, torso_top + 2, cx - bw / 2 + 1, hips - 2],
                       fill=look.bag_colour)
    # Legs (stride shows mostly from the side), shoes, and skin below shorts.
    spread = stride * bw * (1.0 if side else 0.3)
    for sign in (-1, 1):
        hip_in, hip_out = cx + sign * bw * 0.03, cx + sign * bw * 0.45
        foot = cx + sign * (bw * 0.24 + spread)
        half = bw * 0.2
        leg = [(hip_in, hips), (hip_out, hips), (foot + half, leg_bottom), (foot - half, leg_bottom)]
        draw.polygon(leg, fill=look.skin if look.shorts else look.trousers)
        if look.shorts:
            knee = hips + 0.4 * leg_len
            t = 0.4
            draw.polygon([(hip_in, hips), (hip_out, hips),
                          (hip_out + t * (foot + half - hip_out), knee),
                          (hip_in + t * (foot - half - hip_in), knee)], fill=look.trousers)
        draw.rectangle([foot - half * 1.1, leg_bottom - 1, foot + half * 1.3, feet], fill=look.shoes)
    # Torso (a coat reaches below the hips), pattern, arms.
    bottom = hips + look.top_extra * leg_len
    draw.polygon([(cx - bw / 2, torso_top), (cx + bw / 2, torso_top),
                  (cx + bw * 0.47, bottom), (cx - bw * 0.47, bottom)], fill=look.shirt)
    x0, x1 = cx - bw * 0.44, cx + bw * 0.44
    period = max(2.0, look.pattern_period * body_h)
    if look.pattern in ("stripes", "checks"):
        y = torso_top + period / 2
        while y < bottom - 1:
            draw.rectangle([x0, y, x1, min(y + period * 0.45, bottom - 1)], fill=look.pattern_colour)
            y += period
    if look.pattern == "checks":
        x = x0 + period / 2
        while x < x1:
            draw.rectangle([x, torso_top + 1, min(x + period * 0.45, x1), bottom - 1],
                           fill=look.pattern_colour)
            x += period
    if look.pattern == "logo" and view == "front":
        draw.rectangle([cx - bw * 0.2, torso_top + 0.2 * (hips - torso_top),
                        cx + bw * 0.2, torso_top + 0.55 * (hips - torso_top)], fill=look.pattern_colour)
    if look.bag == "backpack" and view == "back":
        draw.rectangle([cx - bw * 0.32, torso_top + 2, cx + bw * 0.32, hips - 1], fill=look.bag_colour)
    elif look.bag == "backpack" and view == "front":
        for sign in (-1, 1):
            draw.line([(cx + sign * bw * 0.3, torso_top), (cx + sign * bw * 0.3, hips)],
                      fill=look.bag_colour, width=max(1, int(bw * 0.08)))
    arm_w, arm_len = bw * (0.3 if side else 0.17), (hips - torso_top) * 1.1
    arms = (0.0,) if side else (-1.0, 1.0)
    for sign in arms:
        x_in = cx + sign * bw / 2 - (arm_w / 2 if side else (arm_w if sign < 0 else 0))
        dx = swing * bw * (0.6 if side else 0.1) * (sign or 1)
        y_end = torso_top + arm_len
        sleeve_end = y_end if look.sleeves_long else torso_top + 0.4 * arm_len
        draw.polygon([(x_in, torso_top), (x_in + arm_w, torso_top),
                      (x_in + arm_w + dx, y_end), (x_in + dx, y_end)], fill=look.skin)
        t = (sleeve_end - torso_top) / arm_len
        draw.polygon([(x_in, torso_top), (x_in + arm_w, torso_top),
                      (x_in + arm_w + t * dx, sleeve_end), (x_in + t * dx, sleeve_end)], fill=look.shirt)
    # Shoulder bag hangs at the hip; from the back it sits on the other side.
    if look.bag == "shoulder":
        bag_x = cx + look.bag_side * (-1 if view == "back" else 1) * bw * 0.55
        draw.line([(cx - look.bag_side * bw * 0.35, torso_top), (bag_x, hips)],
                  fill=look.bag_colour, width=max(1, int(bw * 0.06)))
        draw.rectangle([bag_x - bw * 0.18, hips - body_h * 0.06, bag_x + bw * 0.18, hips + body_h * 0.07],
                       fill=look.bag_colour)
    # Head: face from the front, hair from the back, half of each from the side.
    head = [cx - head_r * 0.9, top, cx + head_r * 0.9, top + 2 * head_r]
    draw.ellipse(head, fill=look.hair)
    if view == "front":
        draw.ellipse([cx - head_r * 0.75, top + head_r * 0.55, cx + head_r * 0.75, top + 2 * head_r],
                     fill=look.skin)
    elif side:
        draw.ellipse([cx, top + head_r * 0.5, cx + head_r * 0.9, top + 2 * head_r], fill=look.skin)
    if look.hat is not None:
        draw.rectangle([cx - head_r, top - head_r * 0.2, cx + head_r, top + head_r * 0.6], fill=look.hat)


def render_image(rng: np.random.Generator, look: PersonLook, cam: CameraLook, height: int,
                 width: int, difficulty: SynthDifficulty, pose: TrackletPose | None = None) -> np.ndarray:
    """Render one `(height, width, 3)` uint8 image of `look` seen by `cam` (in `pose`, or a fresh one)."""
    ss = 2  # draw at twice the size, then shrink: smooth edges at tiny resolutions
    h, w = height * ss, width * ss
    pose = pose or start_tracklet(rng, cam, difficulty)
    # The scene (background colours) stays put within a tracklet; light flicker and noise do not.
    scene = np.random.default_rng(pose.bg_seed)
    canvas = Image.fromarray(_background(scene, cam, h, w, difficulty.background_jitter))
    draw = ImageDraw.Draw(canvas)
    view = pose.view
    scale = cam.scale * (1 + pose.dscale)
    cx = w * (0.5 + cam.shift + pose.dx)
    feet = h * (0.98 + pose.dfeet)
    stride, swing = 0.25 + 0.25 * np.sin(pose.phase), np.cos(pose.phase)
    _draw_person(draw, look, view, cx, feet, look.height * h * scale, look.width * w * scale,
                 stride, swing)
    if rng.random() < difficulty.occlusion_prob:  # a pole, a passer-by at the edge, or a bench
        colour = _jitter(rng, PALETTE[str(_pick(rng, list(PALETTE)))], 20)
        kind = int(rng.integers(3))
        if kind == 0:
            x = rng.uniform(0, w)
            draw.rectangle([x, 0, x + w * rng.uniform(0.08, 0.15), h], fill=colour)
        elif kind == 1:
            edge = w * rng.uniform(0.15, 0.3)
            x0 = 0 if rng.random() < 0.5 else w - edge
            draw.rectangle([x0, h * rng.uniform(0.1, 0.3), x0 + edge, h], fill=colour)
        else:
            draw.rectangle([w * rng.uniform(-0.2, 0.3), h * rng.uniform(0.7, 0.82), w * 1.2, h],
                           fill=colour)
    img = canvas.resize((width, height), Image.Resampling.BOX)
    if cam.resolution < 0.99:
        small = (max(1, round(width * cam.resolution)), max(1, round(height * cam.resolution)))
        img = img.resize(small, Image.Resampling.BILINEAR).resize((width, height),
                                                                 Image.Resampling.BILINEAR)
    if cam.blur > 0.05:
        img = img.filter(ImageFilter.GaussianBlur(cam.blur))
    x = np.asarray(img, np.float32) * np.float32(1 / 255)
    # Light from above (vertical falloff), camera gain and colour cast, per-image flicker.
    light = np.linspace(1.08, 0.92, height, dtype=np.float32)[:, None, None]
    gain = np.asarray(cam.cast, np.float32) * np.float32(255 * cam.gain * (1 + rng.normal(0, 0.04)))
    x = np.power(x, np.float32(cam.gamma)) * light * gain
    x += rng.standard_normal(x.shape, dtype=np.float32) * np.float32(cam.noise)
    if cam.mirror:
        x = x[:, ::-1]
    return np.clip(x, 0, 255).astype(np.uint8)
