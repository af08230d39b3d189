"""Where the recognizer's frames come from, through OpenCV: files, folders, cameras, network streams, GStreamer.

`open_source(spec, model_rate)` reads `--source`:
- a video file (`clip.mp4`): every frame, processed whole (never skipped), times from the frame index and the
  container's frame rate;
- a folder of videos (`clips/`): its video files one after another in name order, each its own stream (the state is
  reset and times restart at 0; events name their file); a file that does not open is reported and skipped;
- a camera index (`0`) or device (`/dev/video0`);
- a network stream, `rtsp://`, `rtsps://`, `http://` or `https://` (an HTTP(S) URL whose container declares a frame
  count is read as a file, processed whole);
- a GStreamer pipeline ending in `appsink` (anything with `!`), for OpenCV builds with GStreamer. A Jetson CSI camera
  (Orin, Xavier) is read with:
    nvarguscamerasrc sensor-id=0 ! video/x-raw(memory:NVMM),width=1280,height=720,framerate=30/1 ! nvvidconv !
    video/x-raw,format=BGRx ! videoconvert ! video/x-raw,format=BGR ! appsink drop=1
  (`nvvidconv` leaves the NVMM buffer on the GPU's side; `appsink drop=1` keeps only the newest frame when the
  reader is late). pip's OpenCV wheels have no GStreamer; JetPack's system OpenCV has.

Every source yields `Frame`s with `due` set by its own `Resampler` at the model's frame rate, so the recognizer only
runs the frames the model takes. A live source (camera, stream, pipeline) is read on its own thread: the newest due
frame waits in a one-frame slot, and a due frame replaced before the recognizer took it is counted in `skipped`, so
the recognizer never falls behind the camera. When a live source stops delivering, it is reopened up to
`reconnects` times (with a growing pause), then the source ends and `ended` says why. A frame that does not decode,
or decodes to no image or to another size than its stream's, is counted in `corrupt` and skipped. (FFmpeg conceals
some damage itself, repeating or dropping a frame; a file's count is of the reads that failed before the end its
container declares, less two frames of slack for containers whose count is an estimate.)
"""

import dataclasses
import os
import re
import threading
import time
from collections.abc import Callable, Iterator

import cv2
import numpy as np

from edge_ssl.data import decode
from edge_ssl.data.folder_index import ClipUnreadable, extension
from edge_ssl.recognize.recognizer import Resampler

STREAM_SCHEMES = ("rtsp", "rtsps", "http", "https")
JETSON_CSI_PIPELINE = (
    "nvarguscamerasrc sensor-id=0 ! video/x-raw(memory:NVMM),width=1280,height=720,framerate=30/1 ! nvvidconv ! "
    "video/x-raw,format=BGRx ! videoconvert ! video/x-raw,format=BGR ! appsink drop=1"
)
DEFAULT_RECONNECTS = 3
# A file's reads may fail before its end (a damaged packet); this many failures in a row end it.
_MAX_CONSECUTIVE_FAILURES = 30
_TIMEOUT_MS = 5000  # opening and reading a network stream


class SourceError(ValueError):
    """`--source` cannot be read: the message says why and what to do."""


@dataclasses.dataclass
class Frame:
    """One frame as read.

    Attributes:
      image: OpenCV's image (BGR uint8 [H, W, 3] usually; see `decode.to_rgb8` for the others).
      seconds: its time in its stream.
      due: whether the model takes it (resampling, or the one-frame slot of a live source).
      stream: the stream's name (the file for a folder's videos).
      new_stream: the first frame of a stream (a folder's next video, a reopened live source).
      fps: the stream's frame rate when known.
    """

    image: np.ndarray
    seconds: float
    due: bool
    stream: str
    new_stream: bool
    fps: float | None


@dataclasses.dataclass
class Counters:
    """What a source met, for the summary."""

    read: int = 0
    resampled_away: int = 0
    skipped: int = 0
    corrupt: int = 0
    reconnects: int = 0
    files: int = 0
    files_skipped: list[tuple[str, str]] = dataclasses.field(default_factory=list)


def _fps(capture) -> float | None:
    fps = capture.get(cv2.CAP_PROP_FPS)
    return float(fps) if fps and 0 < fps < 1e4 else None


class _Shape:
    """Counts a frame as corrupt when it is no image or its size differs from the stream's first good frame."""

    def __init__(self):
        self.shape = None

    def ok(self, image) -> bool:
        if (
            image is None
            or not isinstance(image, np.ndarray)
            or image.size == 0
            or image.ndim not in (2, 3)
        ):
            return False
        if self.shape is None:
            self.shape = image.shape
        return image.shape == self.shape


class FileSource:
    """Video files read whole, one after another (one file, or a folder's)."""

    live = False

    def __init__(
        self, paths: list[str], model_rate: float, name: str, opener: Callable = decode.open_video
    ):
        self.paths, self.model_rate, self.name, self._open = paths, model_rate, name, opener
        self.counters = Counters()
        self.ended = None
        self.fps = None
        self.folder = len(paths) > 1 or os.path.isdir(name)

    def frames(self) -> Iterator[Frame]:
        for path in self.paths:
            try:
                capture = self._open(path)
            except ClipUnreadable as e:
                self.counters.files_skipped.append((path, str(e)))
                continue
            try:
                yield from self._file(path, capture)
            finally:
                capture.release()
        self.ended = self.ended or "end of the source"

    def _file(self, path: str, capture) -> Iterator[Frame]:
        self.counters.files += 1
        fps = _fps(capture)
        self.fps = fps
        declared = capture.get(cv2.CAP_PROP_FRAME_COUNT)
        declared = declared if 0 < declared < 1e7 else None
        resampler = Resampler(self.model_rate, fps)
        shape = _Shape()
        index, failures, first = 0, 0, True
        stream = os.path.basename(path) if self.folder else path
        while True:
            ok, image = capture.read()
            if not ok:
                # Before the declared end a failed read is a damaged frame; past it (or after many), the end.
                if (
                    declared
                    and index + failures < declared - 2
                    and failures < _MAX_CONSECUTIVE_FAILURES
                ):
                    failures += 1
                    self.counters.corrupt += 1
                    continue
                break
            failures = 0
            self.counters.read += 1
            seconds = index / fps if fps else float(index) / self.model_rate
            index += 1
            if not shape.ok(image):
                self.counters.corrupt += 1
                continue
            due = resampler.due(seconds)
            if not due:
                self.counters.resampled_away += 1
            yield Frame(image, seconds, due, stream, first, fps)
            first = False
        if index == 0:
            self.counters.files_skipped.append((path, "no frame decodes"))


class LiveSource:
    """A camera, network stream or GStreamer pipeline, read on its own thread so that the reader never falls behind.

    `opener()` returns an OpenCV capture (or anything with `isOpened`, `read`, `get` and `release`); it is called
    again to reopen after a drop.
    """

    live = True

    def __init__(
        self,
        opener: Callable,
        name: str,
        model_rate: float,
        reconnects: int = DEFAULT_RECONNECTS,
        reconnect_pause: float = 0.5,
        clock: Callable[[], float] = time.monotonic,
    ):
        self._open, self.name, self.model_rate = opener, name, model_rate
        self.reconnects, self.reconnect_pause, self._clock = reconnects, reconnect_pause, clock
        self.counters = Counters()
        self.ended = None
        self.fps = None
        self._capture = None
        self._slot = None
        self._condition = threading.Condition()
        self._stop = threading.Event()
        self._done = False
        self._thread = None

    def open(self) -> None:
        """Opens the source once (raises SourceError when it does not open); reading starts with `frames`."""
        capture = self._open()
        if capture is None or not capture.isOpened():
            if capture is not None:
                capture.release()
            raise SourceError(f"{self.name} does not open")
        self._capture = capture
        self.fps = _fps(capture)

    def _reopen(self) -> bool:
        for attempt in range(self.reconnects - self.counters.reconnects):
            if self._stop.wait(self.reconnect_pause * (attempt + 1)):
                return False
            self.counters.reconnects += 1
            try:
                capture = self._open()
            # Any failure to open is a failed attempt.
            except Exception:  # pylint: disable=broad-except
                capture = None
            if capture is not None and capture.isOpened():
                self._capture = capture
                return True
            if capture is not None:
                capture.release()
        return False

    def _read_loop(self) -> None:
        start = self._clock()
        resampler = Resampler(self.model_rate)
        shape = _Shape()
        new_stream = True
        try:
            while not self._stop.is_set():
                ok, image = self._capture.read()
                if not ok:
                    self._capture.release()
                    if not self._reopen():
                        self.ended = (
                            f"{self.name} stopped delivering frames and did not come back after "
                            f"{self.counters.reconnects} reopen attempt(s)"
                            if not self._stop.is_set()
                            else self.ended
                        )
                        break
                    new_stream, shape = True, _Shape()
                    resampler.reset()
                    continue
                seconds = self._clock() - start
                self.counters.read += 1
                if not shape.ok(image):
                    self.counters.corrupt += 1
                    continue
                if not resampler.due(seconds):
                    self.counters.resampled_away += 1
                    continue
                with self._condition:
                    if self._slot is not None:
                        self.counters.skipped += (
                            1  # the recognizer had not taken the last one: it is dropped
                        )
                        new_stream = new_stream or self._slot.new_stream
                    self._slot = Frame(image, seconds, True, self.name, new_stream, self.fps)
                    new_stream = False
                    self._condition.notify()
        finally:
            with self._condition:
                self._done = True
                self._condition.notify()

    def frames(self) -> Iterator[Frame]:
        if self._capture is None:
            self.open()
        self._thread = threading.Thread(
            target=self._read_loop, name=f"source {self.name}", daemon=True
        )
        self._thread.start()
        try:
            while True:
                with self._condition:
                    while self._slot is None and not self._done:
                        self._condition.wait()
                    if self._slot is None:
                        break
                    frame, self._slot = self._slot, None
                yield frame
        finally:
            self.close()
        self.ended = self.ended or "end of the source"

    def close(self, reason: str | None = None) -> None:
        """Stops the reader thread and releases the capture."""
        if reason and not self.ended:
            self.ended = reason
        self._stop.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=10)
        if self._capture is not None:
            self._capture.release()


def gstreamer_available() -> bool:
    """Whether this OpenCV was built with GStreamer (pip's wheels are not)."""
    return bool(re.search(r"GStreamer:\s*YES", cv2.getBuildInformation()))


def _video_files(folder: str) -> list[str]:
    return sorted(
        os.path.join(folder, name)
        for name in os.listdir(folder)
        if not name.startswith(".")
        and extension(name) in decode.VIDEO_EXTENSIONS
        and os.path.isfile(os.path.join(folder, name))
    )


def _network_capture(url: str):
    params = [
        cv2.CAP_PROP_OPEN_TIMEOUT_MSEC,
        _TIMEOUT_MS,
        cv2.CAP_PROP_READ_TIMEOUT_MSEC,
        _TIMEOUT_MS,
    ]
    return cv2.VideoCapture(url, cv2.CAP_FFMPEG, params)


def _camera_capture(device):
    capture = cv2.VideoCapture(device)
    if capture.isOpened():
        capture.set(cv2.CAP_PROP_BUFFERSIZE, 1)  # the newest frame, not a queue of old ones
    return capture


def open_source(
    spec: str, model_rate: float, reconnects: int = DEFAULT_RECONNECTS
) -> FileSource | LiveSource:
    """The source `spec` names (see the module docstring), opened.

    Args:
      spec: the `--source` value.
      model_rate: the model's frames per second (each source resamples to it).
      reconnects: how many times a live source is reopened after it stops delivering.

    Raises:
      SourceError: a missing file or empty folder, a file that does not open, a camera that does not open, an
        unsupported URL scheme, a GStreamer pipeline without GStreamer in OpenCV, a stream that does not open.
    """
    spec = spec.strip()
    if not spec:
        raise SourceError(
            "--source is empty; give a video file, a folder, a camera index, a URL or a pipeline"
        )
    if "!" in spec:
        if not gstreamer_available():
            raise SourceError(
                "--source looks like a GStreamer pipeline, but this OpenCV was built without GStreamer (pip's "
                "opencv-python wheels are); on a Jetson use JetPack's OpenCV (python3-opencv), which has it"
            )
        if "appsink" not in spec:
            raise SourceError(
                "a GStreamer pipeline for OpenCV must end in appsink (e.g. '... ! appsink drop=1')"
            )
        source = LiveSource(
            lambda: cv2.VideoCapture(spec, cv2.CAP_GSTREAMER),
            "GStreamer pipeline",
            model_rate,
            reconnects,
        )
        source.open()
        return source
    if spec.isdigit() or re.fullmatch(r"/dev/video\d+", spec):
        device = int(spec) if spec.isdigit() else spec
        source = LiveSource(
            lambda: _camera_capture(device), f"camera {spec}", model_rate, reconnects
        )
        try:
            source.open()
        except SourceError as e:
            raise SourceError(
                f"camera {spec} does not open (no such device, or it is in use; list cameras with "
                "`ls /dev/video*` or `v4l2-ctl --list-devices`)"
            ) from e
        return source
    scheme = re.match(r"^([A-Za-z][A-Za-z0-9+.-]*)://", spec)
    if scheme:
        name = scheme.group(1).lower()
        if name == "file":
            spec = spec[len("file://") :]
        elif name not in STREAM_SCHEMES:
            raise SourceError(
                f"unsupported URL scheme {name}:// in --source; the recognizer reads "
                f"{', '.join(s + '://' for s in STREAM_SCHEMES)}, files, folders, camera indices and GStreamer "
                "pipelines"
            )
        else:
            probe = _network_capture(spec)
            if not probe.isOpened():
                probe.release()
                raise SourceError(
                    f"{spec} does not open (unreachable, or not a stream FFmpeg can read)"
                )
            count = probe.get(cv2.CAP_PROP_FRAME_COUNT)
            if name in ("http", "https") and 0 < count < 1e7:
                probe.release()
                return FileSource([spec], model_rate, spec, opener=_network_capture)
            captures = [probe]  # the first open is the probe itself

            def opener():
                return captures.pop() if captures else _network_capture(spec)

            source = LiveSource(opener, spec, model_rate, reconnects)
            source.open()
            return source
    if os.path.isdir(spec):
        videos = _video_files(spec)
        if not videos:
            raise SourceError(
                f"folder {spec} holds no video file ({', '.join(decode.VIDEO_EXTENSIONS)})"
            )
        return FileSource(videos, model_rate, spec)
    if not os.path.exists(spec):
        raise SourceError(
            f"--source={spec} does not exist (give a video file, a folder of videos, a camera index such as 0, "
            "an rtsp:// or http(s):// URL, or a GStreamer pipeline)"
        )
    try:
        capture = decode.open_video(spec)
    except ClipUnreadable as e:
        raise SourceError(f"{spec}: {e}") from e
    try:
        if not capture.read()[0]:
            raise SourceError(f"{spec}: no frame decodes (an empty or corrupt video stream)")
    finally:
        capture.release()
    return FileSource([spec], model_rate, spec)
