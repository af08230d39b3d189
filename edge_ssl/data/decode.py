"""Decoding user clips with OpenCV: video files and frame folders to RGB uint8, probing, resize and crop, and the
preprocessing every video model input goes through (`model_input`: the runner's clips and the recognizer's frames).

Colour: every frame comes out RGB uint8 [H, W, 3]. Grey images are repeated to three channels, RGBA drops alpha (no
compositing), 16-bit images keep their top 8 bits (value >> 8), float images are taken as [0, 1].

Rotation: the container's rotation metadata is applied. OpenCV 5's FFmpeg backend applies it by default
(`CAP_PROP_ORIENTATION_AUTO`, on for FFmpeg); we set it on explicitly for every capture, in probing and in decoding
alike, so the height and width the index reports are those of the frames the pipeline yields (a phone video shot
upright is read upright). Image frames carry no rotation: EXIF orientation in JPEG frames is ignored
(`IMREAD_IGNORE_ORIENTATION`), because frame folders are usually written by tools that already rotated the pixels.

Paths: videos are opened with the FFmpeg backend by name, which takes UTF-8 paths on Linux; naming the backend also
keeps OpenCV's image-sequence reader from treating a "%" in a file name as a pattern. Images are read with
`np.fromfile` + `cv2.imdecode`, which works for any path Python can open.
"""

import os

import cv2
import numpy as np

from edge_ssl.data.folder_index import Clip, ClipUnreadable, extension

VIDEO_EXTENSIONS = (".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v")
FRAME_EXTENSIONS = (".jpg", ".jpeg", ".png")

# A container's frame count may be an estimate (duration x fps), so a clip counts as truncated only when clearly fewer
# frames decode than it declares.
_TRUNCATION_SLACK_FRAMES = 2
_TRUNCATION_SLACK_FRACTION = 0.05
_IMREAD_FLAGS = cv2.IMREAD_UNCHANGED | cv2.IMREAD_IGNORE_ORIENTATION


def to_rgb8(image: np.ndarray) -> np.ndarray:
    """Converts an OpenCV image (BGR / BGRA / grey, 8 or 16 bit or float) to RGB uint8 [H, W, 3].

    Args:
      image: [H, W] or [H, W, C] with C in {1, 3, 4}, channels in OpenCV's BGR(A) order.

    Returns:
      RGB uint8 [H, W, 3].

    Raises:
      ClipUnreadable: for a channel count or dtype that is not an image.
    """
    if image.dtype == np.uint16:
        image = (image >> 8).astype(np.uint8)
    elif image.dtype in (np.float32, np.float64):
        image = np.clip(np.round(image * 255.0), 0, 255).astype(np.uint8)
    elif image.dtype != np.uint8:
        raise ClipUnreadable(f"unsupported pixel type {image.dtype}")
    if image.ndim == 3 and image.shape[2] == 1:
        image = image[:, :, 0]
    if image.ndim == 2:
        return cv2.cvtColor(image, cv2.COLOR_GRAY2RGB)
    if image.ndim == 3 and image.shape[2] == 3:
        return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)
    if image.ndim == 3 and image.shape[2] == 4:
        return cv2.cvtColor(image, cv2.COLOR_BGRA2RGB)
    raise ClipUnreadable(f"unsupported image shape {image.shape}")


def read_image(path: str) -> np.ndarray:
    """Reads one frame file as RGB uint8 [H, W, 3].

    Args:
      path: a .jpg/.jpeg/.png file; any characters in the path.

    Returns:
      RGB uint8 [H, W, 3].

    Raises:
      ClipUnreadable: the file is empty, unreadable or not a decodable image.
    """
    try:
        data = np.fromfile(path, dtype=np.uint8)
    except OSError as e:
        raise ClipUnreadable(f"cannot read frame {os.path.basename(path)}: {e.strerror}") from e
    if data.size == 0:
        raise ClipUnreadable(f"frame {os.path.basename(path)} is an empty file (0 bytes)")
    image = cv2.imdecode(data, _IMREAD_FLAGS)
    if image is None:
        raise ClipUnreadable(f"frame {os.path.basename(path)} does not decode as an image")
    return to_rgb8(image)


def list_frames(folder: str) -> list[str]:
    """The frame files of a frame folder, ordered by name (hidden files and other extensions left out)."""
    return [
        os.path.join(folder, name)
        for name in sorted(os.listdir(folder))
        if not name.startswith(".") and extension(name) in FRAME_EXTENSIONS
    ]


def probe_frame_folder(path: str, label: int) -> Clip:
    """Checks that every frame of a frame folder decodes and that all have one size.

    Args:
      path: the frame folder.
      label: the clip's class index.

    Returns:
      The clip, with its frame files in order.

    Raises:
      ClipUnreadable: no frames, a frame that does not decode, or frames of different sizes.
    """
    frames = list_frames(path)
    if not frames:
        raise ClipUnreadable(f"frame folder holds no frames ({', '.join(FRAME_EXTENSIONS)})")
    first_shape = None
    for frame in frames:
        shape = read_image(frame).shape
        if first_shape is None:
            first_shape = shape
        elif shape != first_shape:
            raise ClipUnreadable(
                f"frames differ in size: {os.path.basename(frames[0])} is "
                f"{first_shape[1]}x{first_shape[0]}, {os.path.basename(frame)} is {shape[1]}x{shape[0]}"
            )
    return Clip(
        path=path,
        label=label,
        kind="frames",
        num_frames=len(frames),
        height=first_shape[0],
        width=first_shape[1],
        frames=tuple(frames),
    )


def read_frame_folder(frames: tuple[str, ...] | list[str], indices: np.ndarray) -> np.ndarray:
    """Reads the frames at `indices` from a frame folder's files.

    Args:
      frames: the folder's frame files, in order.
      indices: int [N] frame indices (repeats allowed).

    Returns:
      RGB uint8 [N, H, W, 3].

    Raises:
      ClipUnreadable: a frame is missing, does not decode, or differs in size from the others.
    """
    decoded = {}
    for i in np.unique(indices):
        if i >= len(frames):
            raise ClipUnreadable(f"frame {i} needed, folder has {len(frames)}")
        decoded[int(i)] = read_image(frames[i])
    shapes = {image.shape for image in decoded.values()}
    if len(shapes) > 1:
        raise ClipUnreadable(f"frames differ in size: {sorted(shapes)}")
    return np.stack([decoded[int(i)] for i in indices])


def sniff_container(path: str) -> str | None:
    """Names the container a file's first bytes announce ("MP4/MOV", "AVI", "Matroska/WebM"), or None.

    Only used to word the skip reason: a file that starts like a video but does not open is broken, not misnamed.
    """
    with open(path, "rb") as f:
        head = f.read(12)
    if head[4:8] == b"ftyp" or head[4:8] in (b"moov", b"mdat", b"wide", b"free"):
        return "MP4/MOV"
    if head[:4] == b"RIFF" and head[8:12] == b"AVI ":
        return "AVI"
    if head[:4] == b"\x1a\x45\xdf\xa3":
        return "Matroska/WebM"
    return None


def open_video(path: str) -> cv2.VideoCapture:
    """An opened FFmpeg capture of a video file, rotation metadata applied (see the module docstring).

    Raises:
      ClipUnreadable: the file is missing, empty, or FFmpeg cannot open it (the reason says which).
    """
    if not os.path.exists(path):
        raise ClipUnreadable("file not found")
    if os.path.getsize(path) == 0:
        raise ClipUnreadable("empty file (0 bytes)")
    capture = cv2.VideoCapture(path, cv2.CAP_FFMPEG)
    if not capture.isOpened():
        container = sniff_container(path)
        if container:
            raise ClipUnreadable(f"corrupt or truncated {container} file: FFmpeg cannot open it")
        raise ClipUnreadable("not a video: no known container signature and FFmpeg cannot open it")
    # One rotation rule for probe and decode (see the module docstring).
    capture.set(cv2.CAP_PROP_ORIENTATION_AUTO, 1)
    return capture


def probe_video(path: str, label: int) -> Clip:
    """Decodes a video file once through to count its frames and check it is whole.

    The frame count is what decodes, not the container's claim, which may be an estimate or, for a truncated file,
    wrong.

    Args:
      path: the video file.
      label: the clip's class index.

    Returns:
      The clip.

    Raises:
      ClipUnreadable: the file is empty, cannot be opened, has no decodable frame, or is truncated (clearly fewer
        frames decode than the container declares).
    """
    capture = open_video(path)
    try:
        declared = capture.get(cv2.CAP_PROP_FRAME_COUNT)
        fps = capture.get(cv2.CAP_PROP_FPS)
        first = None
        count = 0
        # grab() decodes each frame (so it verifies the stream) without the colour conversion retrieve() adds.
        while capture.grab():
            if first is None:
                ok, first = capture.retrieve()
                if not ok or first is None:
                    raise ClipUnreadable("first frame does not decode")
            count += 1
    finally:
        capture.release()
    if count == 0:
        raise ClipUnreadable("no frame decodes (empty or corrupt video stream)")
    # Containers without a count report 0, -1 or garbage; only a plausible claim is checked.
    if 0 < declared < 1e7:
        slack = max(_TRUNCATION_SLACK_FRAMES, _TRUNCATION_SLACK_FRACTION * declared)
        if count < declared - slack:
            raise ClipUnreadable(
                f"truncated: the container declares {int(declared)} frames, only {count} decode"
            )
    return Clip(
        path=path,
        label=label,
        kind="video",
        num_frames=count,
        height=first.shape[0],
        width=first.shape[1],
        fps=float(fps) if fps and 0 < fps < 1e4 else 0.0,
    )


def read_video(path: str, indices: np.ndarray | None = None) -> np.ndarray:
    """Decodes the frames at `indices` (all frames when None) from a video file.

    Decodes sequentially up to the last index needed: seeking by frame number is unreliable in many codecs
    (it lands on key frames), and user clips are short.

    Args:
      path: the video file.
      indices: int [N] frame indices (repeats allowed), or None for every frame.

    Returns:
      RGB uint8 [N, H, W, 3].

    Raises:
      ClipUnreadable: the file cannot be opened or has fewer frames than needed.
    """
    capture = open_video(path)
    wanted = None if indices is None else set(int(i) for i in indices)
    last = None if indices is None else int(np.max(indices))
    decoded = {}
    try:
        i = 0
        while last is None or i <= last:
            if not capture.grab():
                break
            if wanted is None or i in wanted:
                ok, frame = capture.retrieve()
                if not ok or frame is None:
                    raise ClipUnreadable(f"frame {i} does not decode")
                decoded[i] = to_rgb8(frame)
            i += 1
    finally:
        capture.release()
    if indices is None:
        if not decoded:
            raise ClipUnreadable("no frame decodes")
        return np.stack([decoded[i] for i in sorted(decoded)])
    if last not in decoded:
        raise ClipUnreadable(f"frame {last} needed, only {i} decode")
    return np.stack([decoded[int(i)] for i in indices])


def resize_and_crop(
    frames: np.ndarray, size: tuple[int, int], offset: tuple[float, float] = (0.5, 0.5)
) -> np.ndarray:
    """Scales frames so they cover `size` (aspect kept), then crops `size` out of them.

    Args:
      frames: uint8 [T, H, W, 3].
      size: (height, width) of the output.
      offset: where the crop sits along (y, x), each in [0, 1]: 0.5 centres it, 0 takes the top/left edge. Random
        crops pass random offsets, so the caller's generator decides them.

    Returns:
      uint8 [T, size[0], size[1], 3].
    """
    out_h, out_w = size
    _, h, w, _ = frames.shape
    scale = max(out_h / h, out_w / w)
    new_h, new_w = max(out_h, round(h * scale)), max(out_w, round(w * scale))
    if (new_h, new_w) != (h, w):
        # INTER_AREA averages when shrinking (no aliasing); INTER_LINEAR is the usual choice when enlarging.
        interp = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
        frames = np.stack([cv2.resize(f, (new_w, new_h), interpolation=interp) for f in frames])
    top = int(round((new_h - out_h) * offset[0]))
    left = int(round((new_w - out_w) * offset[1]))
    return np.ascontiguousarray(frames[:, top : top + out_h, left : left + out_w])


def model_input(frames: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """What a video model takes, as its model card says: frames scaled to cover `size` (aspect kept), centre-cropped
    to it, RGB float32 in [0, 1].

    The few-shot runner reads its clips and the recognizer its camera frames through this one function, so a
    classifier sees at recognition time exactly the preprocessing it was fitted with.

    Args:
      frames: RGB uint8 [T, H, W, 3] at any size (already `size` is fine: then only the scaling to [0, 1] is done).
      size: (height, width) of the model's frames.

    Returns:
      float32 [T, size[0], size[1], 3].
    """
    return resize_and_crop(frames, size).astype(np.float32) / 255.0
