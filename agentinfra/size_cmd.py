"""``agentinfra size``: does a model fit a GPU instance under vLLM, and how many sequences run at once?

Exit status, as for the other subcommands: 0 it fits (warnings included); 1 it does not fit (the output
names catalog instance types and TP sizes that would); 2 bad input, with one message naming the argument.
"""

from __future__ import annotations

import argparse
from typing import Any

from agentinfra_policies.catalog import load_catalog
from agentinfra_policies.sizing import Dtype, SizingInputError, SizingResult, load_models, size

from .errors import report_input_error

# The codes of agentinfra.cli; not imported from there because cli imports this module.
EXIT_OK, EXIT_NO_FIT = 0, 1

#: Parameters of ``size()`` that come from ``--instance`` rather than from a flag of their own.
_FROM_INSTANCE = {"gpus_per_instance", "gpu_memory_gib"}


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, found {text!r}")
    return value


def _fraction(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = 0.0
    if not 0 < value <= 1:
        raise argparse.ArgumentTypeError(f"expected a fraction in (0, 1], such as 0.90, found {text!r}")
    return value


def register(subparsers: Any) -> None:
    """Add the ``size`` subcommand to the CLI's subparsers."""
    parser = subparsers.add_parser(
        "size",
        help="check that a model's weights, activations and KV cache fit a GPU instance (vLLM)",
        description="Per-GPU memory plan of one vLLM replica: weights / TP, an activation reserve and the KV "
        "cache, against gpu_memory_utilization x GPU memory. Exit 0 fits, 1 does not fit, 2 bad input.",
    )
    parser.add_argument("--model", required=True, metavar="NAME", help="a model from catalog/models.yaml")
    parser.add_argument("--instance", required=True, metavar="TYPE", help="a GPU instance type from the catalog")
    parser.add_argument(
        "--tp", type=_positive_int, metavar="N", help="tensor-parallel size (default: every GPU of the instance)"
    )
    parser.add_argument(
        "--dtype",
        choices=[d.value for d in Dtype],
        default=Dtype.BF16.value,
        help="weight dtype; awq and gptq are 4-bit (default bf16); the KV cache stays 16-bit",
    )
    parser.add_argument(
        "--max-model-len", type=_positive_int, required=True, metavar="N", help="longest sequence, prompt + output"
    )
    parser.add_argument("--max-num-seqs", type=_positive_int, default=256, metavar="N", help="default 256")
    parser.add_argument("--max-num-batched-tokens", type=_positive_int, default=8192, metavar="N", help="default 8192")
    parser.add_argument("--gpu-memory-utilization", type=_fraction, default=0.90, metavar="F", help="default 0.90")
    parser.set_defaults(handler=cmd_size)


def cmd_size(args: argparse.Namespace) -> int:
    models = load_models()
    arch = models.get(args.model)
    if arch is None:
        return _bad_input("--model", f"expected a model from models.yaml ({', '.join(models)}), found {args.model!r}")
    catalog = load_catalog()
    instance = catalog.get(args.instance)
    if instance is None or not instance.has_gpu:
        gpu_types = ", ".join(catalog.names("ec2", gpu=True))
        return _bad_input(
            "--instance", f"expected a GPU instance type from the catalog ({gpu_types}), found {args.instance!r}"
        )
    try:
        result = size(
            arch,
            dtype=args.dtype,
            tp=args.tp or instance.gpus,
            gpu_memory_gib=instance.gpu_memory_gib,
            gpus_per_instance=instance.gpus,
            max_model_len=args.max_model_len,
            max_num_seqs=args.max_num_seqs,
            max_num_batched_tokens=args.max_num_batched_tokens,
            gpu_memory_utilization=args.gpu_memory_utilization,
            catalog=catalog,
        )
    except SizingInputError as exc:
        flag = "--instance" if exc.argument in _FROM_INSTANCE else "--" + exc.argument.replace("_", "-")
        if flag == "--tp" and args.tp is None:
            return _bad_input(flag, f"{exc}: the default is every GPU of {instance.name}; pass a smaller --tp")
        return _bad_input(flag, str(exc))
    header = (
        f"{arch.name} ({arch.hf_repo}) in {result.dtype} on {instance.name} "
        f"({instance.gpus} x {instance.gpu_model} {instance.gpu_memory_gib:.2f} GiB)"
    )
    print(render(result, header))
    return EXIT_OK if result.fits else EXIT_NO_FIT


def render(result: SizingResult, header: str) -> str:
    """The per-GPU table, the verdict and its messages, as plain text."""
    r = result
    replicas = f"{r.replicas_per_instance} replica{'s' if r.replicas_per_instance > 1 else ''} per instance"
    rows = [
        (f"budget ({r.gpu_memory_utilization:.2f} x {r.gpu_memory_gib:.2f} GiB)", r.budget_gib),
        ("weights", r.weights_gib),
        (f"activation reserve ({r.max_num_batched_tokens} batched tokens)", r.activation_reserve_gib),
        (f"KV cache of one {r.max_model_len}-token sequence", r.sequence_kv_gib),
        ("needed to start", r.required_gib),
        ("KV cache pool (budget - weights - activations)", r.kv_pool_gib),
    ]
    width = max(len(label) for label, _ in rows)
    lines = [
        header,
        f"tp {r.tp} ({replicas}), max_model_len {r.max_model_len}, max_num_seqs {r.max_num_seqs}",
        "",
        f"{'per GPU':<{width}}  {'GiB':>8}",
        *(f"{label:<{width}}  {value:>8.2f}" for label, value in rows),
        "",
        f"KV cache per token: {r.kv_cache_bytes_per_token / 1024:.1f} KiB for the model, "
        f"{r.kv_cache_bytes_per_token_per_gpu / 1024:.1f} KiB per GPU",
        f"KV cache tokens per replica: {r.kv_tokens_available:,} "
        f"({r.max_concurrency} sequences of {r.max_model_len} tokens at once)",
        "",
        "result: fits" if r.fits else "result: DOES NOT FIT",
        *(f"warning: {w}" for w in r.warnings),
        *(f"error: {e}" for e in r.errors),
    ]
    return "\n".join(lines)


def _bad_input(flag: str, message: str) -> int:
    return report_input_error(f"{flag}: {message}")
