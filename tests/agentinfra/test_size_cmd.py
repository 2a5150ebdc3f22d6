"""``agentinfra size``: the per-GPU table, exit 0 when it fits, 1 when it does not, 2 for bad input."""

from __future__ import annotations

import argparse

import pytest

from agentinfra.size_cmd import register


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    parser = argparse.ArgumentParser(prog="agentinfra")
    register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["size", *argv])
    code = args.handler(args)
    out, err = capsys.readouterr()
    return code, out, err


def test_fits_prints_the_per_gpu_table(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "--model", "Llama-3.1-8B", "--instance", "g6e.xlarge", "--max-model-len", "8192")
    assert code == 0 and err == ""
    assert "Llama-3.1-8B (meta-llama/Llama-3.1-8B) in bf16 on g6e.xlarge (1 x L40S 48.00 GiB)" in out
    assert "tp 1 (1 replica per instance), max_model_len 8192, max_num_seqs 256" in out
    for label, gib in [
        ("budget (0.90 x 48.00 GiB)", "43.20"),
        ("weights", "14.96"),
        ("activation reserve (8192 batched tokens)", "1.12"),
        ("KV cache of one 8192-token sequence", "1.00"),
        ("KV cache pool (budget - weights - activations)", "27.12"),
    ]:
        assert any(line.startswith(label) and line.endswith(f" {gib}") for line in out.splitlines()), label
    assert "KV cache per token: 128.0 KiB for the model, 128.0 KiB per GPU" in out
    assert "KV cache tokens per replica: 222,172 (27 sequences of 8192 tokens at once)" in out
    assert "result: fits" in out
    assert "warning: the KV cache pool (27.12 GiB per GPU) holds 222,172 tokens" in out


def test_tp_defaults_to_every_gpu_of_the_instance(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "--model", "Llama-3.1-70B", "--instance", "p5.48xlarge", "--max-model-len", "8192")
    assert code == 0
    assert "tp 8 (1 replica per instance)" in out
    assert "KV cache per token: 320.0 KiB for the model, 40.0 KiB per GPU" in out


def test_70b_on_one_24_gib_gpu_does_not_fit_and_names_alternatives(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "--model", "Llama-3.1-70B", "--instance", "g5.xlarge", "--max-model-len", "8192")
    assert code == 1 and err == ""
    assert "result: DOES NOT FIT" in out
    assert "error: Llama-3.1-70B in bf16 does not fit on 24.00 GiB GPUs with tp 1: per GPU, weights 131.50 GiB" in out
    assert "its weights alone need 131.50 GiB in bf16/fp16, 67.71 GiB in fp8 and 37.06 GiB at 4 bits" in out
    assert "error: would fit in bf16 with the same limits: g6e.12xlarge with tp 4" in out


def test_70b_at_4_bits_on_one_24_gib_gpu_does_not_fit(capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["--model", "Llama-3.1-70B", "--instance", "g6.xlarge", "--dtype", "awq", "--max-model-len", "8192"]
    code, out, _ = run(capsys, *argv)
    assert code == 1
    assert "in awq does not fit on 24.00 GiB GPUs with tp 1: per GPU, weights 37.06 GiB" in out
    assert "g6e.xlarge with tp 1 (1 x L40S 48.00 GiB" in out


def test_70b_at_4_bits_fits_a_g6e_12xlarge_with_tp_4(capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["--model", "Llama-3.1-70B", "--instance", "g6e.12xlarge", "--dtype", "awq", "--tp", "4"]
    code, out, _ = run(capsys, *argv, "--max-model-len", "8192")
    assert code == 0
    assert any(line.startswith("weights ") and line.endswith(" 9.26") for line in out.splitlines())
    assert "result: fits" in out


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (
            ["--model", "GPT-5", "--instance", "g6e.xlarge"],
            "--model: expected a model from models.yaml (Llama-3.1-8B, Llama-3.1-70B, ",
        ),
        (
            ["--model", "Llama-3.1-8B", "--instance", "g9.huge"],
            "--instance: expected a GPU instance type from the catalog",
        ),
        (["--model", "Llama-3.1-8B", "--instance", "m7i.large"], "found 'm7i.large'"),
        (
            ["--model", "Llama-3.1-70B", "--instance", "p5.48xlarge", "--tp", "3"],
            "--tp: expected a tensor-parallel size",
        ),
        (["--model", "Llama-3.1-70B", "--instance", "g6e.12xlarge", "--tp", "8"], "4 GPUs and Llama-3.1-70B's"),
        (
            ["--model", "Qwen2.5-7B", "--instance", "p5.48xlarge"],
            "(1, 2, 4), found 8: the default is every GPU of p5.48xlarge; pass a smaller --tp",
        ),
    ],
)
def test_bad_input_exits_2_with_one_message(capsys: pytest.CaptureFixture[str], argv: list[str], message: str) -> None:
    code, out, err = run(capsys, *argv, "--max-model-len", "8192")
    assert code == 2
    assert out == ""
    assert err.startswith("agentinfra: error: --") and err.count("\n") == 1
    assert message in err


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--tp", "0"], "argument --tp: expected a positive integer, found '0'"),
        (["--max-num-seqs", "many"], "argument --max-num-seqs: expected a positive integer, found 'many'"),
        (["--dtype", "int3"], "argument --dtype: invalid choice: 'int3'"),
        (["--gpu-memory-utilization", "1.5"], "argument --gpu-memory-utilization: expected a fraction in (0, 1]"),
    ],
)
def test_malformed_arguments_are_rejected_by_the_parser(
    capsys: pytest.CaptureFixture[str], argv: list[str], message: str
) -> None:
    with pytest.raises(SystemExit) as info:
        run(capsys, "--model", "Llama-3.1-8B", "--instance", "g6e.xlarge", "--max-model-len", "8192", *argv)
    assert info.value.code == 2
    assert message in capsys.readouterr().err


def test_max_model_len_is_required(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        run(capsys, "--model", "Llama-3.1-8B", "--instance", "g6e.xlarge")
    assert info.value.code == 2
    assert "--max-model-len" in capsys.readouterr().err
