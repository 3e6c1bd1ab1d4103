"""What `scripts/soak.py` measures each round and checks at the end (pure reads of /proc and files).

Growth: a round's figure for a process is its floor, the least resident memory and open files
sampled (each second) while the round ran: between messages, what the process still holds. A
sample at one instant also holds whatever message is in flight (a model is 1.7 MB, 16 arrive at
once) and moves by 10-20 MB from round to round with nothing growing; a leak raises the floor.
Within one process's life (the SuperLink and the ServerApp restart once), the floor may rise
while caches warm up; from the third round it observed on, it may not gain more than GROWTH_MB
of resident memory nor GROWTH_FILES open files.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from fedureid.processes import descendants  # Flower's SuperExecs leave the process group, not the tree
from reid_core.federation.state import ServerState

GROWTH_MB = 25.0
GROWTH_FILES = 4
WARM_ROUNDS = 2  # rounds a process may spend warming up before its growth is counted


def _usage(pid: int | None) -> tuple[int | None, float | None, int | None]:
    """(pid, resident MB, open files) of a live process, or Nones."""
    if pid is None:
        return None, None, None
    try:
        status = Path(f"/proc/{pid}/status").read_text()
        rss_kb = next(int(line.split()[1]) for line in status.splitlines() if line.startswith("VmRSS:"))
        return pid, rss_kb / 1024.0, len(list(Path(f"/proc/{pid}/fd").iterdir()))
    except (OSError, StopIteration):
        return None, None, None


def _processes() -> dict[int, tuple[int, bytes]]:
    """pid -> (parent pid, command line) of every live process."""
    out = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            if stat[0] != "Z":
                out[int(entry.name)] = (int(stat[1]), (entry / "cmdline").read_bytes())
        except OSError:
            continue
    return out


def serverapp_pid(link_pid: int) -> int | None:
    """The ServerApp the SuperLink runs: a `flwr-serverapp` process among its descendants."""
    procs = _processes()
    return next((p for p in descendants(link_pid) if b"flwr-serverapp" in procs.get(p, (0, b""))[1]), None)


def process_usage(link_pid: int) -> dict[str, tuple]:
    return {"superlink": _usage(link_pid), "serverapp": _usage(serverapp_pid(link_pid))}


def floor(samples: list[dict[str, tuple]]) -> dict[str, tuple]:
    """Per process, the least resident MB and open files over one round's samples of `process_usage`,
    from its latest life (a process restarted mid-round starts afresh); Nones when never seen."""
    out: dict[str, tuple] = {}
    for name in ("superlink", "serverapp"):
        seen = [s[name] for s in samples if s.get(name, (None,))[0] is not None]
        life = [u for u in seen if u[0] == seen[-1][0]] if seen else []
        out[name] = (life[0][0], min(u[1] for u in life), min(u[2] for u in life)) if life else (None, None, None)
    return out


@dataclass
class Row:
    """One completed round as the soak saw it."""

    round: int
    wall_s: float
    run_dir: Path
    usage: dict[str, tuple] = field(default_factory=dict)
    kills: int = 0  # SuperNodes killed so far
    aggregated: int = field(init=False)

    def __post_init__(self) -> None:  # read once, when the round's checkpoint is fresh
        meta = json.loads((self.run_dir / "checkpoint" / "meta.json").read_text())
        record = next((r for r in meta["history"] if r["round"] == self.round), {"clients": {}})
        self.aggregated = sum(1 for m in record["clients"].values() if "num_examples" in m)

    def line(self) -> str:
        cells = [f"round {self.round:2d}", f"{self.wall_s:6.1f} s", f"aggregated {self.aggregated:2d}",
                 f"kills {self.kills:3d}"]
        for name, (_, rss, files) in self.usage.items():
            cells.append(f"{name} " + (f"{rss:6.1f} MB {files:3d} files" if rss is not None else "-"))
        return "  ".join(cells)


def table(rows: list[Row]) -> str:
    lines = ["| round | time (s) | aggregated | kills so far | SuperLink MB | SuperLink files | ServerApp MB | ServerApp files |",
             "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        cells = [str(r.round), f"{r.wall_s:.1f}", str(r.aggregated), str(r.kills)]
        for name in ("superlink", "serverapp"):
            _, rss, files = r.usage.get(name, (None, None, None))
            cells += [f"{rss:.1f}" if rss is not None else "-", str(files) if files is not None else "-"]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def edge_states(state_root: Path) -> dict[str, tuple[int, int]]:
    """Each edge's saved (round, clusters); an edge whose file is being replaced is left out."""
    out = {}
    for path in sorted(state_root.glob("*/learner_state.npz")):
        try:
            with np.load(path, allow_pickle=False) as z:
                meta = json.loads(str(z["meta"]))
                out[path.parent.name] = (int(meta["round"]), int(np.unique(z["labels"]).size))
        except (OSError, ValueError, KeyError):
            continue
    return out


def went_backwards(history: dict[str, list[tuple[int, int]]]) -> list[str]:
    """Edges whose round fell by more than the one redone after a resume, or whose clusters grew."""
    problems = []
    for name, seen in history.items():
        for (r0, c0), (r1, c1) in zip(seen, seen[1:]):
            if r1 < r0 - 1:
                problems.append(f"{name}: its state fell from round {r0} to {r1}")
            elif r1 > r0 and c1 > c0:
                problems.append(f"{name}: clusters grew from {c0} (round {r0}) to {c1} (round {r1})")
    return problems


def check_rounds(run_dir: Path, rounds: int, min_clients: int) -> list[str]:
    try:
        metrics = json.loads((run_dir / "metrics.json").read_text())
    except (OSError, ValueError) as err:
        return [f"metrics.json unreadable: {err}"]
    numbers = [r["round"] for r in metrics["rounds"]]
    problems = [] if numbers == list(range(1, rounds + 1)) else [f"rounds recorded {numbers}, not 1..{rounds} once each"]
    for rec in metrics["rounds"]:
        n = sum(1 for m in rec["clients"].values() if "num_examples" in m)
        if n < min_clients:
            problems.append(f"round {rec['round']} aggregated {n} update(s) < min_clients={min_clients}")
    return problems


def check_files(run_dir: Path, state_root: Path) -> list[str]:
    """Every checkpoint and edge file loads in full."""
    problems = []
    if ServerState.load(run_dir / "checkpoint") is None:
        problems.append("the server checkpoint does not load")
    for path in sorted(state_root.glob("*/*.npz")):
        try:
            with np.load(path, allow_pickle=False) as z:
                for key in z.files:
                    z[key]
        except Exception as err:  # noqa: BLE001 - any failure to read is the finding
            problems.append(f"{path.relative_to(state_root)} does not load: {err}")
    return problems


def check_growth(rows: list[Row]) -> list[str]:
    problems = []
    for name in ("superlink", "serverapp"):
        lives: dict[int, list[tuple[int, float, int]]] = {}
        for r in rows:
            pid, rss, files = r.usage.get(name, (None, None, None))
            if pid is not None:
                lives.setdefault(pid, []).append((r.round, rss, files))
        for pid, seen in lives.items():
            seen = seen[WARM_ROUNDS:]
            if len(seen) < 2:
                continue
            (r0, m0, f0), (r1, m1, f1) = seen[0], seen[-1]
            if m1 - m0 > GROWTH_MB:
                problems.append(f"{name} (pid {pid}) grew {m1 - m0:.1f} MB from round {r0} to {r1}")
            if f1 - f0 > GROWTH_FILES:
                problems.append(f"{name} (pid {pid}) went from {f0} to {f1} open files (rounds {r0}-{r1})")
    return problems
