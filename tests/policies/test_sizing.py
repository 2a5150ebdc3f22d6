"""GPU sizing: hand-computed weights, KV cache and activation figures, the fit verdict and its messages."""

from __future__ import annotations

import math
from typing import Any

import pytest
from agentinfra_policies.catalog import load_catalog
from agentinfra_policies.sizing import (
    Dtype,
    ModelArch,
    SizingInputError,
    activation_reserve_bytes,
    get_model,
    kv_cache_bytes_per_token,
    load_models,
    size,
    valid_tp_sizes,
    weight_bytes,
)

GIB = 2**30
DEFAULTS: dict[str, Any] = {"max_model_len": 8192, "max_num_seqs": 256, "max_num_batched_tokens": 8192}


def model(name: str) -> ModelArch:
    arch = get_model(name)
    assert arch is not None, name
    return arch


def size_on(name: str, instance: str, *, dtype: str = "bf16", tp: int | None = None, **limits: Any) -> Any:
    """Size a catalog model on a catalog instance, defaulting to every GPU of the instance."""
    spec = load_catalog().get(instance)
    assert spec is not None, instance
    return size(
        model(name),
        dtype=dtype,
        tp=tp or spec.gpus,
        gpu_memory_gib=spec.gpu_memory_gib,
        gpus_per_instance=spec.gpus,
        **{**DEFAULTS, **limits},
    )


# --- the model table -------------------------------------------------------------------------------


def test_models_yaml_holds_the_published_architectures() -> None:
    models = load_models()
    assert {"Llama-3.1-8B", "Llama-3.1-70B", "Qwen2.5-7B", "Mistral-7B-v0.3", "Qwen2.5-72B"} <= set(models)
    assert model("Llama-3.1-8B") == ModelArch(
        name="Llama-3.1-8B",
        hf_repo="meta-llama/Llama-3.1-8B",
        params=8.03e9,
        num_layers=32,
        num_attention_heads=32,
        num_kv_heads=8,
        head_dim=128,
        hidden_size=4096,
        vocab_size=128256,
    )
    for arch in models.values():
        assert arch.num_attention_heads * arch.head_dim == arch.hidden_size, arch.name
        assert arch.num_attention_heads % arch.num_kv_heads == 0, arch.name
        assert arch.hf_repo.count("/") == 1, arch.name


def test_get_model_returns_none_for_an_unknown_name() -> None:
    assert get_model("GPT-5") is None


# --- hand-computed ground truth --------------------------------------------------------------------


def test_llama_3_1_8b_bf16_weights_and_kv_cache() -> None:
    arch = model("Llama-3.1-8B")
    assert weight_bytes(arch, Dtype.BF16) / GIB == pytest.approx(8.03e9 * 2 / 2**30)  # 14.957 GiB
    assert weight_bytes(arch, Dtype.BF16) / GIB == pytest.approx(14.96, abs=0.005)
    assert kv_cache_bytes_per_token(arch) == 2 * 32 * 8 * 128 * 2 == 131072 == 128 * 1024  # K and V, 128 KiB


def test_qwen2_5_7b_bf16_weights_and_kv_cache() -> None:
    arch = model("Qwen2.5-7B")
    # 14.19 GiB of parameters; the issue measured 14.23 GiB in vLLM, the rest being non-parameter buffers.
    assert weight_bytes(arch, Dtype.BF16) / GIB == pytest.approx(7.62e9 * 2 / 2**30)
    assert weight_bytes(arch, Dtype.BF16) / GIB == pytest.approx(14.19, abs=0.005)
    assert kv_cache_bytes_per_token(arch) == 2 * 28 * 4 * 128 * 2 == 57344 == 56 * 1024  # 56 KiB


def test_tensor_parallelism_splits_weights_and_kv_cache_per_gpu() -> None:
    result = size_on("Qwen2.5-7B", "g6e.12xlarge", tp=2)
    assert result.weights_gib == pytest.approx(7.62e9 * 2 / 2 / 2**30)  # 7.10 GiB on each of 2 GPUs
    assert result.kv_cache_bytes_per_token == 57344
    assert result.kv_cache_bytes_per_token_per_gpu == 2 * 28 * (4 // 2) * 128 * 2 == 28672


def test_kv_heads_are_replicated_when_tp_exceeds_them() -> None:
    arch = ModelArch(
        "toy",
        "x/toy",
        1e9,
        num_layers=10,
        num_attention_heads=16,
        num_kv_heads=2,
        head_dim=64,
        hidden_size=1024,
        vocab_size=1000,
    )
    assert kv_cache_bytes_per_token(arch, tp=2) == 2 * 10 * 1 * 64 * 2
    assert kv_cache_bytes_per_token(arch, tp=8) == 2 * 10 * 1 * 64 * 2  # each GPU still holds one KV head
    assert valid_tp_sizes(arch, 8) == (1, 2, 4, 8)


def test_fp8_and_4bit_quantize_the_blocks_but_keep_embeddings_in_16_bits() -> None:
    arch = model("Llama-3.1-8B")
    embeddings = 2 * 128256 * 4096  # input embedding + untied LM head, kept in bf16
    blocks = 8.03e9 - embeddings
    assert weight_bytes(arch, Dtype.FP8) == pytest.approx(embeddings * 2 + blocks * 1)  # 8.46 GiB
    # 4 bits = 0.5 byte, plus an fp16 scale and a 4-bit zero per group of 128 weights: 2.5 / 64 = +3.9%.
    assert weight_bytes(arch, Dtype.AWQ) == pytest.approx(embeddings * 2 + blocks * 0.5 * (1 + 2.5 / 64))
    assert weight_bytes(arch, Dtype.GPTQ) == weight_bytes(arch, Dtype.AWQ)
    assert weight_bytes(arch, Dtype.FP16) == weight_bytes(arch, Dtype.BF16)


def test_70b_weights_are_130_gib_in_bf16_and_35_to_40_gib_at_4_bits() -> None:
    arch = model("Llama-3.1-70B")
    embeddings = 2 * 128256 * 8192
    bf16 = 70.6e9 * 2 / GIB
    four_bit = (embeddings * 2 + (70.6e9 - embeddings) * 0.5 * (1 + 2.5 / 64)) / GIB
    assert weight_bytes(arch, Dtype.BF16) / GIB == pytest.approx(bf16) == pytest.approx(131.50, abs=0.005)
    assert weight_bytes(arch, Dtype.AWQ) / GIB == pytest.approx(four_bit) == pytest.approx(37.06, abs=0.005)
    assert 35 <= four_bit <= 40


def test_activation_reserve_is_calibrated_on_the_measured_16k_token_prefill() -> None:
    # Issue measurement: 16,384 batched tokens took 1.8-2.3 GiB of activations for 7-8B models.
    llama = activation_reserve_bytes(model("Llama-3.1-8B"), tp=1, max_num_batched_tokens=16384, max_num_seqs=256)
    assert llama == 16384 * 4096 * 32 + 256 * 128256 * 4  # forward pass + float32 logits of 256 sequences
    assert llama / GIB == pytest.approx(2.12, abs=0.005)
    qwen = activation_reserve_bytes(model("Qwen2.5-7B"), tp=1, max_num_batched_tokens=16384, max_num_seqs=256)
    assert qwen == 16384 * 3584 * 32 + 256 * 152064 * 4
    assert 1.8 <= qwen / GIB <= 2.3
    halved = activation_reserve_bytes(model("Llama-3.1-8B"), tp=2, max_num_batched_tokens=16384, max_num_seqs=256)
    assert halved == 16384 * 4096 * 32 / 2 + 256 * 128256 * 4  # the forward pass shards, the logits do not


# --- the verdict -----------------------------------------------------------------------------------


def test_llama_8b_fits_one_l40s_with_the_concurrency_it_can_hold() -> None:
    result = size_on("Llama-3.1-8B", "g6e.xlarge")
    budget = 0.90 * 48 * GIB
    weights = 8.03e9 * 2
    activations = 8192 * 4096 * 32 + 256 * 128256 * 4
    tokens = math.floor((budget - weights - activations) / 131072)
    assert result.fits
    assert result.budget_gib == pytest.approx(43.20)
    assert result.activation_reserve_gib == pytest.approx(activations / GIB)  # 1.12 GiB
    assert result.sequence_kv_gib == pytest.approx(8192 * 131072 / GIB) == 1.0
    assert result.kv_tokens_available == tokens == 222172
    assert result.max_concurrency == tokens // 8192 == 27
    assert result.errors == ()
    (warning,) = result.warnings
    assert (
        "holds 222,172 tokens per replica, fewer than max_num_seqs x max_model_len = 256 x 8192 = 2,097,152" in warning
    )
    assert "at most 27 sequences of 8192 tokens run at once" in warning
    assert "(27.12 GiB per GPU)" in warning


def test_no_warning_when_every_sequence_fits() -> None:
    result = size_on("Llama-3.1-8B", "g6e.xlarge", max_num_seqs=16)
    assert result.fits and result.warnings == () and result.errors == ()


@pytest.mark.parametrize("instance", ["g5.xlarge", "g6.xlarge"])
def test_70b_in_bf16_does_not_fit_one_24_gib_gpu(instance: str) -> None:
    result = size_on("Llama-3.1-70B", instance)
    assert not result.fits
    assert result.weights_gib == pytest.approx(131.50, abs=0.005)
    assert result.kv_tokens_available == 0
    too_big, weights, _ = result.errors
    assert too_big.startswith("Llama-3.1-70B in bf16 does not fit on 24.00 GiB GPUs with tp 1: per GPU, weights 131.50")
    assert "over the budget of 21.60 GiB (0.90 x 24.00 GiB)" in too_big
    assert "weights alone need 131.50 GiB in bf16/fp16, 67.71 GiB in fp8 and 37.06 GiB at 4 bits" in weights
    assert "before any KV cache" in weights


@pytest.mark.parametrize(("instance", "dtype"), [("g5.xlarge", "awq"), ("g6.xlarge", "gptq")])
def test_70b_at_4_bits_does_not_fit_one_24_gib_gpu_either(instance: str, dtype: str) -> None:
    result = size_on("Llama-3.1-70B", instance, dtype=dtype)
    assert not result.fits
    assert result.weights_gib == pytest.approx(37.06, abs=0.005)
    assert f"in {dtype} does not fit on 24.00 GiB GPUs with tp 1: per GPU, weights 37.06 GiB" in result.errors[0]


def test_70b_in_bf16_fits_a_p5_with_tp_8() -> None:
    result = size_on("Llama-3.1-70B", "p5.48xlarge", tp=8)
    kv_per_gpu = 2 * 80 * (8 // 8) * 128 * 2  # 40 KiB
    weights = 70.6e9 * 2 / 8
    activations = 8192 * 8192 * 32 / 8 + 256 * 128256 * 4
    assert result.fits and result.errors == ()
    assert result.weights_gib == pytest.approx(weights / GIB) == pytest.approx(16.44, abs=0.005)
    assert result.kv_cache_bytes_per_token_per_gpu == kv_per_gpu == 40960
    assert result.kv_tokens_available == math.floor((0.90 * 80 * GIB - weights - activations) / kv_per_gpu)


def test_70b_at_4_bits_fits_a_g6e_12xlarge_with_tp_4() -> None:
    result = size_on("Llama-3.1-70B", "g6e.12xlarge", dtype="awq", tp=4)
    embeddings = 2 * 128256 * 8192
    weights = (embeddings * 2 + (70.6e9 - embeddings) * 0.5 * (1 + 2.5 / 64)) / 4
    activations = 8192 * 8192 * 32 / 4 + 256 * 128256 * 4
    kv_per_gpu = 2 * 80 * (8 // 4) * 128 * 2
    assert result.fits
    assert result.weights_gib == pytest.approx(weights / GIB) == pytest.approx(9.26, abs=0.005)
    assert result.kv_tokens_available == math.floor((0.90 * 48 * GIB - weights - activations) / kv_per_gpu)


def test_not_fitting_names_instances_and_tp_sizes_that_would() -> None:
    result = size_on("Llama-3.1-70B", "g5.xlarge")
    found = [(a.instance_type, a.tp) for a in result.alternatives]
    # 4 x L40S and 8 x 24 GiB all total 192 GiB; the smaller TP size comes first.
    assert found[:3] == [("g6e.12xlarge", 4), ("g5.48xlarge", 8), ("g6.48xlarge", 8)]
    assert 1 <= len(found) <= 5
    catalog = load_catalog()
    totals = [catalog.get(name).total_gpu_memory_gib for name, _ in found]  # type: ignore[union-attr]
    assert totals == sorted(totals)
    for name, tp in found:
        assert size_on("Llama-3.1-70B", name, tp=tp).fits, (name, tp)
    assert result.errors[-1].startswith("would fit in bf16 with the same limits: g6e.12xlarge with tp 4 (4 x L40S")
    assert "32.88 GiB of weights per GPU" in result.errors[-1]


def test_alternatives_list_each_gpu_configuration_once() -> None:
    result = size_on("Llama-3.1-70B", "g6.xlarge", dtype="awq")
    configs = [(a.gpus, a.gpu_model, a.gpu_memory_gib) for a in result.alternatives]
    assert len(configs) == len(set(configs))
    assert result.alternatives[0].instance_type == "g6e.xlarge"  # 37.06 GiB fits one 48 GiB L40S


def test_nothing_in_the_catalog_fits_says_so() -> None:
    result = size_on("Llama-3.1-70B", "p5e.48xlarge", max_model_len=4_000_000)  # 152 GiB of KV per GPU
    assert not result.fits
    assert result.alternatives == ()
    assert result.errors[-1].startswith("no GPU instance type in the catalog fits it in bf16 with max_model_len")


# --- bad input -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "instance", "tp", "message"),
    [
        ("Llama-3.1-70B", "p5.48xlarge", 3, r"divides the instance's 8 GPUs .* \(1, 2, 4, 8\), found 3"),
        ("Llama-3.1-70B", "p5.48xlarge", 16, r"found 16"),
        ("Qwen2.5-7B", "p5.48xlarge", 8, r"Qwen2.5-7B's 28 attention heads and 4 KV heads \(1, 2, 4\), found 8"),
    ],
)
def test_tp_the_instance_or_the_model_cannot_take(name: str, instance: str, tp: int, message: str) -> None:
    with pytest.raises(SizingInputError, match=message) as info:
        size_on(name, instance, tp=tp)
    assert info.value.argument == "tp"


@pytest.mark.parametrize(
    ("change", "argument", "message"),
    [
        ({"dtype": "int3"}, "dtype", "expected one of bf16, fp16, fp8, awq, gptq, found 'int3'"),
        ({"max_model_len": 0}, "max_model_len", "expected a positive integer, found 0"),
        ({"max_num_seqs": -1}, "max_num_seqs", "expected a positive integer, found -1"),
        ({"max_num_batched_tokens": 0}, "max_num_batched_tokens", "expected a positive integer, found 0"),
        ({"gpu_memory_utilization": 0.0}, "gpu_memory_utilization", r"expected a fraction in \(0, 1\], found 0.0"),
        ({"gpu_memory_utilization": 1.5}, "gpu_memory_utilization", r"expected a fraction in \(0, 1\], found 1.5"),
        ({"gpu_memory_gib": 0}, "gpu_memory_gib", "expected a positive GPU memory in GiB, found 0"),
    ],
)
def test_unusable_arguments(change: dict[str, Any], argument: str, message: str) -> None:
    kwargs: dict[str, Any] = {"dtype": "bf16", "tp": 1, "gpu_memory_gib": 48, "gpus_per_instance": 1, **DEFAULTS}
    with pytest.raises(SizingInputError, match=message) as info:
        size(model("Llama-3.1-8B"), **{**kwargs, **change})
    assert info.value.argument == argument
