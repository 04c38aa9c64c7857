"""Run an edit against a running studio with gradio_client (start it with `make demo` or `make demo-tiny`).

python examples/client.py [URL]
"""

import sys

from gradio_client import Client, handle_file

url = sys.argv[1] if len(sys.argv) > 1 else "http://127.0.0.1:7860/"
client = Client(url)
photo = handle_file("examples/people/astronaut.png")

# 1. Frame, automatic mask and pose of the photo.
frame, mask, overlay, pose, info = client.predict(photo, "upper_body", "box", api_name="/prepare")
print("mask from the", info["mask_source"], "path; notes:", info["notes"])

# 2. Catalog search: the top 3 upper-body garments for a description.
found = client.predict("red and white striped shirt", "upper_body", 3, api_name="/search")
for hit in found["hits"]:
    print(f"{hit['id']:>10}  {hit['score']:.3f}  {hit['caption']}")

# 3. Edit with the first two garments: (photo, category, garment ids, own garment image, mask image,
#    description, seed (-1: random), steps, guidance, sampler, images, paste back).
ids = ",".join(hit["id"] for hit in found["hits"][:2])
gallery, seed, recipe = client.predict(
    photo, "upper_body", ids, None, None, "red and white striped shirt", -1, 50, 7.5, "ddim", 1, True, api_name="/edit"
)
print("edited photo:", gallery[0]["image"], "seed:", seed, "recipe:", recipe)

# 4. No garment: a text-only edit from the description (the recipe says "prompt": "text-only").
gallery, seed, recipe = client.predict(
    photo, "upper_body", "", None, None, "red floral summer dress", 7, 25, 7.5, "dpm++", 1, True, api_name="/edit"
)
print("text-only edit:", gallery[0]["image"], "recipe:", recipe)
