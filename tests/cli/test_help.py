"""Every command's --help teaches what it accepts."""

import argparse
import re

from facecap.cli import build_parser


def _commands() -> dict[str, argparse.ArgumentParser]:
    parser = build_parser()
    action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return dict(action.choices)


def test_each_set_example_is_one_of_the_commands_own_keys_with_its_default():
    checked = 0
    for name, parser in _commands().items():
        text = " ".join(parser.format_help().split())
        example = re.search(r"e\.g\. --set (\S+)=(\S+)", text)
        if "--set KEY=VALUE" not in text:
            continue
        assert example, f"facecap {name} --help: --set has no example"
        key, value = example.groups()
        listed = re.search(rf"(?<![\w.]){re.escape(key)} \((\w+), default ([^)]*)\)", text)
        assert listed, f"facecap {name} --help: the --set example {key} is not among its config keys"
        assert float(listed.group(2)) == float(value), f"facecap {name}: {key}'s example is not its default"
        checked += 1
    assert checked >= 5
