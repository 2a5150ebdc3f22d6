"""GPU sizing for one vLLM replica: do a model's weights, activations and KV cache fit on a GPU instance?

Every figure is per GPU of a tensor-parallel replica of ``tp`` GPUs, the way vLLM budgets memory:

* budget = ``gpu_memory_utilization`` x GPU memory;
* weights = the replica's weight bytes / tp (see :func:`weight_bytes` for fp8 and 4-bit);
* activation reserve = the peak of vLLM's profiling forward pass (see :func:`activation_reserve_bytes`);
* what is left is the KV cache pool: ``kv_tokens_available`` = pool / KV bytes per token per GPU.

A configuration fits when the pool holds at least one sequence of ``max_model_len`` tokens (vLLM refuses
to start otherwise). Fewer tokens than ``max_num_seqs x max_model_len`` is only a warning: vLLM then
queues or preempts sequences, so the concurrency that really runs is ``kv_tokens_available // max_model_len``.

What the model leaves out: CUDA context, NCCL buffers and CUDA graphs (vLLM counts them against the same
budget, typically 0.5-1.5 GiB per GPU), and the KV cache's block granularity of 16 tokens. GPU memory is
the catalog's nominal figure; the driver reports a little less (an A10G or L4 "24 GiB" shows about 22.5).
"""

from __future__ import annotations

import dataclasses
import enum
import functools
import math
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from agentinfra_policies.catalog import Catalog, load_catalog
from agentinfra_policies.yamlio import safe_load

MODELS_PATH = Path(__file__).with_name("catalog") / "models.yaml"
GIB = 2**30


class Dtype(enum.StrEnum):
    """How the weights are stored."""

    BF16 = "bf16"
    FP16 = "fp16"
    FP8 = "fp8"
    AWQ = "awq"
    """4-bit weights, group size 128."""
    GPTQ = "gptq"
    """4-bit weights, group size 128."""

    @property
    def bytes_per_param(self) -> float:
        return _BYTES_PER_PARAM[self]

    @property
    def is_4bit(self) -> bool:
        return self in (Dtype.AWQ, Dtype.GPTQ)


_BYTES_PER_PARAM = {Dtype.BF16: 2.0, Dtype.FP16: 2.0, Dtype.FP8: 1.0, Dtype.AWQ: 0.5, Dtype.GPTQ: 0.5}

QUANT_4BIT_OVERHEAD = (2 + 0.5) / (128 * 0.5)
"""Scales and zero points of 4-bit weights: per group of 128 weights (64 bytes packed), AWQ and GPTQ keep
an fp16 scale (2 bytes) and a packed 4-bit zero point (0.5 byte), so 2.5 / 64 = +3.9%."""

KV_CACHE_DTYPE_BYTES = 2
"""The KV cache stays in the model's 16-bit dtype for every weight dtype (vLLM's ``kv_cache_dtype=auto``)."""

ACTIVATION_BYTES_PER_TOKEN_PER_HIDDEN = 32
"""Peak activation bytes per batched token per unit of ``hidden_size`` (before TP sharding).

Calibration: the issue measured 1.8-2.3 GiB of activations for a prefill of 16,384 batched tokens of a
7-8B model on an H200. For Llama-3.1-8B, 16,384 x 4,096 x 32 bytes = 2.00 GiB, plus the logits term
below (256 x 128,256 x 4 bytes = 0.12 GiB) gives 2.12 GiB; Qwen2.5-7B gets 1.75 + 0.15 = 1.90 GiB.
"""

LOGITS_BYTES = 4
"""The sampler's logits are float32, one row of ``vocab_size`` per sequence, gathered whole on a GPU."""


class SizingInputError(ValueError):
    """An argument the sizing check cannot use; ``argument`` names the parameter of :func:`size`."""

    def __init__(self, argument: str, message: str) -> None:
        super().__init__(message)
        self.argument = argument


@dataclass(frozen=True)
class ModelArch:
    """The architecture figures of one model, as its Hugging Face ``config.json`` gives them."""

    name: str
    """Our name for the model, e.g. ``Llama-3.1-8B``."""
    hf_repo: str
    """Hugging Face repo id, e.g. ``meta-llama/Llama-3.1-8B``."""
    params: float
    """Total parameter count, embeddings and LM head included."""
    num_layers: int
    """``num_hidden_layers``."""
    num_attention_heads: int
    """Query heads; a tensor-parallel size must divide it."""
    num_kv_heads: int
    """``num_key_value_heads`` (grouped-query attention)."""
    head_dim: int
    """Dimension of one attention head."""
    hidden_size: int
    """Width of the residual stream."""
    vocab_size: int
    """Rows of the embedding and of the LM head."""
    tie_word_embeddings: bool = False
    """True when the LM head shares the input embedding matrix."""

    @property
    def embedding_params(self) -> int:
        """Parameters of the input embedding and the LM head, which quantized checkpoints keep in 16 bits."""
        return self.vocab_size * self.hidden_size * (1 if self.tie_word_embeddings else 2)


@dataclass(frozen=True)
class Alternative:
    """A catalog instance type and TP size on which the same model, dtype and limits fit."""

    instance_type: str
    gpu_model: str
    gpus: int
    """GPUs of the instance."""
    gpu_memory_gib: float
    """Memory of one GPU."""
    tp: int
    """Tensor-parallel size: GPUs per replica."""
    weights_gib: float
    """Weights per GPU."""
    kv_tokens_available: int
    """KV cache tokens one replica holds."""

    def describe(self) -> str:
        replicas = self.gpus // self.tp
        return (
            f"{self.instance_type} with tp {self.tp} ({self.gpus} x {self.gpu_model} {self.gpu_memory_gib:.2f} GiB, "
            f"{replicas} replica{'s' if replicas > 1 else ''} per instance): {self.weights_gib:.2f} GiB of weights "
            f"per GPU, KV cache for {self.kv_tokens_available:,} tokens per replica"
        )


@dataclass(frozen=True)
class SizingResult:
    """The per-GPU memory plan of one replica; ``fits`` is the verdict, ``errors`` and ``warnings`` say why."""

    model: str
    dtype: Dtype
    tp: int
    gpus_per_instance: int
    gpu_memory_gib: float
    max_model_len: int
    max_num_seqs: int
    max_num_batched_tokens: int
    gpu_memory_utilization: float
    weights_gib: float
    """Weights per GPU."""
    activation_reserve_gib: float
    """Activation reserve per GPU."""
    kv_cache_bytes_per_token: int
    """KV cache bytes per token for the whole model (all layers, all KV heads)."""
    kv_cache_bytes_per_token_per_gpu: int
    """KV cache bytes per token on one GPU of the replica."""
    budget_gib: float
    """``gpu_memory_utilization`` x GPU memory."""
    kv_tokens_available: int
    """Tokens the KV cache pool of one replica holds (0 when weights and activations exceed the budget)."""
    fits: bool
    """Weights + activation reserve + the KV cache of one ``max_model_len`` sequence fit in the budget."""
    errors: tuple[str, ...] = ()
    warnings: tuple[str, ...] = ()
    alternatives: tuple[Alternative, ...] = ()
    """When it does not fit: catalog instance types and TP sizes that would, smallest GPU memory first."""

    @property
    def sequence_kv_gib(self) -> float:
        """KV cache per GPU of one sequence of ``max_model_len`` tokens."""
        return self.kv_cache_bytes_per_token_per_gpu * self.max_model_len / GIB

    @property
    def required_gib(self) -> float:
        return self.weights_gib + self.activation_reserve_gib + self.sequence_kv_gib

    @property
    def kv_pool_gib(self) -> float:
        """What the budget leaves for the KV cache once weights and activations are placed (may be negative)."""
        return self.budget_gib - self.weights_gib - self.activation_reserve_gib

    @property
    def max_concurrency(self) -> int:
        """Sequences of ``max_model_len`` tokens whose KV cache fits at once."""
        return self.kv_tokens_available // self.max_model_len

    @property
    def replicas_per_instance(self) -> int:
        return self.gpus_per_instance // self.tp


def parse_models(raw: Mapping[str, Any]) -> dict[str, ModelArch]:
    models: dict[str, ModelArch] = {}
    for name, spec in (raw.get("models") or {}).items():
        ints = {k: int(v) for k, v in spec.items() if k not in ("hf_repo", "params", "tie_word_embeddings")}
        models[name] = ModelArch(
            name=name,
            hf_repo=str(spec["hf_repo"]),
            params=float(spec["params"]),  # YAML 1.1 reads 8.03e9 (no exponent sign) as text
            tie_word_embeddings=bool(spec.get("tie_word_embeddings", False)),
            **ints,
        )
    return models


@functools.cache
def load_models(path: Path = MODELS_PATH) -> dict[str, ModelArch]:
    """Read ``models.yaml`` once per process. Treat the result as read-only: it is shared."""
    with open(path, encoding="utf-8") as fh:
        return parse_models(safe_load(fh))


def get_model(name: str) -> ModelArch | None:
    return load_models().get(name)


def weight_bytes(arch: ModelArch, dtype: Dtype) -> float:
    """Weight bytes of the whole model.

    bf16/fp16: 2 bytes per parameter. fp8 and 4-bit checkpoints (and vLLM's online fp8) quantize the
    linear layers of the transformer blocks only: the embedding and LM head stay in 16 bits, which is
    most of the difference between ``params x 0.5`` and a real 4-bit checkpoint's size. 4-bit weights
    also carry :data:`QUANT_4BIT_OVERHEAD` for scales and zero points.
    """
    if dtype.bytes_per_param == 2:
        return arch.params * 2
    per_param = dtype.bytes_per_param * (1 + QUANT_4BIT_OVERHEAD if dtype.is_4bit else 1)
    return arch.embedding_params * 2 + (arch.params - arch.embedding_params) * per_param


def kv_cache_bytes_per_token(arch: ModelArch, tp: int = 1) -> int:
    """K and V of every layer for one token, on one GPU of a ``tp``-way replica.

    Each GPU holds ``num_kv_heads / tp`` KV heads; when tp exceeds the KV heads vLLM replicates them, so a
    GPU never holds fewer than one.
    """
    heads_per_gpu = max(1, arch.num_kv_heads // tp)
    return 2 * arch.num_layers * heads_per_gpu * arch.head_dim * KV_CACHE_DTYPE_BYTES


def activation_reserve_bytes(arch: ModelArch, *, tp: int, max_num_batched_tokens: int, max_num_seqs: int) -> float:
    """Peak activations per GPU while vLLM profiles a batch of ``max_num_batched_tokens`` tokens.

    ``max_num_batched_tokens x hidden_size x 32 bytes / tp`` for the forward pass, plus the float32
    logits of at most ``max_num_seqs`` sequences (``x vocab_size x 4 bytes``, not sharded). See
    :data:`ACTIVATION_BYTES_PER_TOKEN_PER_HIDDEN` for the calibration.
    """
    forward = max_num_batched_tokens * arch.hidden_size * ACTIVATION_BYTES_PER_TOKEN_PER_HIDDEN / tp
    logits = min(max_num_seqs, max_num_batched_tokens) * arch.vocab_size * LOGITS_BYTES
    return forward + logits


def valid_tp_sizes(arch: ModelArch, gpus: int) -> tuple[int, ...]:
    """TP sizes vLLM accepts for this model on ``gpus`` GPUs, ascending.

    A TP size must divide the instance's GPUs (a replica never spans instances here), the attention heads,
    and either divide the KV heads or be a multiple of them.
    """
    return tuple(
        tp
        for tp in range(1, gpus + 1)
        if gpus % tp == 0
        and arch.num_attention_heads % tp == 0
        and (arch.num_kv_heads % tp == 0 or tp % arch.num_kv_heads == 0)
    )


def size(
    arch: ModelArch,
    *,
    dtype: Dtype | str,
    tp: int,
    gpu_memory_gib: float,
    gpus_per_instance: int,
    max_model_len: int,
    max_num_seqs: int = 256,
    max_num_batched_tokens: int = 8192,
    gpu_memory_utilization: float = 0.90,
    catalog: Catalog | None = None,
) -> SizingResult:
    """Size one replica of ``arch`` on ``tp`` GPUs of ``gpu_memory_gib`` each; see the module docstring.

    Raises :class:`SizingInputError` for values no deployment could use (a TP size the GPU count or the
    model's heads do not allow, a non-positive length, a utilization outside (0, 1]). When the model does
    not fit, the result lists ``alternatives`` from ``catalog`` (default: the shipped instance catalog).
    """
    dtype = _dtype(dtype)
    limits = _limits(max_model_len, max_num_seqs, max_num_batched_tokens, gpu_memory_utilization)
    _validate_gpus(arch, tp, gpu_memory_gib, gpus_per_instance)
    result = _plan(arch, dtype, tp, gpu_memory_gib, gpus_per_instance, limits)
    if result.fits:
        return result
    found = _alternatives(arch, dtype, limits, catalog or load_catalog(), limit=5)
    errors = (*result.errors, _alternatives_message(found, dtype, limits))
    return dataclasses.replace(result, errors=errors, alternatives=found)


@dataclass(frozen=True)
class _Limits:
    max_model_len: int
    max_num_seqs: int
    max_num_batched_tokens: int
    gpu_memory_utilization: float


def alternatives(
    arch: ModelArch,
    *,
    dtype: Dtype | str,
    max_model_len: int,
    max_num_seqs: int = 256,
    max_num_batched_tokens: int = 8192,
    gpu_memory_utilization: float = 0.90,
    catalog: Catalog | None = None,
    limit: int = 5,
) -> tuple[Alternative, ...]:
    """Up to ``limit`` catalog GPU instance types, each with the smallest TP size on which the model fits.

    Ordered by the instance's total GPU memory, then TP size, then vCPUs. Instance types with the same GPUs
    (g5.12xlarge and g5.24xlarge) appear once, as the one with the fewest vCPUs.
    """
    limits = _limits(max_model_len, max_num_seqs, max_num_batched_tokens, gpu_memory_utilization)
    return _alternatives(arch, _dtype(dtype), limits, catalog or load_catalog(), limit)


def _alternatives(
    arch: ModelArch, dtype: Dtype, limits: _Limits, catalog: Catalog, limit: int
) -> tuple[Alternative, ...]:
    candidates: list[tuple[tuple[float, int, int, str], Alternative]] = []
    for spec in (catalog.get(name) for name in catalog.names("ec2", gpu=True)):
        assert spec is not None
        plans = (
            _plan(arch, dtype, tp, spec.gpu_memory_gib, spec.gpus, limits) for tp in valid_tp_sizes(arch, spec.gpus)
        )
        plan = next((p for p in plans if p.fits), None)
        if plan is not None:
            key = (spec.total_gpu_memory_gib, plan.tp, spec.vcpu, spec.name)
            candidates.append((key, _alternative(spec.name, spec.gpu_model or "GPU", plan)))
    found: dict[tuple[int, str, float], Alternative] = {}
    for _, alt in sorted(candidates, key=lambda c: c[0]):
        found.setdefault((alt.gpus, alt.gpu_model, alt.gpu_memory_gib), alt)
    return tuple(found.values())[:limit]


def _alternative(instance_type: str, gpu_model: str, plan: SizingResult) -> Alternative:
    return Alternative(
        instance_type=instance_type,
        gpu_model=gpu_model,
        gpus=plan.gpus_per_instance,
        gpu_memory_gib=plan.gpu_memory_gib,
        tp=plan.tp,
        weights_gib=plan.weights_gib,
        kv_tokens_available=plan.kv_tokens_available,
    )


def _plan(
    arch: ModelArch, dtype: Dtype, tp: int, gpu_memory_gib: float, gpus_per_instance: int, limits: _Limits
) -> SizingResult:
    weights = weight_bytes(arch, dtype) / tp
    activations = activation_reserve_bytes(
        arch, tp=tp, max_num_batched_tokens=limits.max_num_batched_tokens, max_num_seqs=limits.max_num_seqs
    )
    kv_per_gpu = kv_cache_bytes_per_token(arch, tp)
    budget = limits.gpu_memory_utilization * gpu_memory_gib * GIB
    pool = budget - weights - activations
    result = SizingResult(
        model=arch.name,
        dtype=dtype,
        tp=tp,
        gpus_per_instance=gpus_per_instance,
        gpu_memory_gib=gpu_memory_gib,
        max_model_len=limits.max_model_len,
        max_num_seqs=limits.max_num_seqs,
        max_num_batched_tokens=limits.max_num_batched_tokens,
        gpu_memory_utilization=limits.gpu_memory_utilization,
        weights_gib=weights / GIB,
        activation_reserve_gib=activations / GIB,
        kv_cache_bytes_per_token=kv_cache_bytes_per_token(arch),
        kv_cache_bytes_per_token_per_gpu=kv_per_gpu,
        budget_gib=budget / GIB,
        kv_tokens_available=max(0, math.floor(pool / kv_per_gpu)),
        fits=weights + activations + kv_per_gpu * limits.max_model_len <= budget,
    )
    if not result.fits:
        return dataclasses.replace(result, errors=(_too_big_message(result), _weights_message(arch)))
    wanted = limits.max_num_seqs * limits.max_model_len
    if result.kv_tokens_available < wanted:
        return dataclasses.replace(result, warnings=(_concurrency_message(result, wanted),))
    return result


def _too_big_message(r: SizingResult) -> str:
    return (
        f"{r.model} in {r.dtype} does not fit on {r.gpu_memory_gib:.2f} GiB GPUs with tp {r.tp}: per GPU, "
        f"weights {r.weights_gib:.2f} GiB + activation reserve {r.activation_reserve_gib:.2f} GiB + KV cache "
        f"of one {r.max_model_len}-token sequence {r.sequence_kv_gib:.2f} GiB = {r.required_gib:.2f} GiB, over the "
        f"budget of {r.budget_gib:.2f} GiB ({r.gpu_memory_utilization:.2f} x {r.gpu_memory_gib:.2f} GiB)"
    )


def _weights_message(arch: ModelArch) -> str:
    bf16, fp8, q4 = (weight_bytes(arch, d) / GIB for d in (Dtype.BF16, Dtype.FP8, Dtype.AWQ))
    return (
        f"{arch.name} has {arch.params / 1e9:.1f}B parameters: its weights alone need {bf16:.2f} GiB in bf16/fp16, "
        f"{fp8:.2f} GiB in fp8 and {q4:.2f} GiB at 4 bits (awq/gptq), before any KV cache, "
        f"shared across the tp GPUs of a replica"
    )


def _concurrency_message(r: SizingResult, wanted: int) -> str:
    return (
        f"the KV cache pool ({r.kv_pool_gib:.2f} GiB per GPU) holds {r.kv_tokens_available:,} tokens per replica, "
        f"fewer than max_num_seqs x max_model_len = {r.max_num_seqs} x {r.max_model_len} = {wanted:,}: at most "
        f"{r.max_concurrency} sequences of {r.max_model_len} tokens run at once and vLLM queues or preempts the "
        f"rest; lower max_num_seqs to {r.max_concurrency} or add replicas"
    )


def _alternatives_message(found: tuple[Alternative, ...], dtype: Dtype, limits: _Limits) -> str:
    if not found:
        return (
            f"no GPU instance type in the catalog fits it in {dtype} with max_model_len {limits.max_model_len}; "
            f"use a smaller dtype (fp8, awq, gptq) or a shorter max_model_len"
        )
    return f"would fit in {dtype} with the same limits: " + "; ".join(alt.describe() for alt in found)


def _dtype(value: Dtype | str) -> Dtype:
    try:
        return Dtype(value)
    except ValueError:
        choices = ", ".join(d.value for d in Dtype)
        raise SizingInputError("dtype", f"expected one of {choices}, found {value!r}") from None


def _limits(max_model_len: int, max_num_seqs: int, max_num_batched_tokens: int, utilization: float) -> _Limits:
    for argument, value in (
        ("max_model_len", max_model_len),
        ("max_num_seqs", max_num_seqs),
        ("max_num_batched_tokens", max_num_batched_tokens),
    ):
        if value < 1:
            raise SizingInputError(argument, f"expected a positive integer, found {value}")
    if not 0 < utilization <= 1:
        raise SizingInputError("gpu_memory_utilization", f"expected a fraction in (0, 1], found {utilization}")
    return _Limits(max_model_len, max_num_seqs, max_num_batched_tokens, utilization)


def _validate_gpus(arch: ModelArch, tp: int, gpu_memory_gib: float, gpus: int) -> None:
    if gpus < 1:
        raise SizingInputError("gpus_per_instance", f"expected a positive integer, found {gpus}")
    if gpu_memory_gib <= 0:
        raise SizingInputError("gpu_memory_gib", f"expected a positive GPU memory in GiB, found {gpu_memory_gib}")
    allowed = valid_tp_sizes(arch, gpus)
    if tp not in allowed:
        raise SizingInputError(
            "tp",
            f"expected a tensor-parallel size that divides the instance's {gpus} GPU{'s' if gpus > 1 else ''} and "
            f"{arch.name}'s {arch.num_attention_heads} attention heads and {arch.num_kv_heads} KV heads "
            f"({', '.join(map(str, allowed))}), found {tp}",
        )


__all__ = [
    "Alternative",
    "Dtype",
    "ModelArch",
    "SizingInputError",
    "SizingResult",
    "activation_reserve_bytes",
    "alternatives",
    "get_model",
    "kv_cache_bytes_per_token",
    "load_models",
    "size",
    "valid_tp_sizes",
    "weight_bytes",
]
