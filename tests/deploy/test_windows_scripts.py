"""The Windows guest scripts, checked without PowerShell: syntax, schema agreement and read-only behaviour.

The syntax is checked with the PowerShell grammar of tree-sitter (tree-sitter-powershell, in the test
extras): no script may have an ERROR or MISSING node. Without it those tests skip, except under CI
(env ``CI`` set), where they fail.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator

ROOT = Path(__file__).parent.parent.parent
WINDOWS = ROOT / "deploy" / "windows"
SEND = WINDOWS / "Send-VssGuestReport.ps1"
INSTALL = WINDOWS / "Install-VssGuestReport.ps1"
UNINSTALL = WINDOWS / "Uninstall-VssGuestReport.ps1"
SCRIPTS = (SEND, INSTALL, UNINSTALL)
USERDATA = WINDOWS / "cloudbase-init-userdata.ps1"
ALL_SCRIPTS = sorted(WINDOWS.glob("*.ps1"))
SCHEMA_PATH = ROOT / "exporter" / "schemas" / "guest-report-v1.json"
SAMPLES = sorted((ROOT / "tests" / "data" / "guest_reports").glob("*.json"))


def schema() -> dict[str, Any]:
    return json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))


def script(path: Path) -> str:
    return path.read_text(encoding="ascii")


def code_of(text: str) -> str:
    """The script without comment lines and comment-based help, so that prose cannot hide or fake code."""
    without_help = re.sub(r"<#.*?#>", "", text, flags=re.DOTALL)
    return "\n".join(line for line in without_help.splitlines() if not line.lstrip().startswith("#"))


def ordered_literals(text: str) -> list[set[str]]:
    """Key sets of every ``[ordered]@{ … }`` literal, each without the keys of literals nested in it."""
    literals = []
    for start in (m.end() for m in re.finditer(r"\[ordered\]@\{", text)):
        depth, own = 1, []
        for ch in text[start:]:
            if ch == "{":
                depth += 1
            elif ch == "}":
                depth -= 1
                if depth == 0:
                    break
            if depth == 1:
                own.append(ch)
        statements = re.split(r"[\n;]", "".join(own))
        literals.append({m.group(1) for s in statements if (m := re.match(r"\s*([A-Za-z_]\w*)\s*=", s))})
    return literals


def schema_objects() -> dict[str, dict[str, Any]]:
    """Every object definition of the schema by a short name."""
    document = schema()
    objects = {"report": document, "vssadmin": document["properties"]["vssadmin"]}
    objects.update({name: d for name, d in document["$defs"].items() if d.get("type") == "object"})
    return objects


def test_schema_is_valid_draft_2020_12() -> None:
    document = schema()
    Draft202012Validator.check_schema(document)
    assert document["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert document["properties"]["schemaVersion"] == {
        "description": document["properties"]["schemaVersion"]["description"],
        "const": 1,
    }
    assert "schemaVersion" in document["required"]


def test_every_string_and_array_is_bounded() -> None:
    def walk(node: Any, where: str) -> None:
        if isinstance(node, dict):
            types = node.get("type", [])
            types = [types] if isinstance(types, str) else types
            if "string" in types:
                assert "maxLength" in node or "pattern" in node, where
            if "array" in types:
                assert "maxItems" in node, where
            for key, child in node.items():
                walk(child, f"{where}/{key}")
        elif isinstance(node, list):
            for index, child in enumerate(node):
                walk(child, f"{where}/{index}")

    walk(schema(), "")


@pytest.mark.parametrize("sample", SAMPLES, ids=[s.stem for s in SAMPLES])
def test_samples_validate_against_the_schema(sample: Path) -> None:
    validator = Draft202012Validator(schema())
    errors = [e.message for e in validator.iter_errors(json.loads(sample.read_text(encoding="utf-8")))]
    assert errors == []


def test_every_object_the_script_writes_matches_a_schema_object() -> None:
    objects = schema_objects()
    literals = ordered_literals(code_of(script(SEND)))
    assert literals, "no [ordered]@{} literal found"
    for keys in literals:
        matches = [
            name
            for name, definition in objects.items()
            if keys <= set(definition["properties"]) and set(definition.get("required", ())) <= keys
        ]
        assert matches, f"keys {sorted(keys)} match no schema object"


def test_the_script_writes_every_schema_property() -> None:
    written = set().union(*ordered_literals(code_of(script(SEND))))
    declared = set().union(*(set(d["properties"]) for d in schema_objects().values()))
    assert written == declared


def test_script_constants_follow_the_schema() -> None:
    text = script(SEND)
    document = schema()
    services = re.search(r"\$ServiceNames = @\(([^)]*)\)", text)
    assert services is not None
    assert re.findall(r"'([^']+)'", services.group(1)) == document["$defs"]["service"]["properties"]["name"]["enum"]
    assert f"$MaxVssadminChars = {document['$defs']['vssadminOutput']['maxLength']}" in text
    assert f"$MaxVolumes = {document['properties']['volumes']['maxItems']}" in text
    assert f"$SchemaVersion = {document['properties']['schemaVersion']['const']}" in text
    assert "$ReportPath = '/api/v1/guest-reports'" in text


# Cmdlets, programs and methods that change a Windows guest. The sender may use none of them.
WRITES = [
    r"\bSet-Service\b",
    r"\bStart-Service\b",
    r"\bStop-Service\b",
    r"\bRestart-Service\b",
    r"\bSuspend-Service\b",
    r"\bNew-Service\b",
    r"\bRemove-\w+",
    r"\bSet-(Item|ItemProperty|Content|Acl)\b",
    r"\bNew-(Item|ItemProperty|EventLog)\b",
    r"\bAdd-Content\b",
    r"\bOut-File\b",
    r"\bCopy-Item\b",
    r"\bMove-Item\b",
    r"\bRename-Item\b",
    r"\bClear-\w+",
    r"\b(Register|Unregister|Start|Stop|Set|Disable|Enable)-ScheduledTask\b",
    r"\bInvoke-(CimMethod|WmiMethod)\b",
    r"\bSet-(CimInstance|WmiInstance)\b",
    r"\bRestart-Computer\b",
    r"\bStop-Computer\b",
    r"\bStop-Process\b",
    r"\bFormat-Volume\b",
    r"\bResize-Partition\b",
    r"\b(sc|sc\.exe|net|net\.exe|reg|reg\.exe|regsvr32|diskshadow|wmic|cmd|bcdedit|fsutil)\s+\S",
    r"vssadmin(\.exe)?['\"]?\s+(delete|resize|add|create|revert|break|expose)",
    r"(WriteAllText|WriteAllBytes|AppendAllText|\.Delete\(|\.ChangeStartMode\(|\.StopService\()",
    r">\s*\$?\w",  # redirection into a file
]


@pytest.mark.parametrize("pattern", WRITES)
def test_the_sender_changes_nothing(pattern: str) -> None:
    assert not re.search(pattern, code_of(script(SEND)), flags=re.IGNORECASE), pattern


@pytest.mark.parametrize(
    "line",
    [
        "Set-Service -Name VSS -StartupType Manual",
        "Start-Service VSS",
        "Remove-Item -LiteralPath $x",
        "Set-ItemProperty -Path HKLM:\\x -Name y -Value 1",
        "New-ItemProperty -Path HKLM:\\x -Name y",
        "$text | Out-File C:\\x.txt",
        "Invoke-CimMethod -InputObject $s -MethodName StopService",
        "& vssadmin delete shadows /all /quiet",
        "vssadmin.exe resize shadowstorage /for=C: /maxsize=1GB",
        "sc.exe config VSS start= disabled",
        "net stop vss",
        "[System.IO.File]::WriteAllText($p, $t)",
        "$service.ChangeStartMode('Disabled')",
        "Register-ScheduledTask -TaskName x",
        "vssadmin list writers > C:\\out.txt",
    ],
)
def test_the_write_patterns_catch_writes(line: str) -> None:
    assert any(re.search(pattern, line, flags=re.IGNORECASE) for pattern in WRITES), line


def test_the_sender_runs_vssadmin_only_to_list() -> None:
    code = code_of(script(SEND))
    assert "ValidateSet('writers', 'providers', 'shadowstorage')" in code
    assert '$startInfo.Arguments = "list $Subject"' in code
    assert "$startInfo.FileName = Join-Path $env:SystemRoot 'System32\\vssadmin.exe'" in code
    assert code.lower().count("vssadmin.exe") == 1
    calls = re.findall(r"Invoke-VssadminList -Subject '(\w+)'", code)
    assert sorted(calls) == ["providers", "shadowstorage", "writers"]


def test_the_sender_writes_only_its_event_log_entry() -> None:
    code = code_of(script(SEND))
    assert re.findall(r"Write-EventLog[^\n]*", code) == [
        "Write-EventLog -LogName Application -Source $EventSource -EventId $EventId -EntryType Warning"
        " -Message $Message"
    ]


def test_the_token_is_sent_only_as_a_bearer_header() -> None:
    code = code_of(script(SEND))
    uses = [line.strip() for line in code.splitlines() if re.search(r"\$Token\b", line)]
    assert uses == [
        "param([Parameter(Mandatory)] [Uri] $Uri, [Parameter(Mandatory)] [string] $Token, "
        "[Parameter(Mandatory)] [byte[]] $Body)",
        '$headers = @{ Authorization = "Bearer $Token" }',
    ]


def test_installer_and_sender_agree_on_names() -> None:
    send, install, uninstall = (script(p) for p in SCRIPTS)
    for text in (send, install, uninstall):
        assert "$EventSource = 'kubevirt-vss-exporter'" in text
        assert "Join-Path $env:ProgramData 'kubevirt-vss-exporter'" in text
    for text in (install, uninstall):
        assert "Join-Path $env:ProgramFiles 'kubevirt-vss-exporter'" in text
        assert "$TaskPath = '\\kubevirt-vss-exporter\\'" in text
        assert "$TaskName = 'Send VSS guest report'" in text
    config_keys = re.search(r"\$config = \[ordered\]@\{([^}]*)\}", install)
    assert config_keys is not None
    for key in re.findall(r"(\w+) =", config_keys.group(1)):
        assert f"Get-Setting -Config $config -Name '{key}'" in send
    assert "Join-Path $ConfigDir 'token'" in send and "Join-Path $ConfigDir 'token'" in install


def test_installer_is_idempotent_and_restricted() -> None:
    code = code_of(script(INSTALL))
    assert "#Requires -RunAsAdministrator" in script(INSTALL)
    assert "New-Item -ItemType Directory -Path $InstallDir -Force" in code
    assert "Register-ScheduledTask" in code and "-Force" in code
    assert "if (-not [System.Diagnostics.EventLog]::SourceExists($EventSource))" in code
    assert "SetAccessRuleProtection($true, $false)" in code
    assert "'S-1-5-18'" in code and "'S-1-5-32-544'" in code
    assert "-AtStartup" in code and "-RepetitionInterval (New-TimeSpan -Minutes $IntervalMinutes)" in code
    assert "[int] $IntervalMinutes = 5" in code
    assert "-LogonType ServiceAccount -RunLevel Highest" in code


def test_uninstaller_removes_what_the_installer_creates() -> None:
    code = code_of(script(UNINSTALL))
    assert "Unregister-ScheduledTask -TaskPath $TaskPath -TaskName $TaskName -Confirm:$false" in code
    assert "foreach ($path in @($InstallDir, $ConfigDir))" in code
    assert "Remove-Item -LiteralPath $path -Recurse -Force" in code
    assert "Remove-EventLog -Source $EventSource" in code


@pytest.mark.parametrize("path", ALL_SCRIPTS, ids=[p.name for p in ALL_SCRIPTS])
def test_scripts_are_plain_ascii_and_balanced(path: Path) -> None:
    # Windows PowerShell 5.1 reads a script without BOM in the ANSI code page: keep them ASCII.
    raw = path.read_bytes()
    assert raw.isascii()
    # cloudbase-init chooses the interpreter by the user data's first line.
    assert raw.startswith(b"#ps1_sysnative\n" if path == USERDATA else b"#Requires -Version 5.1")
    code = code_of(raw.decode("ascii"))
    for opening, closing in ("{}", "()", "[]"):
        assert code.count(opening) == code.count(closing), (path.name, opening)
    assert "Set-StrictMode -Version 3.0" in code and "$ErrorActionPreference = 'Stop'" in code


def test_readme_describes_every_report_field() -> None:
    readme = (WINDOWS / "README.md").read_text(encoding="utf-8")
    for name in schema()["properties"]:
        assert f"`{name}" in readme, name
    for name in ("-DryRun", "kubevirt_vss_guest_report_timestamp_seconds", "status.interfaces[].ipAddress"):
        assert name in readme


# --- PowerShell syntax ------------------------------------------------------------------------------------


def _powershell_parser() -> Any:
    try:
        import tree_sitter_powershell
        from tree_sitter import Language, Parser
    except ImportError:
        if os.environ.get("CI"):
            pytest.fail("tree-sitter and tree-sitter-powershell are required (pip install -e '.[test]')")
        pytest.skip("tree-sitter-powershell is not installed")
    return Parser(Language(tree_sitter_powershell.language()))


def syntax_problems(source: bytes) -> list[str]:
    """Every ERROR or MISSING node of the PowerShell syntax tree, with its position."""
    problems = []
    stack = [_powershell_parser().parse(source).root_node]
    while stack:
        node = stack.pop()
        if node.is_error or node.is_missing:
            what = f"missing {node.type}" if node.is_missing else "cannot parse"
            problems.append(f"{what} at line {node.start_point[0] + 1}, column {node.start_point[1] + 1}")
        stack.extend(node.children)
    return problems


@pytest.mark.parametrize("path", ALL_SCRIPTS, ids=[p.name for p in ALL_SCRIPTS])
def test_scripts_parse_as_powershell(path: Path) -> None:
    assert syntax_problems(path.read_bytes()) == []


@pytest.mark.parametrize(
    "source",
    [
        b"if ($x { 1 }\n",
        b"$values = @(1, 2\n",
        b"function Get-X {\n    param([string] $Name\n}\n",
        b"try { Get-Item x }\n$y = 1 +\n",
    ],
)
def test_the_parser_finds_broken_powershell(source: bytes) -> None:
    assert syntax_problems(source)


# "$name:" followed by something that cannot continue a name is a parse error in PowerShell ("Variable
# reference is not valid"), which the tree-sitter grammar accepts inside strings; "${name}:" is right.
INVALID_SCOPED_VARIABLE = re.compile(r"\$\w+:(?![\w{])")


@pytest.mark.parametrize("path", ALL_SCRIPTS, ids=[p.name for p in ALL_SCRIPTS])
def test_no_variable_reference_ends_in_a_colon(path: Path) -> None:
    assert INVALID_SCOPED_VARIABLE.findall(code_of(script(path))) == []
    assert INVALID_SCOPED_VARIABLE.search('throw "no file $Name: attach it"')
    assert not INVALID_SCOPED_VARIABLE.search('throw "$env:TEMP ${Name}: $script:x"')
