"""Secrets never reach the disk: a command-line override that holds one (an ``*api_key`` /
``*token`` key, a value shaped like an API key, or a key given where an ``*_env`` setting must
NAME an environment variable) is refused before Hydra writes the run dir's ``.hydra/*.yaml``."""

from __future__ import annotations

import re
import sys

from src.utils.errors import EXIT_USER_ERROR

# Keys whose value is a secret: never accepted on the command line (Hydra writes overrides to disk).
_SECRET_KEY = re.compile(r"(api_?key|token|secret|password|passwd)$", re.IGNORECASE)
# Values that look like an API key whatever the key (OpenAI, Hugging Face, GitHub, Slack): 32+
# characters after the prefix and not inside a word, so a file name like desk-lamp-2024.png is no key.
_SECRET_VALUE = re.compile(
    r"(?<![A-Za-z0-9])(sk-[A-Za-z0-9_\-]{32,}|hf_[A-Za-z0-9]{30,}|gh[pousr]_[A-Za-z0-9]{30,}|xox[abp]-[A-Za-z0-9-]{20,})"
)
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def secret_override_problem(argument: str) -> str | None:
    """Why a command-line override must not be accepted (it holds a secret), or None. The secret
    itself is never part of the answer."""
    if "=" not in argument or argument.startswith("-"):
        return None
    key, value = argument.split("=", 1)
    key = key.lstrip("+~").split("@")[0]
    leaf = key.split(".")[-1]
    if leaf.endswith("_env"):
        names = [v.strip() for v in value.strip("[]").split(",") if v.strip()]
        if any(not _ENV_NAME.match(name) for name in names):
            return (
                f"{key}= must NAME an environment variable (e.g. {key}=OPENAI_API_KEY), not hold the key; "
                "the key was not written anywhere: export it in that variable"
            )
        return None
    if _SECRET_KEY.search(leaf):
        return (
            f"{key}= on the command line would be written into the run dir's .hydra/*.yaml; "
            "keep the secret in an environment variable and name it with the matching *_env setting "
            "(e.g. captioner.api_key_env=OPENAI_API_KEY); nothing was written"
        )
    if _SECRET_VALUE.search(value):
        return (
            f"the value of {key}= looks like an API key; secrets are never accepted on the command line "
            "(Hydra writes it to disk): put it in an environment variable; nothing was written"
        )
    return None


def refuse_secret_overrides(argv: list[str]) -> None:
    """Exit 2, before anything is written, if an override on the command line holds a secret."""
    for argument in argv:
        problem = secret_override_problem(argument)
        if problem:
            print(f"error: {problem}", file=sys.stderr)
            sys.exit(EXIT_USER_ERROR)
