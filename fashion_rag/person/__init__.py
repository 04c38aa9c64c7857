"""Person preprocessing: any uploaded photo -> 384x512 frame, 18 keypoints, pose map, garment mask.

Modules, in the order of the flow: `photo` (loading), `framing` (3:4 crop and its inverse), `pose`
(mediapipe BlazePose -> COCO-18, pose map), `masks` (the Dress Code recipe over an ATR label map),
`parser` (SegFormer clothes parser), `offline_mask` (the mask without weights), `prepare` (all of it).
Nothing heavy is imported here: mediapipe and torch load when a model is built.
"""

from fashion_rag.person.framing import FRAME_HEIGHT, FRAME_WIDTH, FrameTransform
from fashion_rag.person.masks import MaskResult, garment_mask_from_labels
from fashion_rag.person.photo import load_photo
from fashion_rag.person.pose import COCO18_NAMES, blazepose_to_coco18, pose_heatmaps
from fashion_rag.person.prepare import PersonPreparer, PreparedPerson, apply_user_mask, overlay_preview

__all__ = [
    "COCO18_NAMES",
    "FRAME_HEIGHT",
    "FRAME_WIDTH",
    "FrameTransform",
    "MaskResult",
    "PersonPreparer",
    "PreparedPerson",
    "apply_user_mask",
    "blazepose_to_coco18",
    "garment_mask_from_labels",
    "load_photo",
    "overlay_preview",
    "pose_heatmaps",
]
