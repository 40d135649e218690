"""The LoRA fit benchmark's command line refuses what cannot run, naming the flag and the fix, before it starts
a single (minutes-long) child process."""

import pytest

from engine.benchmarks import lora_fit

ROOT = str(lora_fit.DEMO.parents[1])


def _refused(argv, capsys) -> str:
    with pytest.raises(SystemExit) as info:
        lora_fit.main(argv)
    assert info.value.code == 2
    return capsys.readouterr().err


@pytest.mark.parametrize(
    "argv, words",
    [
        (["--b", ROOT], "--a is needed"),
        (["--a", "/no/such/tree", "--b", ROOT], "holds no engine/ package"),
        (["--a", ROOT, "--b", ROOT, "--pairs", "0"], "--pairs must be at least 1"),
        (["--a", ROOT, "--b", ROOT, "--params", "{warmup: 0"], "--params is not JSON"),
        (["--a", ROOT, "--b", ROOT, "--params", "[1, 2]"], "must be a JSON object"),
        (["--a", ROOT, "--b", ROOT, "--data", "/no/such.csv"], "is not a file"),
    ],
)
def test_bad_flags_are_refused_with_the_fix(argv, words, capsys):
    assert words in _refused(argv, capsys)
