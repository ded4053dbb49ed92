"""The serving engine: an exported model in ONNX Runtime, images prepared with PIL and numpy.

Nothing here imports torch, torchvision, timm or towhee: a worker, the API, ``lookalike search`` and
the dashboard that run it start in about a second and hold a few hundred MB, where torch alone took
half a gigabyte (issue 20). The graph and its preprocessing come from one export
(``lookalike.exported``): the data config recorded there rebuilds timm's transform
(``lookalike.preprocess``), and the tag recorded there is the index's tag. A CLIP model's export
also carries its text tower and vocabulary (``text``: search by words, still without torch).
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Any

import numpy as np
from PIL import Image

from lookalike.exported import Exported, ModelLoadError
from lookalike.preprocess import BoundedTransform, decode_size
from lookalike.rows import ModelTag
from lookalike.text_tower import TextTower, normalised

# Images per forward pass. ONNX Runtime plans one buffer for a pass's activations and keeps it: passes
# of 4 peak 39 MB lower than passes of 8 (mobilenetv2, 224 px) for the same CPU per image on 2 cores
# (12.6-13.9 ms against 13.2-13.7, interleaved runs); more than 8 spill out of the caches.
CPU_STEP = 4


class OnnxRunner:
    """An exported graph in ONNX Runtime's CPU provider, with ``threads`` intra-op threads: a float32
    batch ``(n, 3, h, w)`` in, raw features ``(n, dim)`` out."""

    name = "onnx"

    def __init__(self, path: Any, threads: int) -> None:
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.log_severity_level = 3  # warnings about unused initialisers are noise here
        # idle pool threads would otherwise spin after every run, taking the cores that decode
        # threads and the local servers share on a small machine
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        self.session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        graph_input = self.session.get_inputs()[0]
        self.input = graph_input.name
        # images are float32; a text tower reads token ids (int64)
        self.dtype = np.int64 if graph_input.type == "tensor(int64)" else np.float32

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        x = np.ascontiguousarray(batch, dtype=self.dtype)
        return np.asarray(self.session.run(None, {self.input: x})[0])


def text_tower(exported: Exported, runner: OnnxRunner) -> TextTower:
    """The exported text tower of a CLIP model, read with the vocabulary the export carries."""
    from lookalike.clip_tokenizer import ClipTokenizer  # ftfy and regex: only where words are read

    vocab = exported.vocab_path
    assert vocab is not None, "an image-only export has no text tower"
    tokenizer = ClipTokenizer(vocab, int(exported.text["context_length"]), exported.model)
    return TextTower(tokenizer, runner, exported.dim)


class OnnxEngine:
    """One loaded export: ``prepare`` per image (thread-safe), ``embed_prepared`` per batch."""

    name = "onnx"

    def __init__(self, exported: Exported, threads: int, draft_decode: bool, infer_batch: int = 0) -> None:
        self.exported = exported
        self.transform = BoundedTransform.from_config(exported.data_config)
        if not self.transform.bounded:
            raise ModelLoadError(
                f"{exported.model}'s preprocessing ({exported.data_config}) cannot run without torch; "
                "serve it with LOOKALIKE_RUNTIME=torch"
            )
        try:
            self.runner = OnnxRunner(exported.path, threads)
        except Exception as exc:  # onnxruntime raises its own exception types for a bad graph
            raise ModelLoadError(f"ONNX Runtime cannot load {exported.path}: {type(exc).__name__}: {exc}") from exc
        self.tag: ModelTag = exported.tag
        self.decode_size = decode_size(exported.data_config, draft_decode)
        self.step = infer_batch or CPU_STEP
        self._lock = threading.Lock()
        self._threads = threads
        self._text: TextTower | None = None

    @property
    def has_text(self) -> bool:
        """Whether the export carries a text tower (a CLIP model's), loaded or not."""
        return self.exported.text_path is not None

    @property
    def text(self) -> TextTower | None:
        """The text tower, loaded at its first use: a worker embeds images only and never pays for
        it (a CLIP text graph is as large as its image graph). Raises ``ModelLoadError``."""
        path = self.exported.text_path
        if path is None:
            return None
        with self._lock:
            if self._text is None:
                try:
                    self._text = text_tower(self.exported, OnnxRunner(path, self._threads))
                except Exception as exc:  # onnxruntime's own types, as for the image graph
                    raise ModelLoadError(f"cannot load {path}: {type(exc).__name__}: {exc}") from exc
            return self._text

    def prepare(self, image: Image.Image) -> np.ndarray:
        return self.transform(image)

    def embed_prepared(self, batch: Sequence[Any]) -> np.ndarray:
        out = []
        with self._lock:  # one model call at a time: it already uses every core
            for i in range(0, len(batch), self.step):
                out.append(normalised(self.runner(np.stack(batch[i : i + self.step]))))
        return np.concatenate(out) if out else np.zeros((0, self.tag.dim), dtype=np.float32)
