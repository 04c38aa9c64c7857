"""Model sources: the registry of every model part, where each is found, verification and download.

    registry.py  the parts as data from weights/sources.json (repository, revision, files read by role),
                 and the checkpoint file names the code opens
    locate.py    ModelSources: a part in a bundle, in weights/<part>/ or in the Hugging Face cache
    lock.py      weights.lock.json, verification by sha256, safe loading of .pth checkpoints
    hub.py       the Hub's endpoint and reachability, and the one explainer of its errors
    download.py  model parts and catalog datasets fetched from the Hub (all network access)

The names importers use are re-exported here (`from fashion_rag.weights import ModelSources`).
"""

from fashion_rag.weights.download import HUB_LISTING, PartPlan, PlannedFile, download, download_dataset, plan_part
from fashion_rag.weights.hub import HubError, explain_hub_error, failure_kind, hub_endpoint, hub_reachable
from fashion_rag.weights.locate import ModelSources, PartLocation, missing_message, present_files, recorded_sha256
from fashion_rag.weights.lock import load_torch_state_dict, read_lock, verify_all, verify_part, write_lock
from fashion_rag.weights.registry import (
    ADAPTER_CHECKPOINT,
    BUNDLE_FILE_NAME,
    GENERATION_PARTS,
    LOCK_FILE_NAME,
    PARSER_PARTS,
    REGISTRY,
    RETRIEVAL_CONFIG,
    RETRIEVAL_WEIGHTS,
    SEARCH_PARTS,
    SOURCES_FILE,
    UNET_CHECKPOINT,
    VERIFIED_STAMP_NAME,
    ModelPart,
    is_default_source,
    known_files,
    load_sources_file,
    part_with_overrides,
)

__all__ = [
    "ADAPTER_CHECKPOINT", "BUNDLE_FILE_NAME", "GENERATION_PARTS", "HUB_LISTING", "LOCK_FILE_NAME", "PARSER_PARTS",
    "REGISTRY", "RETRIEVAL_CONFIG", "RETRIEVAL_WEIGHTS", "SEARCH_PARTS", "SOURCES_FILE", "UNET_CHECKPOINT",
    "VERIFIED_STAMP_NAME", "HubError", "ModelPart", "ModelSources", "PartLocation", "PartPlan", "PlannedFile",
    "download", "download_dataset", "explain_hub_error", "failure_kind", "hub_endpoint", "hub_reachable",
    "is_default_source", "known_files", "load_sources_file", "load_torch_state_dict", "missing_message",
    "part_with_overrides", "plan_part", "present_files", "read_lock", "recorded_sha256", "verify_all",
    "verify_part", "write_lock",
]  # fmt: skip
