#Requires -Version 5.1
#Requires -RunAsAdministrator
<#
.SYNOPSIS
    Removes everything Install-VssGuestReport.ps1 created: task, script, settings and event log source.

.DESCRIPTION
    Safe to run more than once; parts already gone are skipped. Entries already written to the
    Application event log stay there.
#>
[CmdletBinding()]
param()

Set-StrictMode -Version 3.0
$ErrorActionPreference = 'Stop'

$InstallDir = Join-Path $env:ProgramFiles 'kubevirt-vss-exporter'
$ConfigDir = Join-Path $env:ProgramData 'kubevirt-vss-exporter'
$EventSource = 'kubevirt-vss-exporter'
$TaskPath = '\kubevirt-vss-exporter\'
$TaskFolder = 'kubevirt-vss-exporter'
$TaskName = 'Send VSS guest report'

$task = Get-ScheduledTask -TaskPath $TaskPath -TaskName $TaskName -ErrorAction SilentlyContinue
if ($null -ne $task) {
    Stop-ScheduledTask -TaskPath $TaskPath -TaskName $TaskName -ErrorAction SilentlyContinue
    Unregister-ScheduledTask -TaskPath $TaskPath -TaskName $TaskName -Confirm:$false
    Write-Output "removed task $TaskPath$TaskName"
}
try {
    # The ScheduledTasks module cannot delete an empty task folder; the scheduler's COM API can.
    $scheduler = New-Object -ComObject 'Schedule.Service'
    $scheduler.Connect()
    $folder = $scheduler.GetFolder('\' + $TaskFolder)
    if ($folder.GetTasks(1).Count -eq 0) {
        $scheduler.GetFolder('\').DeleteFolder($TaskFolder, 0)
        Write-Output "removed task folder $TaskPath"
    }
} catch {
    Write-Verbose "task folder not removed: $($_.Exception.Message)"
}

foreach ($path in @($InstallDir, $ConfigDir)) {
    if (Test-Path -LiteralPath $path) {
        Remove-Item -LiteralPath $path -Recurse -Force
        Write-Output "removed $path"
    }
}

if ([System.Diagnostics.EventLog]::SourceExists($EventSource)) {
    Remove-EventLog -Source $EventSource
    Write-Output "removed event log source $EventSource"
}
