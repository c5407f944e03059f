#Requires -Version 5.1
#Requires -RunAsAdministrator
<#
.SYNOPSIS
    Installs the guest report from the disks KubeVirt attaches to the VM: nothing to copy by hand.

.DESCRIPTION
    deploy/windows/vm-disks-patch.yaml gives the VM two small read-only CD-ROM drives, built by
    KubeVirt from Kubernetes objects in the VM's namespace:

    * volume label VSSREPORT, the ConfigMap kubevirt-vss-guest-report: this script,
      Install-VssGuestReport.ps1, Send-VssGuestReport.ps1, Uninstall-VssGuestReport.ps1 and the
      file exporter-url (the guest-report listener, port 9746);
    * volume label VSSTOKEN, the Secret kubevirt-vss-guest-report-token: the file token.

    This script runs Install-VssGuestReport.ps1 from its own drive with that URL and token. The
    installer copies what it needs into Program Files and ProgramData, so the drives can be
    detached afterwards. cloudbase-init-userdata.ps1 (first boot) or a sysprep
    RunSynchronousCommand calls it; on a running VM an administrator can run it once.

.PARAMETER ExporterUrl
    Overrides the URL in the exporter-url file.

.PARAMETER TokenVolumeLabel
    Volume label of the token drive (volumeLabel of the Secret volume).

.PARAMETER WaitSeconds
    How long to wait for the token drive to appear, for runs early in the first boot.

.EXAMPLE
    powershell.exe -NoProfile -ExecutionPolicy Bypass -File E:\Install-VssGuestReportFromDisk.ps1
#>
[CmdletBinding()]
param(
    [string] $ExporterUrl,
    [string] $TokenVolumeLabel = 'VSSTOKEN',
    [ValidateRange(0, 600)] [int] $WaitSeconds = 120
)

Set-StrictMode -Version 3.0
$ErrorActionPreference = 'Stop'

$TokenFileName = 'token'
$UrlFileName = 'exporter-url'
$CdRomDriveType = 5

function Find-TokenFile {
    # The drive with the token's volume label; failing that, any CD-ROM drive holding a token file.
    param([Parameter(Mandatory)] [string] $Label)
    $cdRoms = @(Get-CimInstance -ClassName Win32_Volume -Filter "DriveType = $CdRomDriveType")
    $labelled = @($cdRoms | Where-Object { $_.Label -eq $Label })
    foreach ($volume in @($labelled) + @($cdRoms)) {
        if ([string]::IsNullOrEmpty($volume.Name)) { continue }
        $candidate = Join-Path $volume.Name $TokenFileName
        if (Test-Path -LiteralPath $candidate -PathType Leaf) { return $candidate }
    }
    return $null
}

$installer = Join-Path $PSScriptRoot 'Install-VssGuestReport.ps1'
if (-not (Test-Path -LiteralPath $installer -PathType Leaf)) { throw "installer not found next to this script: $installer" }

$url = $ExporterUrl
$urlFile = Join-Path $PSScriptRoot $UrlFileName
if ([string]::IsNullOrWhiteSpace($url) -and (Test-Path -LiteralPath $urlFile -PathType Leaf)) {
    $url = ([System.IO.File]::ReadAllText($urlFile)).Trim()
}

$deadline = (Get-Date).AddSeconds($WaitSeconds)
$tokenFile = Find-TokenFile -Label $TokenVolumeLabel
while ($null -eq $tokenFile -and (Get-Date) -lt $deadline) {
    Start-Sleep -Seconds 5
    $tokenFile = Find-TokenFile -Label $TokenVolumeLabel
}
if ($null -eq $tokenFile) {
    throw "no drive labelled $TokenVolumeLabel with a '$TokenFileName' file: attach the Secret kubevirt-vss-guest-report-token (vm-disks-patch.yaml)"
}

$arguments = @{ TokenFile = $tokenFile; SourceScript = (Join-Path $PSScriptRoot 'Send-VssGuestReport.ps1') }
if (-not [string]::IsNullOrWhiteSpace($url)) { $arguments['ExporterUrl'] = $url }
& $installer @arguments
