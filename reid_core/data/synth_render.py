"""Draw one synthetic pedestrian image from a look, a camera and a tracklet pose.

The looks (identities, cameras, poses) live in `synth_looks`; this module only paints:
background texture and clutter, the person, then the camera's light, cast and blur.
"""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

from reid_core.data.synth_looks import (PALETTE, CameraLook, PersonLook, SynthDifficulty, TrackletPose, _jitter, _pick,
                                        start_tracklet)


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
