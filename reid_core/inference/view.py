"""Retrieval view: a query and its top-k gallery matches, true matches framed green, false red.

Gallery images of the query's identity from the query's own camera are left out,
as in evaluation (Market-1501 protocol), so the picture shows what rank-1/mAP score.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from reid_core.federation.state import ServerState
from reid_core.data.market import ReIDDataset, parse_market_name, read_market_layout
from reid_core.eval.ranking import evaluate_features
from reid_core.inference.retrieval import LoadedModel, checkpoint_dirs, features_of, load_model, top_k

log = logging.getLogger(__name__)

TILE_W, TILE_H = 64, 128
FRAME = 4  # frame width in pixels
GAP = 6
QUERY_GAP = 24  # extra space between the query and its ranked list
TITLE_H = 34
LABEL_H = 14
GREEN, RED, GREY, BLUE = (0, 200, 0), (220, 0, 0), (150, 150, 150), (30, 90, 255)
BACKGROUND = (255, 255, 255)
REPORT_MARKER = "<!-- retrieval-examples -->"


@dataclass(frozen=True)
class RetrievalRow:
    """One query and its ranked gallery images; `matches[i]` None when identity is unknown."""

    query: str
    gallery: Sequence[str]
    matches: Sequence[bool | None]
    label: str = ""


def tile_box(row: int, col: int) -> tuple[int, int, int, int]:
    """Outer box (x0, y0, x1, y1), frame included, of tile `col` (0 = query) in row `row`."""
    x0 = GAP + col * (TILE_W + 2 * FRAME + GAP) + (QUERY_GAP if col > 0 else 0)
    y0 = TITLE_H + GAP + row * (TILE_H + 2 * FRAME + LABEL_H + GAP)
    return x0, y0, x0 + TILE_W + 2 * FRAME, y0 + TILE_H + 2 * FRAME


def frame_colour(match: bool | None) -> tuple[int, int, int]:
    """Green for a true match, red for a false one, grey when unknown."""
    return GREY if match is None else (GREEN if match else RED)


def _font(size: int) -> ImageFont.ImageFont:
    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow without FreeType sizes
        return ImageFont.load_default()


def _paste(canvas: Image.Image, draw: ImageDraw.ImageDraw, path: str, box: tuple[int, int, int, int],
           colour: tuple[int, int, int], label: str) -> None:
    x0, y0, x1, y1 = box
    draw.rectangle(box, fill=colour)
    try:
        with Image.open(path) as img:
            tile = img.convert("RGB").resize((TILE_W, TILE_H), Image.Resampling.BILINEAR)
    except OSError:
        tile = Image.new("RGB", (TILE_W, TILE_H), (0, 0, 0))  # unreadable: black tile
    canvas.paste(tile, (x0 + FRAME, y0 + FRAME))
    draw.text((x0, y1 + 1), label, fill=(0, 0, 0), font=_font(10))


def render_retrieval(rows: Sequence[RetrievalRow], title: str, out: str | os.PathLike) -> Image.Image:
    """Draw one row per query (query framed blue, then its ranked matches); save a PNG."""
    if not rows:
        raise ValueError("render_retrieval: no rows to draw")
    k = max(len(r.gallery) for r in rows)
    right, bottom = tile_box(len(rows) - 1, k)[2] + GAP, tile_box(len(rows) - 1, 0)[3] + LABEL_H + GAP
    canvas = Image.new("RGB", (max(right, 360), bottom), BACKGROUND)
    draw = ImageDraw.Draw(canvas)
    for i, line in enumerate(title.splitlines()[:2]):
        draw.text((GAP, 3 + 15 * i), line, fill=(0, 0, 0), font=_font(12))
    for r, row in enumerate(rows):
        _paste(canvas, draw, row.query, tile_box(r, 0), BLUE, row.label or "query")
        for c, (path, match) in enumerate(zip(row.gallery, row.matches), start=1):
            _paste(canvas, draw, path, tile_box(r, c), frame_colour(match), f"{c}")
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    canvas.save(out)
    return canvas


class ClientRetrieval:
    """Features of one client's query and gallery under one model, computed once."""

    def __init__(self, model: LoadedModel, dataset: ReIDDataset) -> None:
        if not dataset.query or not dataset.gallery:
            raise ValueError(f"{dataset.root}: needs query/ and bounding_box_test/ images")
        self.model, self.dataset = model, dataset
        self.qf, q_kept = features_of(model, [s.path for s in dataset.query])
        self.gf, g_kept = features_of(model, [s.path for s in dataset.gallery])
        q_set, g_set = set(q_kept), set(g_kept)
        self.query = [s for s in dataset.query if s.path in q_set]
        self.gallery = [s for s in dataset.gallery if s.path in g_set]
        self.g_pids = np.array([s.pid for s in self.gallery])
        self.g_cams = np.array([s.camid for s in self.gallery])
        self.scores = evaluate_features(self.qf, self.gf, np.array([s.pid for s in self.query]), self.g_pids,
                                        np.array([s.camid for s in self.query]), self.g_cams)

    def row(self, query: int | str, k: int) -> RetrievalRow:
        """Ranked gallery of a query given by index into the query split, or by image file."""
        if isinstance(query, int):
            if not 0 <= query < len(self.query):
                raise ValueError(f"query index {query} out of range 0..{len(self.query) - 1}")
            sample = self.query[query]
            feat, path, pid, cam = self.qf[query:query + 1], sample.path, sample.pid, sample.camid
        else:
            if not os.path.isfile(query):
                raise FileNotFoundError(f"query image not found: {query}")
            feat, kept = features_of(self.model, [query])
            if not kept:
                raise ValueError(f"query image could not be decoded: {query}")
            parsed = parse_market_name(os.path.basename(query))
            path, (pid, cam) = query, (parsed if parsed else (None, None))
        keep = np.ones(len(self.gallery), dtype=bool)
        if pid is not None:  # evaluation ignores same identity + same camera
            keep = ~((self.g_pids == pid) & (self.g_cams == cam))
        index = np.flatnonzero(keep)
        order, _ = top_k(feat, self.gf[index], k)
        chosen = index[order[0]]
        matches = [None if pid is None else bool(self.g_pids[g] == pid) for g in chosen]
        return RetrievalRow(path, [self.gallery[g].path for g in chosen], matches,
                            label=f"q {os.path.basename(path)[:10]}")

    def title(self) -> str:
        """Client, model kind, and the model's rank-1/mAP on this client."""
        m = self.model
        kind = m.kind
        if m.kind == "personalized":
            kind = f"personalised (mu={m.mu:g})" if m.mu > 0 else "personalised = global (mu=0)"
        return (f"{m.client or 'global'}: {kind} model, round {m.round}\n"
                f"rank-1 {self.scores['rank1']:.1f}%  mAP {self.scores['mAP']:.1f}%  "
                f"(green = true match, red = false)")


def client_data_dir(data: str | os.PathLike, client: str | None) -> Path:
    """`data` itself when it is a client folder, else `data/client`."""
    data = Path(data)
    if (data / "query").is_dir():
        return data
    if client and (data / client / "query").is_dir():
        return data / client
    raise FileNotFoundError(f"{data} is neither a client folder (query/, bounding_box_test/) "
                            f"nor a root holding {client or 'CLIENT'}/")


def show_retrieval(checkpoint: str | os.PathLike, data: str | os.PathLike, out: str | os.PathLike,
                   client: str | None = None, query: int | str = 0, k: int = 10,
                   kind: str = "personalized", extra_overrides: Sequence[str] = ()) -> dict[str, float]:
    """Render one query's top-k from a checkpointed model; return the client's rank-1/mAP."""
    if client is None and (Path(data) / "query").is_dir():
        ckpt_dir, _ = checkpoint_dirs(checkpoint)
        state = ServerState.load(ckpt_dir)
        name = Path(data).resolve().name
        client = name if state is not None and name in state.client_arrays else None
    model = load_model(checkpoint, client, kind, extra_overrides)
    view = ClientRetrieval(model, read_market_layout(client_data_dir(data, model.client)))
    render_retrieval([view.row(query, k)], view.title(), out)
    return dict(view.scores)


def render_retrieval_examples(run_dir: str | os.PathLike, data_root: str | os.PathLike | None = None,
                              clients: Sequence[str] | None = None, num_queries: int = 3, k: int = 10,
                              kind: str = "personalized") -> list[Path]:
    """Write retrieval_<client>.png next to report.md and (re)write its examples section.

    Queries are spread evenly over each client's query split (deterministic).
    `data_root` defaults to the run's `data.root` override in metrics.json.
    """
    run_dir = Path(run_dir)
    state = ServerState.load(run_dir / "checkpoint")
    if state is None:
        raise FileNotFoundError(f"no checkpoint in {run_dir / 'checkpoint'}")
    if data_root is None:
        meta = json.loads((run_dir / "metrics.json").read_text())
        roots = [o.split("=", 1)[1] for o in meta.get("overrides", []) if o.startswith("data.root=")]
        if not roots:
            raise ValueError(f"{run_dir}/metrics.json names no data.root; pass data_root")
        data_root = roots[-1]
    written = []
    for client in clients or sorted(state.client_arrays):
        model = load_model(run_dir, client, kind)
        view = ClientRetrieval(model, read_market_layout(client_data_dir(data_root, client)))
        picks = sorted(set(np.linspace(0, len(view.query) - 1, num=min(num_queries, len(view.query))).astype(int)))
        out = run_dir / f"retrieval_{client}.png"
        render_retrieval([view.row(int(q), k) for q in picks], view.title(), out)
        written.append(out)
    _append_to_report(run_dir / "report.md", written)
    return written


def _append_to_report(report: Path, images: Sequence[Path]) -> None:
    text = report.read_text() if report.exists() else ""
    text = text.split(REPORT_MARKER)[0].rstrip("\n")
    section = [REPORT_MARKER, "", "### Retrieval examples", "",
               "Each row: a query (blue) and its top-ranked gallery images; green = same person, red = not.", ""]
    section += [f"![{p.stem}]({p.name})" for p in images]
    report.write_text(text + "\n\n" + "\n".join(section) + "\n")
