"""Subcommands made of actions (`cni-rkt ipam list`, `cni-rkt worker stop`): one parser per action."""

from __future__ import annotations

import argparse


def add_action(actions, name: str, text: str, exit_status: str) -> argparse.ArgumentParser:
    """The action's parser: `text` says what it does in the list and atop its --help, which ends with `exit_status`."""
    return actions.add_parser(name, help=text, description=text, epilog=exit_status)
