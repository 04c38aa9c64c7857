"""Sections 1 and 2 of `doctor` (fashion_rag/commands/doctor.py): the machine (device, dtype, free memory and
disk, library versions) and the files of every model part (where found, revision, size and sha256 of each
file against the lock file, the bundle's record and weights/sources.json).

Not a command: cli.COMMAND_MODULES names the commands; this module only serves `doctor`.
"""

from __future__ import annotations

import platform
from importlib import metadata
from pathlib import Path

from fashion_rag.commands.doctor_report import Report

LIBRARIES = ("torch", "diffusers", "transformers", "open_clip_torch", "gradio", "huggingface_hub", "safetensors")


def check_environment(report: Report, device, dtype, weights_dir: Path) -> None:
    import shutil

    import psutil
    import torch

    versions = {}
    for name in LIBRARIES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    if device.type == "cuda":
        free, total = torch.cuda.mem_get_info(device)
        memory = f"{free / 2**30:.1f} of {total / 2**30:.1f} GiB GPU memory free ({torch.cuda.get_device_name(device)})"
    else:
        memory = f"{psutil.virtual_memory().available / 2**30:.1f} GiB RAM available"
    disk_dir = weights_dir if weights_dir.exists() else weights_dir.parent
    disk = shutil.disk_usage(disk_dir).free / 2**30 if disk_dir.exists() else float("nan")
    report.environment = {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "versions": versions,
        "device": str(device),
        "dtype": str(dtype).removeprefix("torch."),
        "memory": memory,
        "disk_free_gib": round(disk, 1),
        "torch_threads": torch.get_num_threads(),
    }
    missing = [name for name, version in versions.items() if version is None]
    report.add(
        "machine",
        "libraries",
        not missing,
        ", ".join(f"{k} {v}" for k, v in versions.items() if v)
        + (f"; missing {', '.join(missing)}" if missing else ""),
        "`make install` (pip install -r requirements.txt -c constraints.txt)",
    )
    report.add("machine", "device", True, f"{device}, {str(dtype).removeprefix('torch.')}; {memory}")


def _revision_of(location, sources, lock: dict) -> str:
    if location.where == "bundle":
        return f"{sources.kind} bundle, seed {sources.bundle_info.get('seed', '?')}"
    if location.where == "hf-cache":
        return f"commit {location.path.name} (HF cache snapshot)"
    commits = {
        e.get("revision") for k, e in lock.items() if k.startswith(location.part.name + "/") and e.get("revision")
    }
    return f"commit {', '.join(sorted(commits))} (lock file)" if commits else "not recorded (placed by hand?)"


def check_files(report: Report, sources) -> dict:
    from fashion_rag.files import sha256_file
    from fashion_rag.weights import LOCK_FILE_NAME, is_default_source, known_files, read_lock

    lock = read_lock(sources.weights_dir)
    bundle_hashes = sources.bundle_info.get("sha256", {})
    locations = {}
    for location in sources.status():
        part = location.part
        name = part.name
        locations[name] = location
        if not location.found:
            fix = (
                f"`python -m fashion_rag weights make-tiny {sources.bundle_dir}`"
                if sources.bundle_dir
                else f"`python -m fashion_rag weights download {name}` (~{part.size_gb} GB from {part.repo_id})"
            )
            report.add("files", name, False, f"missing ({part.repo_id}@{part.revision[:12]})", fix)
            report.parts[name] = {"where": "missing", "repo_id": part.repo_id, "revision": part.revision}
            continue
        revision = _revision_of(location, sources, lock)
        report.add("files", name, True, f"{location.where} {location.path}; {part.repo_id}; {revision}")
        files = {}
        for preferred in part.file_names:
            path = location.file(preferred)
            relative = str(path.relative_to(location.path))
            key = f"{name}/{relative}"
            digest, size = sha256_file(path), path.stat().st_size
            files[relative] = {"size": size, "sha256": digest}
            expected = []  # (recorded sha256, size or None, where)
            if location.where == "weights/" and key in lock:
                expected.append((lock[key]["sha256"], lock[key].get("size"), LOCK_FILE_NAME))
            if location.where == "bundle" and key in bundle_hashes:
                expected.append((bundle_hashes[key], None, "bundle.json"))
            known = known_files(part.repo_id).get(relative, {}) if is_default_source(part) else {}
            if location.where != "bundle" and known.get("sha256"):
                expected.append((known["sha256"], known.get("size"), "weights/sources.json"))
            bad = [where for sha, want_size, where in expected if sha != digest or (want_size and want_size != size)]
            matches = ", ".join(f"matches {where}" for _, _, where in expected) or "no recorded value to compare"
            fix = (
                f"delete {path} and run `python -m fashion_rag weights download {name}`"
                if location.where != "bundle"
                else f"rebuild the bundle: `python -m fashion_rag weights make-tiny {sources.bundle_dir}`"
            )
            report.add(
                "files",
                key,
                not bad,
                f"{size:,} bytes, sha256 {digest[:16]}…, " + (f"differs from {', '.join(bad)}" if bad else matches),
                fix,
            )
        report.parts[name] = {
            "where": location.where,
            "path": str(location.path),
            "repo_id": part.repo_id,
            "revision": part.revision,
            "found_revision": revision,
            "files": files,
        }
    return locations
