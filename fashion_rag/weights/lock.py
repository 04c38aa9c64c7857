"""The lock file and verification: `weights/weights.lock.json` records the sha256 of every downloaded
file; a file in `weights/` is checked against it before it is loaded. And safe loading of `.pth`
checkpoints (tensors only, never code).
"""

from __future__ import annotations

import json
import pickle
from pathlib import Path

from fashion_rag.errors import WeightsIntegrityError
from fashion_rag.files import atomic_write, fingerprint, sha256_file
from fashion_rag.weights.registry import LOCK_FILE_NAME, VERIFIED_STAMP_NAME


def read_lock(weights_dir: Path) -> dict[str, dict]:
    path = Path(weights_dir) / LOCK_FILE_NAME
    if not path.is_file():
        return {}
    return json.loads(path.read_text())


def write_lock(weights_dir: Path, lock: dict[str, dict]) -> None:
    path = Path(weights_dir) / LOCK_FILE_NAME
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path, json.dumps(lock, indent=2, sort_keys=True) + "\n")


def verify_part(directory: Path, name: str, lock: dict[str, dict], force: bool = False) -> None:
    """Check every file of part `name` in `directory` against its lock entry.

    Hashing several GB at every start would cost seconds, so a verified file's size and mtime are
    stamped in `<part>/.verified.json` and it is re-hashed only when they change (or with `force`).
    Raises WeightsIntegrityError naming the first file that does not match.
    """
    stamp_path = directory / VERIFIED_STAMP_NAME
    stamps: dict[str, str] = json.loads(stamp_path.read_text()) if stamp_path.is_file() else {}
    changed = False
    for file_name, entry in lock.items():
        part_name, _, relative = file_name.partition("/")
        if part_name != name:
            continue
        path = directory / relative
        if not path.is_file():
            continue
        size, mtime_ns = fingerprint(path)
        stamp = f"{size}:{mtime_ns}:{entry['sha256']}"
        if not force and stamps.get(relative) == stamp:
            continue
        actual = sha256_file(path)
        if actual != entry["sha256"]:
            raise WeightsIntegrityError(
                f"{file_name}: sha256 {actual[:12]}… does not match the lock entry {entry['sha256'][:12]}… "
                f"in {LOCK_FILE_NAME}; delete the file and run `python -m fashion_rag weights download {name}`"
            )
        stamps[relative] = stamp
        changed = True
    if changed:
        atomic_write(stamp_path, json.dumps(stamps, indent=1, sort_keys=True))


def verify_all(weights_dir: Path) -> list[str]:
    """Hash every locked file under `weights_dir`; return one line per problem (empty if all match)."""
    lock = read_lock(weights_dir)
    problems = []
    for name in sorted({key.partition("/")[0] for key in lock}):
        try:
            verify_part(Path(weights_dir) / name, name, lock, force=True)
        except WeightsIntegrityError as error:
            problems.append(str(error))
    return problems


def load_torch_state_dict(path: Path | str) -> dict:
    """Load a plain `.pth` state dict with `weights_only=True`: tensors and containers, no code.

    A pickle that asks for any other object (a class, a function) is refused with
    WeightsIntegrityError instead of being executed.
    """
    import torch

    try:
        state = torch.load(str(path), map_location="cpu", weights_only=True, mmap=True)
    except pickle.UnpicklingError as error:
        raise WeightsIntegrityError(
            f"{path}: refused to load, it holds objects other than tensors ({str(error).splitlines()[0]})"
        ) from error
    except RuntimeError as error:
        # A non-zip file goes through the legacy unpickler, which reports through RuntimeError.
        raise WeightsIntegrityError(f"{path}: not a readable torch checkpoint ({error})") from error
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise WeightsIntegrityError(f"{path}: expected a flat dict of tensors (a state dict)")
    return state
