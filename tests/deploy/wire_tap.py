"""A TCP relay on 127.0.0.1 between SuperNodes and the SuperLink that keeps a copy of every byte each
way: what the edges sent is then searchable for arrays that must not be in it (insecure transport
only; under TLS the bytes are ciphertext)."""

from __future__ import annotations

import socket
import threading

import numpy as np


class WireTap:
    """Listens on a free loopback port and relays each connection to `target_port`."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.up, self.down = bytearray(), bytearray()  # edges -> SuperLink, SuperLink -> edges
        self._lock = threading.Lock()
        self._server = socket.create_server(("127.0.0.1", 0))
        self.port = self._server.getsockname()[1]
        self._open: list[socket.socket] = [self._server]
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                edge, _ = self._server.accept()
                link = socket.create_connection(("127.0.0.1", self.target_port))
            except OSError:  # closed
                return
            with self._lock:
                self._open += [edge, link]
            threading.Thread(target=self._pump, args=(edge, link, self.up), daemon=True).start()
            threading.Thread(target=self._pump, args=(link, edge, self.down), daemon=True).start()

    def _pump(self, src: socket.socket, dst: socket.socket, record: bytearray) -> None:
        try:
            while data := src.recv(65536):
                with self._lock:
                    record += data
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def close(self) -> None:
        with self._lock:
            for s in self._open:
                s.close()


def windows(array: np.ndarray, count: int = 16, size: int = 64) -> list[bytes]:
    """`count` byte strings of `size` bytes spread over the array's raw bytes (float32 as on the wire)."""
    raw = np.ascontiguousarray(array, dtype=np.float32).tobytes()
    starts = np.linspace(0, len(raw) - size, count).astype(int) // 4 * 4
    return [raw[s:s + size] for s in starts]


def found(haystack: bytes | bytearray, needles: list[bytes]) -> int:
    """How many of `needles` occur in `haystack`."""
    return sum(1 for n in needles if bytes(n) in haystack)
