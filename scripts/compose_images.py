"""The images of `make compose-check`: Flower's (pulled or stood in for) and the app's, timed."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
FLWR_VERSION = "1.42.0"
APP_IMAGE = "fedureid-app:0.1.0"
BASE_IMAGE = "fedureid/debian-base:bookworm"


class CheckFailed(RuntimeError):
    """A step failed; the message names it (and its container)."""


def sh(*cmd: str, timeout: float = 1800, check: bool = True, env: dict | None = None,
       quiet: bool = False) -> subprocess.CompletedProcess:
    res = subprocess.run(list(cmd), capture_output=True, text=True, timeout=timeout, env=env)
    if check and res.returncode != 0:
        raise CheckFailed(f"`{' '.join(cmd)[:200]}` failed ({res.returncode}):\n{(res.stdout + res.stderr)[-3000:]}")
    if not quiet and res.stdout.strip():
        print(res.stdout.strip()[-2000:], flush=True)
    return res


def image_size(tag: str) -> int | None:
    res = subprocess.run(["docker", "image", "inspect", tag, "--format", "{{.Size}}"], capture_output=True, text=True)
    return int(res.stdout.strip()) if res.returncode == 0 else None


def base_image() -> None:
    """A minimal Debian root made offline-able with debootstrap, imported as BASE_IMAGE."""
    if image_size(BASE_IMAGE):
        return
    if not shutil.which("debootstrap"):
        raise CheckFailed("Flower's images cannot be pulled and debootstrap is missing: apt-get install debootstrap")
    root = Path(tempfile.mkdtemp(prefix="fedureid-debian-"))
    try:
        print(f"making {BASE_IMAGE} with debootstrap (a few minutes)", flush=True)
        sh("debootstrap", "--variant=minbase", "bookworm", str(root), "http://deb.debian.org/debian", quiet=True)
        tar = subprocess.Popen(["tar", "-C", str(root), "-c", "."], stdout=subprocess.PIPE)
        imp = subprocess.run(["docker", "import", "-", BASE_IMAGE], stdin=tar.stdout, capture_output=True, text=True)
        tar.wait()
        if imp.returncode != 0:
            raise CheckFailed(f"docker import failed: {imp.stderr[-2000:]}")
    finally:
        shutil.rmtree(root, ignore_errors=True)


def flower_images(ca_bundle: str | None) -> str:
    """Flower's images, pulled or stood in for (trusting `ca_bundle` too); returns which."""
    tags = {kind: f"flwr/{kind}:{FLWR_VERSION}" for kind in ("superlink", "supernode", "superexec")}
    missing = [t for t in tags.values() if not image_size(t)]
    pulled = all(sh("docker", "pull", t, check=False, timeout=120, quiet=True).returncode == 0 for t in missing)
    standin = any(_is_standin(t) for t in tags.values() if image_size(t))
    if pulled and not (standin and missing):
        return STANDINS if standin else "Flower's own (pulled or present)"
    base_image()
    with tempfile.TemporaryDirectory(prefix="fedureid-standin-") as ctx:
        shutil.copy(REPO / "docker" / "standin" / "Dockerfile", ctx)
        Path(ctx, "extra-ca.pem").write_text(Path(ca_bundle).read_text() if ca_bundle else "")
        for kind, tag in tags.items():
            print(f"building stand-in {tag}", flush=True)
            sh("docker", "build", "--target", kind, "--build-arg", f"BASE={BASE_IMAGE}",
               "--build-arg", f"FLWR_VERSION={FLWR_VERSION}", "-t", tag, ctx, quiet=True)
    return STANDINS


STANDINS = f"stand-ins built from {BASE_IMAGE} (docker/standin/Dockerfile)"


def _is_standin(tag: str) -> bool:
    res = subprocess.run(["docker", "image", "inspect", tag, "--format", "{{json .Config.Labels}}"],
                         capture_output=True, text=True)
    return "org.fedureid.standin" in res.stdout


def app_image(tag: str, ca_args: list[str], torch_index: str | None, gpu: bool = False) -> float:
    """Build the app image; return the seconds it took."""
    args = ["docker", "build", "-f", "docker/Dockerfile", "-t", tag, *ca_args]
    if torch_index:
        args += ["--build-arg", f"TORCH_INDEX={torch_index}"]
    if gpu:
        args += ["--build-arg", "GPU_FAISS=1"]
    t0 = time.time()
    sh(*args, ".", quiet=True)
    return time.time() - t0
