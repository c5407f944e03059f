from __future__ import annotations

import json

import pytest

from exporter.state.error_chain import UnwrappedError, clean, unwrap

INNER = "failed to do snapshot set: Windows error 0x8004231f: "


@pytest.mark.parametrize(
    ("text", "message", "agent_command"),
    [
        pytest.param(INNER, INNER.strip(), None, id="bare"),
        pytest.param(
            f"internal error: unable to execute QEMU agent command 'guest-fsfreeze-freeze': {INNER}",
            INNER.strip(),
            "guest-fsfreeze-freeze",
            id="libvirt-names-command",
        ),
        pytest.param(
            json.dumps({"component": "virt-launcher", "msg": "Failed to freeze vmi", "reason": INNER}),
            INNER.strip(),
            None,
            id="launcher-log-line",
        ),
        pytest.param(
            f"LibvirtError(Code=1, Domain=10, Message='{INNER}')",
            INNER.strip(),
            None,
            id="libvirt-error-repr",
        ),
        pytest.param(
            "server error. command Freeze failed: " + json.dumps(f"LibvirtError(Code=1, Domain=10, Message='{INNER}')"),
            INNER.strip(),
            None,
            id="cmd-client-go-quoted",
        ),
    ],
)
def test_unwrap_reaches_the_agent_message(text: str, message: str, agent_command: str | None) -> None:
    result = unwrap(text)

    assert isinstance(result, UnwrappedError)
    assert (result.message, result.agent_command) == (message, agent_command)


def test_hints_keep_the_outer_layers_outermost_first() -> None:
    result = unwrap(f"Failed to freeze VMI: Internal error occurred: {INNER}")

    assert result.hints == ("Failed to freeze VMI: ", "Internal error occurred: ")


def test_text_without_layers_is_its_own_message() -> None:
    assert unwrap("  plain words  ") == UnwrappedError("plain words", (), None)


def test_clean_makes_one_valid_line() -> None:
    assert clean("a\nb\x00c\ud800") == "a b c?"
