"""report.html: one self-contained page to review a fit (plots, stills, the per-frame table).

Everything is inside the file (images as data URIs, no script, no external style), so it opens from
a mail or a render farm's output folder alike. The stills are the QA video's frames at the take's
worst and median frames (:meth:`facecap.fit.review.FrameErrors.worst_and_median`): each shows every
camera's tile, labelled, with the model's edges and its signed difference.
"""

import base64
import html
import logging
import os
from pathlib import Path

import cv2
import imageio.v2 as imageio
import numpy as np

from facecap.animation import Animation
from facecap.export.timecode import Timecode
from facecap.fit.review import FrameErrors

__all__ = ["write_report_page", "qa_stills"]

log = logging.getLogger(__name__)

_JPEG_QUALITY = 90
_STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em auto; padding: 0 1.5em; max-width: 1400px; color: #222; }
.scroll { overflow-x: auto; }
h1 { margin-bottom: 0.2em; } h2 { margin-top: 1.6em; border-bottom: 1px solid #ccc; }
.summary td { padding: 0.1em 1em 0.1em 0; } img { max-width: 100%; border: 1px solid #ddd; }
figure { margin: 1em 0; } figcaption { color: #555; }
table.frames { border-collapse: collapse; font-size: 0.85em; font-variant-numeric: tabular-nums; }
table.frames th, table.frames td { border: 1px solid #ddd; padding: 0.15em 0.5em; text-align: right; }
table.frames th { background: #f2f2f2; position: sticky; top: 0; }
tr.flagged td { background: #fde2e2; } tr.interpolated td { color: #888; }
"""


def _data_uri(data: bytes, mime: str) -> str:
    return f"data:{mime};base64,{base64.b64encode(data).decode('ascii')}"


def _image(path: Path, alt: str) -> str:
    return f'<img alt="{html.escape(alt)}" src="{_data_uri(path.read_bytes(), "image/png")}">'


def qa_stills(video: Path, indices: list[int], expected_frames: int) -> dict[int, np.ndarray]:
    """Frames ``indices`` of the QA video ([H, W, 3] uint8 each), which holds one frame per take frame in
    order; {} (with a warning) when it holds another number of frames."""
    reader = imageio.get_reader(video)
    try:
        count = reader.count_frames()
        if count != expected_frames:
            log.warning("%s has %d frames for %d fitted frames: report.html shows no stills", video, count,
                        expected_frames)
            return {}
        return {i: reader.get_data(i) for i in sorted(set(indices))}
    finally:
        reader.close()


def _still(frame: np.ndarray, caption: str) -> str:
    ok, jpeg = cv2.imencode(".jpg", cv2.cvtColor(frame, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, _JPEG_QUALITY])
    if not ok:
        raise RuntimeError("JPEG encoding of a QA still failed")
    return (f'<figure><img alt="{html.escape(caption)}" src="{_data_uri(jpeg.tobytes(), "image/jpeg")}">'
            f"<figcaption>{html.escape(caption)}</figcaption></figure>")


def _number(value: float, digits: int = 2) -> str:
    return "–" if not np.isfinite(value) else f"{value:.{digits}f}"


def _table(errors: FrameErrors, flagged: np.ndarray, labels: list[str]) -> str:
    landmark_cameras = errors.camera_names if errors.landmark_px_per_camera is not None else ()
    photometric_cameras = errors.camera_names if errors.photometric_rms_per_camera is not None else ()
    head = (["frame", "timecode", "landmark px"] + [f"{n} px" for n in landmark_cameras] + ["photometric RMS"]
            + [f"{n} RMS" for n in photometric_cameras] + ["interpolated", "flagged"])
    rows = []
    for i, frame in enumerate(errors.frames):
        cells = [str(frame), labels[i], _number(errors.landmark_px[i])]
        if errors.landmark_px_per_camera is not None:
            cells += [_number(v) for v in errors.landmark_px_per_camera[i]]
        cells.append(_number(errors.photometric_rms[i]))
        if errors.photometric_rms_per_camera is not None:
            cells += [_number(v) for v in errors.photometric_rms_per_camera[i]]
        cells += ["yes" if errors.interpolated[i] else "", "yes" if flagged[i] else ""]
        kind = " ".join(k for k, on in (("flagged", flagged[i]), ("interpolated", errors.interpolated[i])) if on)
        rows.append(f'<tr class="{kind}">' + "".join(f"<td>{html.escape(c)}</td>" for c in cells) + "</tr>")
    header = "".join(f"<th>{html.escape(h)}</th>" for h in head)
    return f'<table class="frames"><thead><tr>{header}</tr></thead><tbody>\n' + "\n".join(rows) + "\n</tbody></table>"


def write_report_page(errors: FrameErrors, anim: Animation, timecode: Timecode, path: str | Path,
                      images: dict[str, Path], qa_video: Path | None = None, seconds: dict[str, float] | None = None
                      ) -> Path:
    """Write report.html.

    Args:
        errors: the per-frame errors (report.json's).
        anim: the fitted animation (its fps, start timecode, frame numbers).
        timecode: the take's timecode clock, for the table's labels.
        images: title -> PNG to show, in order (at least one): the first (the errors) before the stills.
        qa_video: qa.mp4, for stills at the worst and median frames (none without it).
        seconds: wall time per phase of the fit, for the summary.
    """
    path = Path(path)
    flagged = errors.flagged()
    start = timecode.parse(anim.start_timecode)
    labels = [timecode.label(start + int(f)) for f in errors.frames]
    worst, median = errors.worst_and_median()
    metric = "photometric RMS" if errors.has_photometric else "landmark px"
    stills = qa_stills(qa_video, [worst, median], len(errors.frames)) if qa_video and qa_video.is_file() else {}
    summary = [("frames", f"{len(errors.frames)} at {anim.fps:g} fps, from {anim.start_timecode}"),
               ("cameras", ", ".join(errors.camera_names) or "–"),
               ("landmark error", f"median {_number(np.nanmedian(errors.landmark_px))} px, "
                                  f"max {_number(np.nanmax(errors.landmark_px))} px"),
               ("photometric error", f"median {_number(np.nanmedian(errors.photometric_rms))}, "
                                     f"max {_number(np.nanmax(errors.photometric_rms))} grey levels"
                if errors.has_photometric else "no photometric fit"),
               ("flagged frames", f"{int(flagged.sum())} ({int(errors.interpolated.sum())} interpolated): "
                                  + (", ".join(str(f) for f in errors.frames[flagged]) or "none")),
               ("fit time", f"{seconds['total']:.1f} s" if seconds and "total" in seconds else "–")]
    parts = ["<!doctype html>", '<html lang="en"><head><meta charset="utf-8">',
             f"<title>facecap fit report: {len(errors.frames)} frames</title><style>{_STYLE}</style></head><body>",
             "<h1>facecap fit report</h1>", '<table class="summary">']
    parts += [f"<tr><td><b>{html.escape(k)}</b></td><td>{html.escape(v)}</td></tr>" for k, v in summary]
    parts.append("</table>")
    first, *others = images.items()
    parts += [f"<h2>{html.escape(first[0])}</h2>", _image(first[1], first[0]), "<h2>Stills</h2>"]
    if stills:
        for label, index in (("worst", worst), ("median", median)):
            caption = (f"{label} frame {errors.frames[index]} ({labels[index]}): {metric} "
                       f"{_number(errors.score[index])}")
            parts.append(_still(stills[index], caption))
    else:
        parts.append("<p>No QA video (qa_video off, or no photometric fit).</p>")
    for title, image in others:
        parts += [f"<h2>{html.escape(title)}</h2>", _image(image, title)]
    parts += ["<h2>Frames</h2>", f'<div class="scroll">{_table(errors, flagged, labels)}</div>', "</body></html>"]
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text("\n".join(parts), encoding="utf-8")
    os.replace(tmp, path)
    log.info("wrote %s", path)
    return path
