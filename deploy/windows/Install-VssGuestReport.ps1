#Requires -Version 5.1
#Requires -RunAsAdministrator
<#
.SYNOPSIS
    Installs the kubevirt-vss-exporter guest report: script, settings, event log source and task.

.DESCRIPTION
    * copies Send-VssGuestReport.ps1 to %ProgramFiles%\kubevirt-vss-exporter\
    * stores the exporter URL (config.json) and the token (token) in
      %ProgramData%\kubevirt-vss-exporter\, readable only by SYSTEM and Administrators
    * registers the Application event log source "kubevirt-vss-exporter"
    * registers the scheduled task \kubevirt-vss-exporter\Send VSS guest report, running as SYSTEM
      one minute after boot and every -IntervalMinutes minutes, and starts it once
    Running it again replaces all of these with the new values.

.PARAMETER ExporterUrl
    Base URL of the exporter's guest-report listener. Defaults to the Service that
    deploy/components/guest-reports creates, on the listener's port 9746:
    http://kubevirt-vss-exporter-guest-reports.kubevirt-vss-exporter.svc.cluster.local:9746

.PARAMETER Token
    The bearer token. Prefer -TokenFile: a token on the command line can end up in logs.

.PARAMETER TokenFile
    A file holding the bearer token; its content is copied into the protected settings folder.

.EXAMPLE
    .\Install-VssGuestReport.ps1 -TokenFile E:\token

.EXAMPLE
    .\Install-VssGuestReport.ps1 -ExporterUrl http://10.0.0.12:9746 -TokenFile E:\token
#>
[CmdletBinding(DefaultParameterSetName = 'TokenFile')]
param(
    [string] $ExporterUrl = 'http://kubevirt-vss-exporter-guest-reports.kubevirt-vss-exporter.svc.cluster.local:9746',
    [Parameter(Mandatory, ParameterSetName = 'Token')] [string] $Token,
    [Parameter(Mandatory, ParameterSetName = 'TokenFile')] [string] $TokenFile,
    [ValidateRange(1, 1440)] [int] $IntervalMinutes = 5,
    [string] $SourceScript = (Join-Path $PSScriptRoot 'Send-VssGuestReport.ps1')
)

Set-StrictMode -Version 3.0
$ErrorActionPreference = 'Stop'

$InstallDir = Join-Path $env:ProgramFiles 'kubevirt-vss-exporter'
$ConfigDir = Join-Path $env:ProgramData 'kubevirt-vss-exporter'
$EventSource = 'kubevirt-vss-exporter'
$TaskPath = '\kubevirt-vss-exporter\'
$TaskName = 'Send VSS guest report'
# Well-known SIDs, so that localized account names (such as "Administratoren") do not matter.
$SystemSid = New-Object System.Security.Principal.SecurityIdentifier 'S-1-5-18'
$AdministratorsSid = New-Object System.Security.Principal.SecurityIdentifier 'S-1-5-32-544'

function Set-RestrictedAcl {
    # Full control for SYSTEM and Administrators only, nothing inherited, owned by Administrators.
    param([Parameter(Mandatory)] [string] $Path, [switch] $Directory)
    if ($Directory) {
        $acl = New-Object System.Security.AccessControl.DirectorySecurity
        $inheritance = [System.Security.AccessControl.InheritanceFlags] 'ContainerInherit, ObjectInherit'
    } else {
        $acl = New-Object System.Security.AccessControl.FileSecurity
        $inheritance = [System.Security.AccessControl.InheritanceFlags]::None
    }
    $acl.SetOwner($AdministratorsSid)
    $acl.SetAccessRuleProtection($true, $false)
    foreach ($sid in @($SystemSid, $AdministratorsSid)) {
        $rule = New-Object System.Security.AccessControl.FileSystemAccessRule(
            $sid,
            [System.Security.AccessControl.FileSystemRights]::FullControl,
            $inheritance,
            [System.Security.AccessControl.PropagationFlags]::None,
            [System.Security.AccessControl.AccessControlType]::Allow)
        $acl.AddAccessRule($rule)
    }
    Set-Acl -LiteralPath $Path -AclObject $acl
}

function Write-Utf8File {
    param([Parameter(Mandatory)] [string] $Path, [Parameter(Mandatory)] [string] $Content)
    [System.IO.File]::WriteAllText($Path, $Content, (New-Object System.Text.UTF8Encoding $false))
}

$uri = $null
if (-not [Uri]::TryCreate($ExporterUrl.Trim(), [UriKind]::Absolute, [ref] $uri) -or $uri.Scheme -notin @('http', 'https')) {
    throw "ExporterUrl '$ExporterUrl' is not an absolute http(s) URL"
}
if ($PSCmdlet.ParameterSetName -eq 'TokenFile') {
    $Token = [System.IO.File]::ReadAllText((Resolve-Path -LiteralPath $TokenFile).ProviderPath)
}
$Token = $Token.Trim()
if ([string]::IsNullOrEmpty($Token)) { throw 'the token is empty' }
if (-not (Test-Path -LiteralPath $SourceScript -PathType Leaf)) { throw "script not found: $SourceScript" }

# The script runs as SYSTEM, so its folder must not be writable by users: Program Files is not.
New-Item -ItemType Directory -Path $InstallDir -Force | Out-Null
$installedScript = Join-Path $InstallDir 'Send-VssGuestReport.ps1'
Copy-Item -LiteralPath $SourceScript -Destination $installedScript -Force

# ProgramData lets users create folders, so the folder is locked down even when it already existed.
New-Item -ItemType Directory -Path $ConfigDir -Force | Out-Null
Set-RestrictedAcl -Path $ConfigDir -Directory
$tokenPath = Join-Path $ConfigDir 'token'
$configPath = Join-Path $ConfigDir 'config.json'
Write-Utf8File -Path $tokenPath -Content $Token
Set-RestrictedAcl -Path $tokenPath
$config = [ordered]@{ exporterUrl = $uri.AbsoluteUri; tokenFile = $tokenPath }
Write-Utf8File -Path $configPath -Content (ConvertTo-Json -InputObject $config)
Set-RestrictedAcl -Path $configPath

if (-not [System.Diagnostics.EventLog]::SourceExists($EventSource)) {
    New-EventLog -LogName Application -Source $EventSource
}

$powershell = Join-Path $PSHOME 'powershell.exe'
$arguments = "-NoProfile -NonInteractive -ExecutionPolicy Bypass -File `"$installedScript`""
$action = New-ScheduledTaskAction -Execute $powershell -Argument $arguments
$atStartup = New-ScheduledTaskTrigger -AtStartup
$atStartup.Delay = 'PT1M'
# Without -RepetitionDuration the repetition runs indefinitely (Windows Server 2016 and later).
$repeating = New-ScheduledTaskTrigger -Once -At ((Get-Date).AddMinutes(1)) `
    -RepetitionInterval (New-TimeSpan -Minutes $IntervalMinutes)
$systemAccount = $SystemSid.Translate([System.Security.Principal.NTAccount]).Value
$principal = New-ScheduledTaskPrincipal -UserId $systemAccount -LogonType ServiceAccount -RunLevel Highest
$settings = New-ScheduledTaskSettingsSet -ExecutionTimeLimit (New-TimeSpan -Minutes 4) -MultipleInstances IgnoreNew `
    -StartWhenAvailable -AllowStartIfOnBatteries -DontStopIfGoingOnBatteries
Register-ScheduledTask -TaskPath $TaskPath -TaskName $TaskName -Action $action -Trigger @($atStartup, $repeating) `
    -Principal $principal -Settings $settings -Force `
    -Description 'Sends VSS writer, provider, service and free-space state to kubevirt-vss-exporter (read-only).' |
    Out-Null
Start-ScheduledTask -TaskPath $TaskPath -TaskName $TaskName

Write-Output "installed: $installedScript"
Write-Output "settings:  $ConfigDir (SYSTEM and Administrators only)"
Write-Output "task:      $TaskPath$TaskName, at boot and every $IntervalMinutes min, started once now"
