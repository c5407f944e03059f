"""`kubevirt-vss-exporter explain`: argument and stdin modes, human and JSON Lines output, exit codes."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import pytest

from exporter import cli

DATA = Path(__file__).parent.parent / "data" / "freeze_errors"
GUID_CHAIN = json.loads((DATA / "vmsnapshot-inprogress-freeze-error-windows-vss.json").read_text(encoding="utf-8"))[
    "status"
]["error"]["message"]
FIELDS = [
    "reason",
    "cause",
    "hresult",
    "hresult_name",
    "hresult_meaning",
    "volume",
    "command",
    "message",
    "summary",
    "remediation",
]


def json_lines(out: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in out.splitlines()]


def binary_stdin(monkeypatch: pytest.MonkeyPatch, raw: bytes) -> None:
    monkeypatch.setattr("sys.stdin", io.TextIOWrapper(io.BytesIO(raw), encoding="utf-8"))


def test_json_for_the_guid_chain(capsys: pytest.CaptureFixture[str]) -> None:
    code = cli.main(["explain", "--json", GUID_CHAIN])

    out, err = capsys.readouterr()
    [record] = json_lines(out)
    assert code == 0 and err == ""
    assert list(record) == FIELDS
    assert record["reason"] == "add_volume_to_snapshot_set"
    assert record["volume"] == "\\\\?\\Volume{2a1f8d64-0000-0000-0000-501f00000000}\\"
    assert record["command"] == "guest-fsfreeze-freeze"


def test_human_output(capsys: pytest.CaptureFixture[str]) -> None:
    code = cli.main(["explain", "failed to add D: to snapshot set: Windows error 0x8004230e: "])

    out = capsys.readouterr().out
    assert code == 0
    lines = dict(line.split(":", 1) for line in out.splitlines())
    assert lines["reason"].strip() == "add_volume_to_snapshot_set"
    assert lines["cause"].strip() == "volume_not_supported"
    assert lines["hresult"].strip().startswith("0x8004230e VSS_E_VOLUME_NOT_SUPPORTED_BY_PROVIDER: ")
    assert lines["volume"].strip() == "D:"
    assert lines["command"].strip() == "guest-fsfreeze-freeze"
    assert lines["summary"].strip() and lines["what to do"].strip()


def test_unrecognised_text_exits_zero(capsys: pytest.CaptureFixture[str]) -> None:
    code = cli.main(["explain", "--json", "the printer is on fire"])

    [record] = json_lines(capsys.readouterr().out)
    assert code == 0
    assert (record["reason"], record["cause"], record["hresult"]) == ("other", "unknown", None)


def test_stdin_one_record_per_non_empty_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    lines = [line for line in (DATA / "observed.jsonl").read_text(encoding="utf-8").splitlines()]
    texts = [json.loads(line)["text"] for line in lines]
    monkeypatch.setattr("sys.stdin", io.StringIO("\n\n".join(texts) + "\n   \n"))

    code = cli.main(["explain", "--json"])

    records = json_lines(capsys.readouterr().out)
    assert code == 0
    assert [r["reason"] for r in records] == [json.loads(line)["expect"]["reason"] for line in lines]


def test_dash_reads_stdin(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO("Guest agent not available for now\r\n"))

    cli.main(["explain", "--json", "-"])

    [record] = json_lines(capsys.readouterr().out)
    assert record["reason"] == "agent_timeout"


def test_human_stdin_separates_records(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO("VM is not running\nVMI is currently during migration\n"))

    cli.main(["explain"])

    blocks = capsys.readouterr().out.split("\n\n")
    assert [b.splitlines()[0].split()[-1] for b in blocks] == ["vm_not_running", "migration_in_progress"]


def test_binary_junk_on_stdin(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    binary_stdin(monkeypatch, b"\xff\xfe\x00junk\x80\n" + "Zugriff verweigert".encode("latin-1") + b"\n")

    code = cli.main(["explain", "--json"])

    records = json_lines(capsys.readouterr().out)
    assert code == 0
    assert len(records) == 2
    assert all(r["reason"] == "other" for r in records)


def test_huge_line_is_cut_and_the_next_line_still_read(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    huge = b"failed to do snapshot set: " + b"x" * 2_000_000
    binary_stdin(monkeypatch, huge + b"\nfailed to start snapshot set: Windows error 0x80042316: \n")

    code = cli.main(["explain", "--json"])

    records = json_lines(capsys.readouterr().out)
    assert code == 0
    assert [r["reason"] for r in records] == ["do_snapshot_set", "start_snapshot_set"]
    assert records[1]["cause"] == "snapshot_set_in_progress"
    assert len(records[0]["message"]) <= 512


def test_huge_last_line_without_newline(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    binary_stdin(monkeypatch, b"Guest agent not available for now " + b"y" * 600_000)

    cli.main(["explain", "--json"])

    [record] = json_lines(capsys.readouterr().out)
    assert record["reason"] == "agent_timeout"


def test_empty_stdin_prints_nothing(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO(""))

    assert cli.main(["explain", "--json"]) == 0
    assert capsys.readouterr().out == ""
