"""Tiny frames that carry their own frame number, readable after H.264 compression: takes whose
reads can be checked frame by frame (PNG folders and mp4 videos)."""

import cv2
import imageio_ffmpeg
import numpy as np

__all__ = ["W", "H", "coded_frame", "decode", "write_png_folder", "write_mp4"]

W, H = 64, 48
BLOCK, BITS = 6, 10  # the frame number is written in binary as 6x6 blocks, robust to H.264 compression


def coded_frame(n: int) -> np.ndarray:
    """[H, W, 3] uint8 whose top row of BITS blocks spells ``n`` in binary (white = 1)."""
    img = np.full((H, W, 3), 64, np.uint8)
    for bit in range(BITS):
        if (n >> bit) & 1:
            img[:BLOCK, bit * BLOCK:(bit + 1) * BLOCK] = 255
    return img


def decode(frame: np.ndarray) -> int:
    """Frame number from a float [0, 1] frame written by coded_frame."""
    means = [frame[2:BLOCK - 2, b * BLOCK + 2:(b + 1) * BLOCK - 2].mean() for b in range(BITS)]
    return int(sum(1 << b for b, m in enumerate(means) if m > 0.6))


def write_png_folder(folder, numbers, names=None):
    folder.mkdir(parents=True)
    for k, n in enumerate(numbers):
        cv2.imwrite(str(folder / (names[k] if names else f"f{k}.png")), coded_frame(n)[:, :, ::-1])


def write_mp4(path, count):
    writer = imageio_ffmpeg.write_frames(str(path), (W, H), fps=30, quality=9, macro_block_size=16,
                                         output_params=["-g", "25"], ffmpeg_log_level="error")
    writer.send(None)
    for n in range(count):
        writer.send(coded_frame(n))
    writer.close()
