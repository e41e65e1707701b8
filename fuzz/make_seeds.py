"""Writes the fuzz targets' seed inputs (fuzz/seeds/<target>/): small valid files of each format, from which
libFuzzer mutates. Run once from the repository root: python3 fuzz/make_seeds.py"""
import gzip, io, json, shutil, struct, tarfile, zlib
from pathlib import Path

root = Path("fuzz/seeds")

# IDX: a 3-image 2x2 uint8 file raw and gzipped, and a label file.
imgs = struct.pack(">I", 0x00000803) + struct.pack(">III", 3, 2, 2) + bytes(range(12))
labels = struct.pack(">I", 0x00000801) + struct.pack(">I", 3) + bytes([0, 1, 2])
(root / "idx/images.idx").write_bytes(imgs)
(root / "idx/images.idx.gz").write_bytes(gzip.compress(imgs, mtime=0))
(root / "idx/labels.idx").write_bytes(labels)

# CIFAR-10 binary: two records (label byte + 3072 pixel bytes).
(root / "cifar_bin/two_records.bin").write_bytes(bytes([3]) + bytes(3072) + bytes([9]) + bytes(range(256)) * 12)

# An image folder as a tar: train/{ants,bees}/ and val/ants/, one 2x2 PNG each.
def png(w, h, rgb):
    raw = b"".join(b"\0" + bytes(rgb) * w for _ in range(h))
    chunk = lambda t, d: struct.pack(">I", len(d)) + t + d + struct.pack(">I", zlib.crc32(t + d) & 0xFFFFFFFF)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0)) + \
        chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b"")
buf = io.BytesIO()
with tarfile.open(fileobj=buf, mode="w", format=tarfile.USTAR_FORMAT) as t:
    for name, colour in [("train/ants/a.png", (200, 10, 10)), ("train/bees/b.png", (10, 200, 10)), ("val/ants/c.png", (9, 9, 200))]:
        data = png(2, 2, colour)
        info = tarfile.TarInfo(name)
        info.size, info.mtime = len(data), 0
        t.addfile(info, io.BytesIO(data))
(root / "image_folder_tar/folder.tar").write_bytes(buf.getvalue())
# The same in GNU format, whose headers may state sizes in base-256: the mutations reach absurd claimed sizes.
buf = io.BytesIO()
with tarfile.open(fileobj=buf, mode="w", format=tarfile.GNU_FORMAT) as t:
    data = png(2, 2, (1, 2, 3))
    info = tarfile.TarInfo("train/ants/" + "long-name-" * 12 + ".png")
    info.size, info.mtime = len(data), 0
    t.addfile(info, io.BytesIO(data))
(root / "image_folder_tar/gnu.tar").write_bytes(buf.getvalue())

# safetensors: one F32 tensor of LeNet-5's, with convkit's metadata.
data = struct.pack("<6f", *[0.1 * i for i in range(6)])
header = json.dumps({"__metadata__": {"format": "convkit"}, "conv1.bias": {"dtype": "F32", "shape": [6], "data_offsets": [0, 24]}}).encode()
header += b" " * (-len(header) % 8)
(root / "checkpoint/conv1_bias.safetensors").write_bytes(struct.pack("<Q", len(header)) + header + data)

for r in Path("recipes").glob("*.toml"):
    shutil.copy(r, root / "recipe" / r.name)
