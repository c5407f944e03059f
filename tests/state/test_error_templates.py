from __future__ import annotations

import pytest

from exporter.state.error_chain import UnwrappedError
from exporter.state.error_templates import find_cause, find_command, find_hresult, find_volume, match_template


@pytest.mark.parametrize(
    ("message", "hresult"),
    [
        pytest.param("Windows error 0x8004231f: ", 0x8004231F, id="qemu-ga-format"),
        pytest.param("(error: 8004231f)", 0x8004231F, id="old-format"),
        pytest.param("Windows error 0x5: Access is denied.", 0x80070005, id="win32-code"),
        pytest.param("Windows error 0xffffffff8004231f: ", 0x8004231F, id="sign-extended"),
        pytest.param("build 0x12345678", None, id="bare-unknown"),
        pytest.param("Windows error 0x0: ", None, id="zero"),
    ],
)
def test_find_hresult(message: str, hresult: int | None) -> None:
    assert find_hresult(message) == hresult


def test_earliest_template_wins_over_later_text() -> None:
    matched = match_template(("failed to do snapshot set: couldn't hold writes",))

    assert matched is not None and matched[0].reason == "do_snapshot_set"
    assert match_template(("nothing known here",)) is None


def test_text_cause_beats_unknown_hresult_cause() -> None:
    assert find_cause(("failed to do snapshot set: Access is denied.",), 0x80004005) == "access_denied"
    assert find_cause(("nothing",), None) == "unknown"


def test_volume_only_for_reasons_that_name_one() -> None:
    assert find_volume("add_volume_to_snapshot_set", "failed to add D:\\\\ to snapshot set: ") == "D:\\"
    assert find_volume("do_snapshot_set", "failed to add D:\\ to snapshot set: ") is None


def test_command_prefers_what_libvirt_named() -> None:
    unwrapped = UnwrappedError("x", ("Failed to unfreeze VMI: ",), "guest-fsfreeze-freeze")

    assert find_command(unwrapped, None, "x") == "guest-fsfreeze-freeze"
    assert find_command(UnwrappedError("x", ("Failed to unfreeze VMI: ",), None), None, "x") == "guest-fsfreeze-thaw"
